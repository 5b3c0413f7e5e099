//! Loading a job's plugins: a built-in by name or a component file, compiled (or taken
//! from the cache) and described. `ferry run` and `ferry plan` both load through here.

use std::path::PathBuf;

use super::{Origin, Plugin, PluginError, Runtime};

/// Why a resource's plugin could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read plugin {path}: {source}")]
    PluginFile { path: PathBuf, source: std::io::Error },
    #[error("resource `{resource}`: {error}")]
    Plugin { resource: String, error: PluginError },
}

impl LoadError {
    /// The short kind, for the manifest.
    pub fn kind(&self) -> &'static str {
        match self {
            LoadError::PluginFile { .. } => "plugin-file",
            LoadError::Plugin { error, .. } => error.kind(),
        }
    }
}

/// Why the plugin runtime could not start (wasmtime's engine or linker).
#[derive(Debug, thiserror::Error)]
#[error("cannot start the plugin runtime: {0:#}")]
pub struct StartError(pub wasmtime::Error);

impl Runtime {
    /// Loads `resource`'s plugin and has it describe itself (once per plugin: a job may
    /// name one plugin for many resources).
    pub fn load_resource(&self, resource: &str, origin: &Origin) -> Result<Plugin, LoadError> {
        if let Some(plugin) = self.described.lock().unwrap_or_else(|e| e.into_inner()).get(origin) {
            return Ok(plugin.clone());
        }
        let wasm = match origin {
            Origin::Builtin(name) => super::builtin(name).unwrap_or_default().to_vec(),
            Origin::Path(path) => std::fs::read(path).map_err(|source| LoadError::PluginFile { path: path.clone(), source })?,
        };
        let plugin = self.load(origin.clone(), &wasm).map_err(|error| LoadError::Plugin { resource: resource.to_string(), error })?;
        self.described.lock().unwrap_or_else(|e| e.into_inner()).insert(origin.clone(), plugin.clone());
        Ok(plugin)
    }
}
