//! Helpers shared by the tests: the ferry binary, test plugins, demo platforms, Python.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

/// The `ferry` binary, with a compiled-plugin cache shared by the whole test run.
pub fn ferry() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferry"));
    cmd.env("FERRY_CACHE_DIR", cache_dir());
    cmd
}

pub fn cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugin-cache")
}

/// A plugin built from `plugins/testing/` (or any plugin of the workspace).
pub fn plugin(crate_name: &str) -> PathBuf {
    let path = Path::new(env!("FERRY_PLUGIN_DIR")).join(format!("{}.wasm", crate_name.replace('-', "_")));
    assert!(path.is_file(), "{} was not built; the plugins workspace builds every member", path.display());
    path
}

/// A generated demo platform in its own temporary directory.
pub struct Platform {
    pub dir: TempDir,
}

impl Platform {
    pub fn new(scale: f64, seed: u64) -> Platform {
        let dir = tempfile::tempdir().unwrap();
        let out = ferry()
            .args(["demo", "--out"])
            .arg(dir.path().join("platform"))
            .args(["--scale", &scale.to_string(), "--seed", &seed.to_string()])
            .output()
            .unwrap();
        assert!(out.status.success(), "ferry demo failed: {}", String::from_utf8_lossy(&out.stderr));
        Platform { dir }
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("platform/platform.db")
    }

    pub fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    /// Writes a job file beside the platform; `body` follows a `[snapshot]`, `[source]`
    /// and `[output]` header pointing at this platform. Files stay unpacked (readable in
    /// place) unless `output_extra` sets `archive`.
    pub fn job(&self, name: &str, output_extra: &str, resources: &str) -> PathBuf {
        let path = self.dir.path().join(format!("{name}.toml"));
        let archive = if output_extra.contains("archive") { "" } else { "archive = \"none\"\n" };
        let output_extra = format!("{archive}{output_extra}");
        let text = format!(
            "[snapshot]\nname = \"{name}\"\nas_of = \"2026-03-31T14:30:22Z\"\n\n[source]\nsqlite = \"platform/platform.db\"\nblobs = \"platform/blobs\"\n\n[output]\ndir = \"out\"\n{output_extra}\n\n{resources}\n"
        );
        std::fs::write(&path, text).unwrap();
        path
    }
}

pub fn run(job: &Path) -> Output {
    ferry().arg("run").arg(job).output().unwrap()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Published snapshot directories under an output root (staging directories excluded).
pub fn snapshots(out_dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(out_dir) else { return Vec::new() };
    let mut dirs: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() && !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    dirs.sort();
    dirs
}

/// Asserts a failed run left nothing that looks like a snapshot, not even staging (the
/// output root's catalog, which records the failure, is expected).
pub fn assert_nothing_published(out_dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(out_dir) {
        let left: Vec<_> =
            entries.flatten().map(|e| e.file_name()).filter(|n| !n.to_string_lossy().starts_with("catalog.db")).collect();
        assert!(left.is_empty(), "a failed run left {left:?} in {}", out_dir.display());
    }
}

/// The Python with fastavro that `tests/run.sh` prepares. Missing it is a failure, not
/// a skip: the independent Avro reader is part of what the tests prove.
pub fn python() -> PathBuf {
    let python = std::env::var_os("FERRY_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/py/bin/python"));
    let ok = Command::new(&python).args(["-c", "import fastavro"]).output().is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "Python with fastavro not found at {} (or $FERRY_PYTHON). Run the tests with `bash tests/run.sh`, which \
         creates target/py with fastavro, or point FERRY_PYTHON at a Python that has it.",
        python.display()
    );
    python
}
