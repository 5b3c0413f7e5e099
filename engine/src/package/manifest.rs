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
    /// Tar parts, when the snapshot is packed (`[output] archive = "tar"`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub archives: Vec<ArchiveEntry>,
    /// How every resource came to show the source at one moment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency: Option<ConsistencyEntry>,
    /// The resources parents first (a resource after every resource it references):
    /// load in this order, delete in the reverse.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub load_order: Vec<String>,
    pub resources: Vec<ResourceEntry>,
    // -- Trust (issue 19): encryption at rest --
    /// Set when every part and loose file is encrypted (`[output] encrypt_to`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<EncryptionEntry>,
}

/// How a snapshot's parts and loose files are encrypted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EncryptionEntry {
    /// `age` (age-encryption.org/v1).
    pub method: String,
    /// The public keys everything is encrypted for, as the job lists them.
    pub recipients: Vec<String>,
}

/// An encrypted object's content before encryption.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plaintext {
    pub bytes: u64,
    pub sha256: String,
}

/// How the source's reads were made to share one point in time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConsistencyEntry {
    /// `sqlite-wal-snapshot`, `sqlite-shared-lock`, `postgres-exported-snapshot`, `per-read`,
    /// or `sharded-as-of` for a snapshot assembled of shards (each read at its own moment).
    pub method: String,
    pub detail: String,
}

impl From<crate::source::Consistency> for ConsistencyEntry {
    fn from(c: crate::source::Consistency) -> Self {
        ConsistencyEntry { method: c.method().into(), detail: c.detail().into() }
    }
}

/// A field of a resource's records holding another resource's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferenceEntry {
    pub field: String,
    /// The resource referred to, as its plugin names it (`users`).
    pub resource: String,
    /// Its key field (`guid`).
    pub key: String,
}

/// How the snapshot's as_of applied to a resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AsOfEntry {
    /// The main table's creation column: records created at or after as_of are not in
    /// the snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_column: Option<String>,
    /// The plugin declares no creation column: every record is in, however recent.
    pub whole: bool,
}

impl AsOfEntry {
    pub fn new(created_column: Option<String>) -> Self {
        let whole = created_column.is_none();
        AsOfEntry { created_column, whole }
    }
}

/// One tar part beside the manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArchiveEntry {
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
    /// `tables` or `attachments`.
    pub kind: String,
    /// 1-based part number within its kind.
    pub part: u32,
    // -- Trust (issue 19): encryption at rest --
    /// The tar before encryption, when the part is encrypted (`name`, `bytes` and
    /// `sha256` are then those of the stored `.tar.age`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plaintext: Option<Plaintext>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResourceEntry {
    pub name: String,
    pub plugin: PluginEntry,
    /// The Avro schema of the records, as the plugin declared it (kept as its JSON text:
    /// a job of thousands of resources holds thousands of schemas until the manifest).
    pub schema: Box<serde_json::value::RawValue>,
    pub format: String,
    /// Avro block codec (`null` when the file is gzipped whole).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codec: Option<String>,
    pub gzip: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<WindowEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<AsOfEntry>,
    /// The field whose value identifies a record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<ReferenceEntry>,
    pub records: u64,
    pub files: Vec<FileEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ResourceFailure>,
    pub timings: StageTimes,
    // -- Trust (issue 19): schema fingerprints --
    /// CRC-64-AVRO and SHA-256 of the schema's Parsing Canonical Form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_fingerprint: Option<crate::records::SchemaFingerprint>,
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
    /// The member name inside its archive, or the path relative to the snapshot
    /// directory when the snapshot is not packed.
    pub path: String,
    /// The tar part holding the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<String>,
    pub records: u64,
    pub bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uncompressed_bytes: Option<u64>,
    pub sha256: String,
    /// `attachment` for an attachment's file (its bytes as uploaded: no records to
    /// count); absent for a table file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    // -- Trust (issue 19): encryption at rest --
    /// A loose file stored encrypted: `path`, `bytes` and `sha256` are those of the
    /// stored `.age` file, this is its content (a file inside a part has none: the part
    /// is encrypted whole).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plaintext: Option<Plaintext>,
}

/// `FileEntry::kind` of an attachment's file.
pub const ATTACHMENT_KIND: &str = "attachment";

impl FileEntry {
    /// An attachment's file: verify checks its size and sha256, never a record count.
    pub fn is_attachment(&self) -> bool {
        self.kind.as_deref() == Some(ATTACHMENT_KIND)
    }

