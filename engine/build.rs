//! Builds the plugins workspace (`plugins/`) for `wasm32-wasip2` from source and embeds
//! the resource plugins in the `ferry` binary as built-ins, the way wasmtime's
//! test-programs and Spin's test components are built. No `.wasm` is ever committed.
//!
//! Outputs:
//! - `$OUT_DIR/builtins.rs`: `BUILTINS: &[(&str, &[u8])]`, resource name -> component;
//! - `FERRY_PLUGIN_DIR` (rustc env): the directory holding every built plugin, test
//!   plugins included, for the integration tests.

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let plugins = root.join("plugins");
    println!("cargo:rerun-if-changed={}", plugins.display());
    println!("cargo:rerun-if-changed={}", root.join("wit").display());
    println!("cargo:rerun-if-changed={}", root.join("rust-toolchain.toml").display());

    ensure_target(&root);

    let target_dir = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|d| if d.is_relative() { root.join(d) } else { d })
        .unwrap_or_else(|| root.join("target"))
        .join("wasm-plugins");
    // The plugins workspace, then each out-of-tree example plugin (its own workspace, as
    // another team's would be), all into one target directory so they share artifacts.
    let mut workspaces = vec![plugins.clone()];
    let examples = root.join("examples");
    println!("cargo:rerun-if-changed={}", examples.display());
    let mut found: Vec<PathBuf> = std::fs::read_dir(&examples)
        .map(|rd| rd.flatten().map(|e| e.path()).filter(|p| p.join("Cargo.toml").is_file()).collect())
        .unwrap_or_default();
    found.sort();
    workspaces.extend(found);
    for workspace in &workspaces {
        build_workspace(workspace, &target_dir);
    }

    let wasm_dir = target_dir.join(TARGET).join("release");
    println!("cargo:rustc-env=FERRY_PLUGIN_DIR={}", wasm_dir.display());

    let mut builtins = String::from("/// Built-in plugins: (resource name, component bytes).\nstatic BUILTINS: &[(&str, &[u8])] = &[\n");
    for (resource, crate_name) in builtin_plugins(&plugins) {
        let wasm = wasm_dir.join(format!("{}.wasm", crate_name.replace('-', "_")));
        assert!(wasm.is_file(), "plugin {crate_name} built, but {} is missing", wasm.display());
        writeln!(builtins, "    ({resource:?}, include_bytes!({:?})),", wasm.display().to_string()).unwrap();
    }
    builtins.push_str("];\n");
    std::fs::write(PathBuf::from(env::var("OUT_DIR").unwrap()).join("builtins.rs"), builtins).unwrap();
}

/// `cargo build --release --locked --target wasm32-wasip2` in one workspace.
fn build_workspace(workspace: &Path, target_dir: &Path) {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args(["build", "--release", "--locked", "--target", TARGET, "--target-dir"])
        .arg(target_dir);
    // The outer build's settings are for the host; none of them may leak into the
    // plugins' build (flags, target, and the variables cargo sets for build scripts).
    for (key, _) in env::vars_os() {
        let key = key.to_string_lossy();
        let leaks = ["CARGO_ENCODED_RUSTFLAGS", "RUSTFLAGS", "CARGO_BUILD_RUSTFLAGS", "CARGO_BUILD_TARGET",
            "CARGO_TARGET_DIR", "CARGO_BUILD_TARGET_DIR", "RUSTC_WORKSPACE_WRAPPER", "TARGET", "HOST",
            "OPT_LEVEL", "PROFILE", "DEBUG", "OUT_DIR", "NUM_JOBS", "CARGO_PRIMARY_PACKAGE", "CARGO_MANIFEST_DIR",
            "CARGO_MANIFEST_PATH", "CARGO_MANIFEST_LINKS", "RUSTC_LINKER", "CARGO_CRATE_NAME"]
        .contains(&key.as_ref())
            || ["CARGO_CFG_", "CARGO_FEATURE_", "CARGO_PKG_", "DEP_"].iter().any(|p| key.starts_with(p));
        if leaks {
            cmd.env_remove(key.as_ref());
        }
    }
    let out = cmd.output().expect("running cargo to build the plugins");
    if !out.status.success() {
        panic!(
            "building the plugins (cargo build --release --target {TARGET} in {}) failed:\n{}",
            workspace.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Every `plugins/<dir>` whose crate is named `ferry-plugin-<resource>`, sorted.
fn builtin_plugins(plugins: &Path) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(plugins).unwrap().flatten() {
        let Ok(manifest) = std::fs::read_to_string(entry.path().join("Cargo.toml")) else { continue };
        let name = manifest
            .lines()
            .find_map(|l| l.trim().strip_prefix("name = \"").and_then(|r| r.strip_suffix('"')))
            .map(str::to_string);
        if let Some(name) = name
            && let Some(resource) = name.strip_prefix("ferry-plugin-")
        {
            found.push((resource.replace('-', "_"), name.clone()));
        }
    }
    found.sort();
    found
}

/// The plugins need the `wasm32-wasip2` standard library. `rust-toolchain.toml` lists the
/// target, but a build script runs under rustup's proxy, which sets `RUSTUP_TOOLCHAIN`: with
/// it, `rustup toolchain install` says "overridden by environment variable" and ignores the
/// file's targets. `rustup target add` honours the variable, so it adds the target to the
/// very toolchain this build runs on, and a fresh clone builds with no step by hand.
fn ensure_target(root: &Path) {
    let installed = || {
        let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
        Command::new(rustc)
            .args(["--print", "target-libdir", "--target", TARGET])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()).join("libstd.rlib").exists()
                || std::fs::read_dir(String::from_utf8_lossy(&o.stdout).trim()).map(|mut d| d.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().starts_with("libstd-")))).unwrap_or(false))
            .unwrap_or(false)
    };
    if installed() {
        return;
    }
    let output = Command::new("rustup").args(["target", "add", TARGET]).current_dir(root).output();
    if !installed() {
        let said = match &output {
            Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
            Err(e) => format!("rustup could not be started: {e}"),
        };
        panic!(
            "the {TARGET} target is not installed and `rustup target add {TARGET}` could not add it:\n{said}\n\
             Add it by hand with `rustup target add {TARGET}` (run in {}), then build again.",
            root.display()
        );
    }
}
