//! The job file: the operators' contract.
//!
//! `JobFile` is the TOML as written (plain serde, unknown keys refused); `Job` is what
//! `JobFile::build` validates it into: paths resolved against the job file's directory,
//! sizes, durations and times parsed, plugins resolved. Every error names the key and,
//! where it comes from the file, its line and column.

mod build;
mod error;
mod file;
mod values;

pub use crate::package::Split;
pub use error::JobError;
pub use file::JobFile;
pub use values::{parse_duration, parse_size};

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::formats::Format;
use crate::runtime::Limits;
use crate::source::DemoSpec;
use crate::window::Months;

/// How long a snapshot is kept when the job does not say (ION and MX both keep 30 days).
pub const DEFAULT_RETENTION: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);
/// The longest retention ferry accepts: 100 years (36500 days). Longer ones overflowed
/// the expiry's date arithmetic or stored expiries past year 9999, beyond RFC 3339.
pub const MAX_RETENTION: std::time::Duration = std::time::Duration::from_secs(36_500 * 24 * 3600);

/// Checks a retention against [`MAX_RETENTION`]; the message names the value.
pub fn check_retention(d: std::time::Duration) -> Result<std::time::Duration, String> {
    if d > MAX_RETENTION {
        return Err(format!("{} days is longer than ferry keeps snapshots (at most 36500 days, 100 years)", d.as_secs() / 86_400));
    }
    Ok(d)
}

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
    /// No compression (`null`, or `none`, Parquet's word).
    #[serde(alias = "none")]
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
    /// The job file sets `[snapshot] as_of` (without it, as_of is when the job was
    /// loaded: shards of one snapshot need one they all share).
    pub as_of_given: bool,
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
    /// Encryption and signing (`[output] encrypt_to`, `sign_with`).
    pub trust: Trust,
}

/// What makes a snapshot trustworthy beyond its checksums (issue 19).
#[derive(Debug, Clone, Default)]
pub struct Trust {
    /// Recipients every part and loose file is encrypted for.
    pub encrypt_to: Option<crate::package::encrypt::Recipients>,
    /// The key `manifest.json` is signed with.
    pub sign_with: Option<crate::package::sign::SigningKey>,
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
        let text = read_job_text(path)?;
        JobFile::parse(path, &text)?.build(path, &text)
    }
}

/// The largest job file ferry reads: a job is a page of settings, so anything bigger is
/// a mistake (or `/dev/zero`), refused before it fills memory.
pub const MAX_JOB_FILE_BYTES: u64 = 1 << 20;

/// A job file's text: a regular file (not a FIFO, device or directory, which would block
/// or never end), at most [`MAX_JOB_FILE_BYTES`], UTF-8.
fn read_job_text(path: &Path) -> Result<String, JobError> {
    use std::io::Read as _;
    let read_err = |source| JobError::Read { path: path.into(), source };
    let meta = std::fs::metadata(path).map_err(read_err)?;
    if !meta.is_file() {
        let kind = if meta.is_dir() { "a directory" } else { "not a regular file (a device, FIFO or socket)" };
        return Err(JobError::NotAFile { path: path.into(), kind });
    }
    let mut bytes = Vec::new();
    // Read through a bound too: the file may grow between the check and the read.
    std::fs::File::open(path).and_then(|f| f.take(MAX_JOB_FILE_BYTES + 1).read_to_end(&mut bytes)).map_err(read_err)?;
    if bytes.len() as u64 > MAX_JOB_FILE_BYTES {
        return Err(JobError::TooLarge { path: path.into(), max: MAX_JOB_FILE_BYTES });
    }
    String::from_utf8(bytes).map_err(|e| JobError::NotUtf8 { path: path.into(), offset: e.utf8_error().valid_up_to() })
}

#[cfg(test)]
mod proptests;
