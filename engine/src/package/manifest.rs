//! `manifest.json`: what a snapshot holds. Written last; its presence with
//! `"status": "completed"` is what makes a snapshot whole.

use serde::{Deserialize, Serialize};

/// Bumped when a field changes meaning or disappears (new fields do not bump it).
pub const MANIFEST_FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every resource exported.
    Completed,
    /// Published under `on_error = "continue"` with at least one failed resource.
    Incomplete,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    pub snapshot_id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// RFC 3339, UTC.
    pub as_of: String,
    pub created_at: String,
    pub completed_at: String,
    pub status: Status,
    pub ferry_version: String,
    pub resources: Vec<ResourceEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResourceEntry {
    pub name: String,
    pub plugin: PluginEntry,
    /// The Avro schema of the records (parsing canonical form).
    pub schema: serde_json::Value,
    pub format: String,
    /// Avro block codec (`null` when the file is gzipped whole).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codec: Option<String>,
    pub gzip: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<WindowEntry>,
    pub records: u64,
    pub files: Vec<FileEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ResourceFailure>,
    pub timings: StageTimes,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PluginEntry {
    pub name: String,
    pub version: String,
    /// `builtin` or the path it was loaded from.
    pub origin: String,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WindowEntry {
    pub column: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileEntry {
    /// Relative to the snapshot directory.
    pub path: String,
    pub records: u64,
    pub bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uncompressed_bytes: Option<u64>,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResourceFailure {
    pub kind: String,
    pub message: String,
}

/// Seconds spent per stage of a resource (stages overlap: they run in parallel).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StageTimes {
    /// Inside the plugin's export call, host calls included.
    pub plugin_seconds: f64,
    /// Encoding, compressing and writing the files (the writer thread's busy time).
    pub write_seconds: f64,
    pub wall_seconds: f64,
}
