//! The job file: the operators' contract.
//!
//! `JobFile` is the TOML as written (plain serde, unknown keys refused); `Job` is what
//! `JobFile::build` validates it into: paths resolved against the job file's directory,
//! sizes, durations and times parsed, plugins resolved. Every error names the key and,
//! where it comes from the file, its line and column.

mod error;
mod file;
mod values;

pub use error::JobError;
pub use file::JobFile;
pub use values::{parse_duration, parse_size};
pub use crate::package::Split;

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::formats::Format;
use crate::runtime::Limits;
use crate::source::DemoSpec;
use crate::window::Months;

/// How long a snapshot is kept when the job does not say (ION and MX both keep 30 days).
pub const DEFAULT_RETENTION: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

/// What `on_error` says to do when a resource fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    /// Publish nothing.
    Fail,
    /// Publish the other resources, marked incomplete, with the failure recorded.
    Continue,
}

/// How files are delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Archive {
    Tar,
    None,
}

/// Avro block compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AvroCodec {
    Null,
    Deflate,
    Snappy,
    Zstd,
}

impl AvroCodec {
    pub fn name(self) -> &'static str {
        match self {
            AvroCodec::Null => "null",
            AvroCodec::Deflate => "deflate",
            AvroCodec::Snappy => "snappy",
            AvroCodec::Zstd => "zstandard",
        }
    }

    pub fn to_avro(self) -> apache_avro::Codec {
        match self {
            AvroCodec::Null => apache_avro::Codec::Null,
            AvroCodec::Deflate => apache_avro::Codec::Deflate(apache_avro::DeflateSettings::default()),
            AvroCodec::Snappy => apache_avro::Codec::Snappy,
            AvroCodec::Zstd => apache_avro::Codec::Zstandard(apache_avro::ZstandardSettings::default()),
        }
    }
}

/// A validated job.
#[derive(Debug, Clone)]
pub struct Job {
    pub path: PathBuf,
    pub name: String,
    pub description: Option<String>,
    pub as_of: DateTime<Utc>,
    pub source: SourceSpec,
    /// The local output root: snapshots, or for S3 delivery the catalog and staging.
    pub output_dir: PathBuf,
    /// `[output] dir = "s3://..."`: each published snapshot is uploaded there.
    pub delivery: Option<crate::s3::S3Url>,
    /// S3 access from the job's `[s3]` table (the `AWS_*` environment fills the rest).
    pub s3: crate::s3::S3Settings,
    pub on_error: OnError,
    /// How long a published snapshot is kept before `ferry snapshots purge` removes it.
    pub retention: std::time::Duration,
    /// Storage price per GiB and month, for `ferry plan`'s cost.
    pub price_per_gib: Option<f64>,
    /// Cap of each tar part; `None` = files are left unpacked.
    pub tar_part_size: Option<u64>,
    /// Which resources run: table resources, attachment resources (plugins that import
    /// the blob store), or both.
    pub content: Content,
    pub resources: Vec<ResourceSpec>,
}

/// What a snapshot holds (ION: "choose to snapshot only tables or only attachments").
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Content {
    Tables,
    Attachments,
    Both,
}

impl Content {
    /// Whether a resource runs, given whether its plugin exports attachments.
    pub fn includes(self, attachments: bool) -> bool {
        match self {
            Content::Both => true,
            Content::Tables => !attachments,
            Content::Attachments => attachments,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SourceSpec {
    pub sqlite: PathBuf,
    pub blobs: Option<PathBuf>,
    /// Generate the demo platform at `sqlite`'s directory when it is missing.
    pub demo: Option<DemoSpec>,
    /// Read PostgreSQL instead of `sqlite` (which is then empty).
    pub postgres: Option<crate::source::PostgresUrl>,
    /// Blobs in S3 instead of the `blobs` directory.
    pub blobs_s3: Option<crate::s3::S3Url>,
}

impl SourceSpec {
    /// Opens the job's database: PostgreSQL when set, else SQLite.
    pub fn open(&self) -> Result<std::sync::Arc<dyn crate::source::Source>, crate::source::SourceError> {
        Ok(match &self.postgres {
            Some(url) => std::sync::Arc::new(crate::source::PostgresSource::open(url)?),
            None => std::sync::Arc::new(crate::source::SqliteSource::open(&self.sqlite)?),
        })
    }
}

/// Where a resource's plugin comes from: a built-in by name or a component file.
pub use crate::runtime::Origin as PluginRef;

#[derive(Debug, Clone)]
pub struct ResourceSpec {
    pub name: String,
    pub plugin: PluginRef,
    pub format: Format,
    pub gzip: bool,
    pub codec: AvroCodec,
    /// The time window, for resources that have one.
    pub months: Option<Months>,
    pub split: Split,
    pub limits: Limits,
    pub options: Vec<(String, String)>,
}

impl Job {
    /// Reads and validates a job file.
    pub fn load(path: &Path) -> Result<Job, JobError> {
        let text = std::fs::read_to_string(path).map_err(|source| JobError::Read { path: path.into(), source })?;
        JobFile::parse(path, &text)?.build(path, &text)
    }
}

#[cfg(test)]
mod proptests;
