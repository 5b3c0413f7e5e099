//! Output formats: one file per format, each a writer generic over `W: Write` that takes
//! validated datums (Avro binary, see `wit/ferry.wit`) and has an explicit `finish()`
//! returning the inner writer.

pub(crate) mod avro;
pub(crate) mod csv;
pub(crate) mod jsonl;
pub(crate) mod parquet;
pub mod value;

use std::fmt;
use std::io::{self, Write};
use std::sync::Arc;

use crate::records::RecordSchema;

/// The format a resource is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Avro,
    Csv,
    Jsonl,
    Parquet,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Avro => "avro",
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
            Format::Parquet => "parquet",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.extension())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("avro: {0}")]
    Avro(#[from] apache_avro::Error),
    #[error("csv: {0}")]
    Csv(#[from] ::csv::Error),
    #[error("parquet: {0}")]
    Parquet(#[from] ::parquet::errors::ParquetError),
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Writes validated datums in one format.
pub trait DatumWriter<W: Write>: Send {
    /// Appends `ends.len()` datums, concatenated in `datums`; `ends[i] - base` is where
    /// datum `i` ends. A format that groups datums into blocks cuts them at a datum's
    /// end, so a file's bytes depend on its records alone, never on how the source
    /// batched them (one reader or several).
    fn append(&mut self, datums: &[u8], ends: &[u32], base: usize) -> Result<(), FormatError>;
    /// Completes the file (last block, trailing data) and returns the inner writer.
    fn finish(self: Box<Self>) -> Result<W, FormatError>;
}

/// How to start a file of a resource; each file is complete on its own.
#[derive(Clone)]
pub struct FileFormat {
    pub format: Format,
    pub schema: Arc<RecordSchema>,
    pub codec: apache_avro::Codec,
    /// Seed of the Avro sync marker (so equal input gives equal bytes).
    pub marker: [u8; 16],
}

/// The Avro sync marker of a resource's files. Avro suggests a random one; ferry derives
/// it from what the file holds (resource, schema, as-of time), so the same job gives the
/// same bytes and two resources never share a marker.
pub fn sync_marker(resource: &str, schema_json: &str, as_of_micros: i64) -> [u8; 16] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(resource.as_bytes());
    h.update(schema_json.as_bytes());
    h.update(as_of_micros.to_le_bytes());
    let mut marker = [0u8; 16];
    marker.copy_from_slice(&h.finalize()[..16]);
    marker
}

impl FileFormat {
    pub fn start<W: Write + Send + 'static>(&self, w: W) -> Result<Box<dyn DatumWriter<W>>, FormatError> {
        Ok(match self.format {
            Format::Avro => Box::new(avro::AvroFileWriter::new(&self.schema.avro, self.codec, self.marker, w)?),
            Format::Csv => Box::new(csv::CsvWriter::new(self.schema.clone(), w)?),
            Format::Jsonl => Box::new(jsonl::JsonlWriter::new(self.schema.clone(), w)),
            Format::Parquet => Box::new(parquet::ParquetWriter::new(self.schema.clone(), self.codec, w)?),
        })
    }
}