    /// A file of records, as its writer finished it.
    pub fn records(file: super::WrittenFile, gzip: bool) -> Self {
        FileEntry {
            path: file.name,
            archive: None,
            records: file.records,
            bytes: file.stats.bytes,
            uncompressed_bytes: gzip.then_some(file.stats.uncompressed_bytes),
            sha256: file.stats.sha256,
            kind: None,
            plaintext: None,
        }
    }

    /// An attachment's file (a version's bytes, or its versions JSON).
    pub fn attachment(path: &str, bytes: u64, sha256: &str) -> Self {
        FileEntry {
            path: path.into(),
            archive: None,
            records: 0,
            bytes,
            uncompressed_bytes: None,
            sha256: sha256.into(),
            kind: Some(ATTACHMENT_KIND.into()),
            plaintext: None,
        }
    }
}

impl ResourceEntry {
    /// A resource's entry before it exports: what it is; no records or files yet.
    pub fn new(name: &str, plugin: PluginEntry, schema_json: &str, format: crate::formats::Format, codec: &str, gzip: bool) -> Self {
        ResourceEntry {
            name: name.into(),
            plugin,
            schema: serde_json::value::RawValue::from_string(schema_json.to_string()).unwrap_or_else(|_| null_schema()),
            format: format.extension().into(),
            codec: (format == crate::formats::Format::Avro).then(|| codec.into()),
            gzip,
            window: None,
            as_of: None,
            key: None,
            references: Vec::new(),
            records: 0,
            files: Vec::new(),
            error: None,
            timings: StageTimes::default(),
            schema_fingerprint: crate::records::SchemaFingerprint::of_json(schema_json).ok(),
        }
    }

    /// The resource failed: none of its files are in the snapshot, and it says why.
    pub fn fail(&mut self, kind: &str, message: String) {
        self.error = Some(ResourceFailure { kind: kind.into(), message });
        self.files.clear();
        self.records = 0;
    }
}

fn null_schema() -> Box<serde_json::value::RawValue> {
    serde_json::value::RawValue::from_string("null".into()).expect("null is JSON")
}

/// Records in each file entry the tar part that holds it, and returns the parts as the
/// manifest lists them (in the order given: tables first).
pub fn place_in_parts(resources: &mut [ResourceEntry], parts: Vec<(&str, super::archive::Part)>) -> Vec<ArchiveEntry> {
    let part_of: std::collections::HashMap<&str, &str> =
        parts.iter().flat_map(|(_, p)| p.members.iter().map(move |m| (m.as_str(), p.name.as_str()))).collect();
    for file in resources.iter_mut().flat_map(|r| r.files.iter_mut()) {
        file.archive = part_of.get(file.path.as_str()).map(|p| p.to_string());
    }
    parts
        .into_iter()
        .map(|(kind, p)| ArchiveEntry {
            name: p.name,
            bytes: p.bytes,
            sha256: p.sha256,
            kind: kind.into(),
            part: p.number,
            plaintext: p.plaintext,
        })
        .collect()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResourceFailure {
    pub kind: String,
    pub message: String,
}

/// Seconds spent per stage of a resource (stages overlap: they run in parallel).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StageTimes {
    /// The plugin's own work: its export call minus the host calls below.
    pub plugin_seconds: f64,
    /// Waiting for the source's row batches (the reader runs ahead on its own thread).
    #[serde(default)]
    pub source_wait_seconds: f64,
    /// Validating record batches against the schema.
    #[serde(default)]
    pub validate_seconds: f64,
    /// The plugin blocked because the writer was behind (compression-bound runs show it here).
    #[serde(default)]
    pub output_wait_seconds: f64,
    /// Encoding, compressing and writing the files (the writer thread's busy time).
    pub write_seconds: f64,
    pub wall_seconds: f64,
    /// From the start of the run (the process's, for `ferry run`) to this resource's
    /// first validated record batch; absent when it had no records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_record_seconds: Option<f64>,
    /// Not a time: the plugin instance's linear memory at its peak, in bytes (what the
    /// job's memory limit caps, per memory); absent in manifests written before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin_memory_bytes: Option<u64>,
}

impl Manifest {
    /// The bytes of `manifest.json`, the same wherever it is written.
    pub fn to_json(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("a manifest always serializes");
        bytes.push(b'\n');
        bytes
    }
}
