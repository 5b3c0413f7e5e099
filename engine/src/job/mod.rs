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

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::formats::Format;
use crate::runtime::Limits;
use crate::source::DemoSpec;
use crate::window::Months;

/// What `on_error` says to do when a resource fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    /// Publish nothing.
    Fail,
    /// Publish the other resources, marked incomplete, with the failure recorded.
    Continue,
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
    pub output_dir: PathBuf,
    pub on_error: OnError,
    pub resources: Vec<ResourceSpec>,
}

#[derive(Debug, Clone)]
pub struct SourceSpec {
    pub sqlite: PathBuf,
    pub blobs: Option<PathBuf>,
    /// Generate the demo platform at `sqlite`'s directory when it is missing.
    pub demo: Option<DemoSpec>,
}

/// Where a resource's plugin comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginRef {
    Builtin(String),
    Path(PathBuf),
}

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

/// How a resource is split into several files; no limit = one file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Split {
    pub max_records: Option<u64>,
    pub max_bytes: Option<u64>,
}

impl Split {
    pub fn is_split(&self) -> bool {
        self.max_records.is_some() || self.max_bytes.is_some()
    }
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
