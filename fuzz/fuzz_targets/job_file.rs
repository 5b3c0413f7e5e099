//! The job parser against arbitrary text: `JobFile::parse` then `build`, in a directory
//! holding `platform.db`, `demo/platform.db` and `plugin.wasm`, so the checks of files
//! on disk pass as often as they fail. It must never panic; every error must render,
//! and a line and column it reports must be inside the file. An accepted job's
//! windows must resolve against its as_of.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use ferry::job::JobFile;
use libfuzzer_sys::fuzz_target;

fn job_path() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("ferry-fuzz-job-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("demo")).unwrap();
        std::fs::create_dir_all(dir.join("blobs")).unwrap();
        for f in ["platform.db", "demo/platform.db", "plugin.wasm"] {
            std::fs::write(dir.join(f), b"").unwrap();
        }
        dir.join("job.toml")
    })
}

fuzz_target!(|input: &[u8]| {
    let Ok(text) = std::str::from_utf8(input) else { return };
    let path = job_path();
    let result = JobFile::parse(path, text).and_then(|file| file.build(path, text));
    match result {
        Ok(job) => {
            assert!(!job.resources.is_empty(), "a built job exports something");
            assert!(!job.name.trim().is_empty());
            // What the run does with an accepted job's window must not panic either.
            for r in &job.resources {
                if let Some(months) = r.months {
                    let _ = ferry::window::resolve(job.as_of, months);
                }
            }
        }
        Err(e) => {
            let shown = e.to_string();
            assert!(!shown.is_empty());
            if let Some(invalid) = e.invalid()
                && let Some((line, col)) = invalid.at
            {
                let lines = text.split('\n').count();
                assert!(line >= 1 && line <= lines, "line {line} of a {lines}-line file: {shown}");
                let width = text.split('\n').nth(line - 1).map_or(0, |l| l.chars().count());
                assert!(col >= 1 && col <= width + 1, "column {col} of a {width}-character line: {shown}");
            }
        }
    }
});
