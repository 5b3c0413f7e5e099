//! The job file as written: plain serde types, unknown keys refused, every field
//! documented. `build.rs` validates it into a [`super::Job`].

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::{Archive, AvroCodec, JobError, OnError};
use crate::formats::Format;

/// A ferry job: what to export, from where, to where.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobFile {
    /// The snapshot's identity.
    pub snapshot: SnapshotSection,
    /// The platform's data.
    pub source: SourceSection,
    /// Where and how the snapshot is written.
    pub output: OutputSection,
    /// Default limits for every resource's plugin.
    #[serde(default)]
    pub limits: LimitsSection,
    /// The resources to export, in order.
    #[serde(default, rename = "resource")]
    pub resources: Vec<Spanned<ResourceSection>>,
    /// S3 access for `s3://` blobs and output; overrides the `AWS_*` environment.
    pub s3: Option<S3Section>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Section {
    /// The S3-protocol server, e.g. "http://127.0.0.1:9000"; default: AWS (or `AWS_ENDPOINT_URL`).
    pub endpoint: Option<String>,
    /// The bucket's region; default: `AWS_REGION`, else us-east-1.
    pub region: Option<String>,
    /// Access key id; default: `AWS_ACCESS_KEY_ID`. Prefer the environment for keys.
    pub access_key_id: Option<String>,
    /// Secret key; default: `AWS_SECRET_ACCESS_KEY`. Never logged or kept in the manifest.
    pub secret_access_key: Option<String>,
    /// Allow a plain-http endpoint (a local server); default: true for `http://` endpoints.
    pub allow_http: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotSection {
    /// A short name for people (the snapshot's id is a generated GUID).
    pub name: Spanned<String>,
    /// A longer description, kept in the manifest.
    pub description: Option<String>,
    /// The point in time the snapshot represents: an RFC 3339 string, or a TOML offset
    /// date-time, in years 1 to 9999; default: now, UTC.
    pub as_of: Option<Spanned<toml::Value>>,
    /// How long the snapshot is kept before `ferry snapshots purge` removes it
    /// ("30d", "12h"); default 30 days.
    pub retention: Option<Spanned<String>>,
    /// What the snapshot holds: "tables", "attachments" or "both" (default).
    pub content: Option<super::Content>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSection {
    /// The platform's SQLite database, relative to the job file (this or `postgres`).
    pub sqlite: Option<Spanned<String>>,
    /// The platform's PostgreSQL database, "postgres://user:password@host:port/db"
    /// (this or `sqlite`); the password never reaches logs or the manifest.
    pub postgres: Option<Spanned<String>>,
    /// The platform's blob store: a directory relative to the job file, or "s3://bucket/prefix".
    pub blobs: Option<Spanned<String>>,
    /// When present and the database is missing, generate the demo platform there.
    pub demo: Option<DemoSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoSection {
    /// Random seed: the same seed gives the same platform (default 42).
    pub seed: Option<u64>,
    /// 1.0 = 1,000 users and about 100,000 transactions (default 1.0).
    pub scale: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSection {
    /// Directory that receives one subdirectory per snapshot, relative to the job file;
    /// or "s3://bucket/prefix": each snapshot is uploaded to `prefix/<id>/`, manifest last.
    pub dir: Spanned<String>,
    /// `avro` (default), `csv`, `jsonl` or `parquet`; a resource may override it.
    pub format: Option<Spanned<Format>>,
    /// Gzip each file (default true); a resource may override it.
    pub gzip: Option<bool>,
    /// Avro block codec: `null` (default), `deflate`, `snappy` or `zstd`; Parquet page
    /// compression: `zstd` (default), `snappy` or `none`.
    pub codec: Option<AvroCodec>,
    /// Split a resource into numbered files of at most this many records.
    pub max_records_per_file: Option<Spanned<u64>>,
    /// Split a resource into numbered files of about this size ("512MiB"); a file is
    /// closed at the first block boundary past it.
    pub max_bytes_per_file: Option<Spanned<String>>,
    /// `tar` (default): pack files into `snapshot_tables_partN_<time>.tar` parts;
    /// `none`: leave them as files beside the manifest.
    pub archive: Option<Archive>,
    /// Cap of each tar part (default "1GiB"); a larger file gets a part of its own.
    pub part_size: Option<Spanned<String>>,
    /// `fail` (default): a failed resource publishes nothing. `continue`: publish the
    /// rest, marked incomplete.
    pub on_error: Option<OnError>,
    /// Storage price per GiB and month (e.g. 0.023): `ferry plan` shows the cost.
    pub price_per_gib: Option<Spanned<f64>>,
    /// Encrypt every tar part and loose file with age for these public keys
    /// ("age1..." or "ssh-ed25519 AAAA..."), stored as `<name>.age`.
    pub encrypt_to: Option<Spanned<Vec<String>>>,
    /// Sign `manifest.json` (as `manifest.json.minisig`, minisign format) with this
    /// secret key from `ferry keys generate`, relative to the job file.
    pub sign_with: Option<Spanned<String>>,
    /// For `s3://` output: the local directory of the catalog, staging and each
    /// snapshot's manifest, relative to the job file; default `.ferry-s3/<bucket>/<prefix>`
    /// beside the job (`ferry serve` points it at its own output root).
    pub local_dir: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Memory cap of each plugin (default "256MiB").
    pub memory: Option<Spanned<String>>,
    /// Wall-time cap of each export (default "30m").
    pub time: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceSection {
    /// The resource's name; a built-in plugin of that name exports it unless `plugin` is set.
    pub name: Spanned<String>,
    /// Path to a plugin component (`.wasm`), relative to the job file.
    pub plugin: Option<Spanned<String>>,
    /// Overrides `output.format`.
    pub format: Option<Spanned<Format>>,
    /// Overrides `output.gzip`.
    pub gzip: Option<bool>,
    /// Overrides `output.codec`.
    pub codec: Option<AvroCodec>,
    /// Overrides `output.max_records_per_file`.
    pub max_records_per_file: Option<Spanned<u64>>,
    /// Overrides `output.max_bytes_per_file`.
    pub max_bytes_per_file: Option<Spanned<String>>,
    /// Time window for resources that have one (transactions): 1, 2, 3, 6, 12 or 24
    /// months before as_of, or "all" (the default).
    pub months: Option<Spanned<toml::Value>>,
    /// Overrides `limits.memory`.
    pub memory_limit: Option<Spanned<String>>,
    /// Overrides `limits.time`.
    pub time_limit: Option<Spanned<String>>,
    /// Free-form options handed to the plugin.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

impl JobFile {
    /// Parses the TOML; type errors and unknown keys name the key, line and column.
    pub fn parse(path: &Path, text: &str) -> Result<JobFile, JobError> {
        let de = toml::de::Deserializer::parse(text).map_err(|e| JobError::at(path, text, e.span(), "", e.message().to_string(), None))?;
        serde_path_to_error::deserialize(de).map_err(|e| {
            // `Spanned` values add a private segment to the path; people never wrote it.
            let key = e.path().to_string().replace(".$__serde_spanned_private_value", "");
            let inner = e.inner();
            let message = inner.message().to_string();
            let help = if message.starts_with("unknown field") {
                Some("check the spelling; the job file format is documented in README.md".into())
            } else if message.starts_with("missing field") {
                Some("add it; examples/demo.toml shows a complete job".into())
            } else {
                None
            };
            JobError::at(path, text, inner.span(), if key == "." { "" } else { &key }, message, help)
        })
    }
}
