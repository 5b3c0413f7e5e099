//! `ferry inspect`: what a snapshot holds, read from its files where they lie (tar parts
//! streamed member by member, loose files directly): per resource the records, and per
//! column the type, null count, min, max and a distinct estimate; per month for a
//! windowed resource. Memory is bounded by one record and the per-column sketches; a
//! Parquet member (its footer is at its end) is staged to an unnamed temporary file.

mod cell;
mod stats;

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::Serialize;

pub use cell::Cell;
pub use stats::ColumnStats;

use crate::package::{Manifest, ResourceEntry};
use crate::records::{Kind, RecordSchema};

/// The largest manifest read (as `ferry verify`).
const MAX_MANIFEST_BYTES: u64 = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path} is not a snapshot manifest: {detail}")]
    Manifest { path: PathBuf, detail: String },
    #[error("the snapshot has no resource {0:?}; `ferry inspect DIR` lists them")]
    NoResource(String),
    #[error("resource {resource}: {detail}")]
    Schema { resource: String, detail: String },
    #[error("{file}: {detail}")]
    Decode { file: String, detail: String },
}

/// One column's figures.
#[derive(Debug, Serialize)]
pub struct ColumnReport {
    pub name: String,
    #[serde(rename = "type")]
    pub type_name: String,
    pub nulls: u64,
    pub min: Option<String>,
    pub max: Option<String>,
    pub distinct_estimate: u64,
}

/// One resource's figures.
#[derive(Debug, Serialize)]
pub struct ResourceReport {
    pub name: String,
    pub format: String,
    /// Records decoded from the files.
    pub records: u64,
    /// Records the manifest states.
    pub manifest_records: u64,
    pub columns: Vec<ColumnReport>,
    /// `YYYY-MM` of the window column -> records, for a windowed resource.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub per_month: BTreeMap<String, u64>,
}

/// Reads and checks `manifest.json` of a snapshot directory.
pub fn read_manifest(dir: &Path) -> Result<Manifest, InspectError> {
    let path = crate::package::layout::manifest_path(dir);
    let io_err = |source| InspectError::Io { path: path.clone(), source };
    let meta = std::fs::metadata(&path).map_err(io_err)?;
    if !meta.is_file() || meta.len() > MAX_MANIFEST_BYTES {
        return Err(InspectError::Manifest { path, detail: "not a regular file of at most 64 MiB".into() });
    }
    let text = std::fs::read(&path).map_err(io_err)?;
    serde_json::from_slice(&text).map_err(|e| InspectError::Manifest { path, detail: e.to_string() })
}

/// A resource being inspected: its schema and running figures.
struct Inspection<'a> {
    entry: &'a ResourceEntry,
    fields: Vec<(String, Kind)>,
    columns: Vec<ColumnStats>,
    window: Option<usize>,
    per_month: BTreeMap<String, u64>,
    records: u64,
}

impl<'a> Inspection<'a> {
    fn new(entry: &'a ResourceEntry) -> Result<Self, InspectError> {
        let schema = RecordSchema::parse(entry.schema.get())
            .map_err(|e| InspectError::Schema { resource: entry.name.clone(), detail: e.to_string() })?;
        let window = entry.window.as_ref().and_then(|w| schema.fields.iter().position(|(n, _)| *n == w.column));
        let columns = schema.fields.iter().map(|_| ColumnStats::default()).collect();
        Ok(Inspection { entry, fields: schema.fields, columns, window, per_month: BTreeMap::new(), records: 0 })
    }

    fn row(&mut self, cells: Vec<Cell>) {
        self.records += 1;
        if let Some(w) = self.window
            && let Some(Cell::Int(t)) = cells.get(w)
        {
            let unit = cell::timestamp_unit(&self.fields[w].1).unwrap_or(1_000_000);
            if let Some(d) = i64::try_from(*t).ok().and_then(|t| chrono::DateTime::from_timestamp(t.div_euclid(unit), 0)) {
                *self.per_month.entry(d.format("%Y-%m").to_string()).or_default() += 1;
            }
        }
        for (stats, c) in self.columns.iter_mut().zip(cells) {
            stats.add(c);
        }
    }

