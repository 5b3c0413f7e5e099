//! Compiled plugins on disk, so a run loads machine code (~0.5 ms) instead of
//! compiling (~55 ms a plugin, far more in a debug build).
//!
//! Entries are keyed by the sha256 of the component and by wasmtime's compatibility
//! hash (version and engine settings), written to a temporary name and renamed, so a
//! crash never leaves a torn entry. The cache directory must be as trusted as the
//! ferry binary: entries are machine code that is loaded without re-verification.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

/// Where compiled plugins live: `$FERRY_CACHE_DIR`, else `$XDG_CACHE_HOME/ferry`, else
/// `~/.cache/ferry`; `None` (compile every time) when none can be found.
pub fn default_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("FERRY_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return Some(PathBuf::from(dir).join("ferry"));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache").join("ferry"))
}

pub(crate) fn load(engine: &Engine, dir: Option<&Path>, sha256: &str, wasm: &[u8]) -> wasmtime::Result<Component> {
    let Some(dir) = dir else {
        return Component::new(engine, wasm);
    };
    let mut h = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    let path = dir.join(format!("{sha256}-{:016x}.cwasm", h.finish()));
    if path.is_file() {
        // SAFETY: the file was written by `precompile_component` for this engine's
        // configuration (the name carries its compatibility hash) and renamed into place
        // whole; the cache directory is trusted like the binary (see module docs).
        if let Ok(component) = unsafe { Component::deserialize_file(engine, &path) } {
            return Ok(component);
        }
    }
    let component = Component::new(engine, wasm)?;
    // A cache that cannot be written only costs time on the next run.
    if let Ok(bytes) = component.serialize() {
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let stored = std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(&tmp, bytes))
            .and_then(|()| std::fs::rename(&tmp, &path));
        if stored.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }
    Ok(component)
}