    /// Decodes one file's records (`path` names the format: `.avro`, `.csv`, `.jsonl`,
    /// `.parquet`, each optionally `.gz`).
    fn file(&mut self, path: &str, raw: impl Read) -> Result<(), InspectError> {
        let derr = |detail: String| InspectError::Decode { file: path.to_string(), detail };
        let plain: Box<dyn Read> = if path.ends_with(".gz") { Box::new(flate2::read::MultiGzDecoder::new(raw)) } else { Box::new(raw) };
        let name = path.strip_suffix(".gz").unwrap_or(path);
        match name.rsplit_once('.').map(|(_, e)| e).unwrap_or("") {
            "avro" => {
                let reader = apache_avro::Reader::new(plain).map_err(|e| derr(e.to_string()))?;
                for record in reader {
                    let record = record.map_err(|e| derr(e.to_string()))?;
                    let cells = cell::from_avro(&self.fields, record).map_err(derr)?;
                    self.row(cells);
                }
            }
            "csv" => {
                let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(plain);
                let mut record = csv::StringRecord::new();
                while reader.read_record(&mut record).map_err(|e| derr(e.to_string()))? {
                    let cells = self.fields.iter().zip(record.iter()).map(|((_, k), v)| cell::from_text(k, v, true)).collect();
                    self.row(cells);
                }
            }
            "jsonl" => {
                for line in BufReader::new(plain).lines() {
                    let line = line.map_err(|e| derr(e.to_string()))?;
                    let mut obj: serde_json::Map<String, serde_json::Value> =
                        serde_json::from_str(&line).map_err(|e| derr(e.to_string()))?;
                    let cells = self.fields.iter().map(|(n, k)| cell::from_json(k, obj.remove(n).unwrap_or_default())).collect();
                    self.row(cells);
                }
            }
            "parquet" => self.parquet(plain).map_err(derr)?,
            other => return Err(derr(format!("unknown file type .{other}"))),
        }
        Ok(())
    }

    fn parquet(&mut self, mut plain: impl Read) -> Result<(), String> {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        let mut staged = tempfile::tempfile().map_err(|e| format!("cannot stage the file in the temporary directory: {e}"))?;
        io::copy(&mut plain, &mut staged).map_err(|e| e.to_string())?;
        let reader = SerializedFileReader::new(staged).map_err(|e| e.to_string())?;
        for row in reader.get_row_iter(None).map_err(|e| e.to_string())? {
            let row = row.map_err(|e| e.to_string())?;
            let cells = self.fields.iter().zip(row.get_column_iter()).map(|((_, k), (_, f))| cell::from_parquet(k, f)).collect();
            self.row(cells);
        }
        Ok(())
    }

    fn report(self) -> ResourceReport {
        let columns = self
            .fields
            .iter()
            .zip(self.columns)
            .map(|((name, kind), s)| ColumnReport {
                name: name.clone(),
                type_name: cell::type_name(kind),
                nulls: s.nulls,
                min: s.min.as_ref().map(|c| c.display(kind)),
                max: s.max.as_ref().map(|c| c.display(kind)),
                distinct_estimate: s.distinct(),
            })
            .collect();
        ResourceReport {
            name: self.entry.name.clone(),
            format: self.entry.format.clone(),
            records: self.records,
            manifest_records: self.entry.records,
            columns,
            per_month: self.per_month,
        }
    }
}

/// Inspects a snapshot directory: every resource, or only `only`.
pub fn inspect(dir: &Path, only: Option<&str>) -> Result<Vec<ResourceReport>, InspectError> {
    let manifest = read_manifest(dir)?;
    if let Some(r) = only
        && !manifest.resources.iter().any(|e| e.name == r)
    {
        return Err(InspectError::NoResource(r.to_string()));
    }
    let mut inspections = Vec::new();
    // (part or "" for a loose file, member path) -> inspection index.
    let mut wanted: HashMap<(String, String), usize> = HashMap::new();
    for entry in manifest.resources.iter().filter(|e| only.is_none_or(|r| e.name == r)) {
        for f in entry.files.iter().filter(|f| !f.is_attachment()) {
            wanted.insert((f.archive.clone().unwrap_or_default(), f.path.clone()), inspections.len());
        }
        inspections.push(Inspection::new(entry)?);
    }
    let open = |name: &str| -> Result<File, InspectError> {
        // Names come from the manifest: only plain names beside it are opened.
        if name.split('/').any(|c| c.is_empty() || c == "..") || name.starts_with('/') {
            return Err(InspectError::Manifest { path: dir.join(name), detail: format!("{name:?} is not a path inside the snapshot") });
        }
        let path = dir.join(name);
        File::open(&path).map_err(|source| InspectError::Io { path, source })
    };
    let mut parts: Vec<&str> = wanted.keys().filter(|(a, _)| !a.is_empty()).map(|(a, _)| a.as_str()).collect();
    parts.sort_unstable();
    parts.dedup();
    for part in parts {
        let mut archive = tar::Archive::new(BufReader::new(open(part)?));
        let io_err = |source| InspectError::Io { path: dir.join(part), source };
        for member in archive.entries().map_err(io_err)? {
            let member = member.map_err(io_err)?;
            let path = member.path().map_err(io_err)?.to_string_lossy().into_owned();
            if let Some(&i) = wanted.get(&(part.to_string(), path.clone())) {
                inspections[i].file(&path, member)?;
            }
        }
    }
    let mut loose: Vec<(&String, usize)> = wanted.iter().filter(|((a, _), _)| a.is_empty()).map(|((_, p), i)| (p, *i)).collect();
    loose.sort_unstable();
    for (path, i) in loose {
        inspections[i].file(path, BufReader::new(open(path)?))?;
    }
    Ok(inspections.into_iter().map(Inspection::report).collect())
}

/// What changed from snapshot `a` to `b`, from their manifests.
#[derive(Debug, Serialize)]
pub struct ResourceChange {
    pub name: String,
    pub records_a: Option<u64>,
    pub records_b: Option<u64>,
    pub columns_added: Vec<String>,
    pub columns_removed: Vec<String>,
    /// `name: type in a -> type in b`.
    pub columns_retyped: Vec<String>,
}

fn columns(entry: &ResourceEntry) -> Result<Vec<(String, String)>, InspectError> {
    let schema = RecordSchema::parse(entry.schema.get())
        .map_err(|e| InspectError::Schema { resource: entry.name.clone(), detail: e.to_string() })?;
    Ok(schema.fields.iter().map(|(n, k)| (n.clone(), cell::type_name(k))).collect())
}

pub fn against(a: &Path, b: &Path) -> Result<Vec<ResourceChange>, InspectError> {
    let (ma, mb) = (read_manifest(a)?, read_manifest(b)?);
    let mut names: Vec<&str> = ma.resources.iter().chain(&mb.resources).map(|r| r.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let mut out = Vec::new();
    for name in names {
        let ra = ma.resources.iter().find(|r| r.name == name);
        let rb = mb.resources.iter().find(|r| r.name == name);
        let ca = ra.map(columns).transpose()?.unwrap_or_default();
        let cb = rb.map(columns).transpose()?.unwrap_or_default();
        let find = |cols: &[(String, String)], n: &str| cols.iter().find(|(c, _)| c == n).map(|(_, t)| t.clone());
        out.push(ResourceChange {
            name: name.to_string(),
            records_a: ra.map(|r| r.records),
            records_b: rb.map(|r| r.records),
            columns_added: cb.iter().filter(|(n, _)| find(&ca, n).is_none()).map(|(n, _)| n.clone()).collect(),
            columns_removed: ca.iter().filter(|(n, _)| find(&cb, n).is_none()).map(|(n, _)| n.clone()).collect(),
            columns_retyped: ca.iter().filter_map(|(n, t)| find(&cb, n).filter(|u| u != t).map(|u| format!("{n}: {t} -> {u}"))).collect(),
        });
    }
    Ok(out)
}
