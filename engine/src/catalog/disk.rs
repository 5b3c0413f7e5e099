//! What is on disk: published snapshots (read from their manifest and checked file by
//! file) and whether the process that wrote a run is still alive.
//!
//! The manifest is read through the few fields the catalog needs, each defaulted, so the
//! catalog keeps working while the manifest gains fields.

use std::path::Path;

use serde::Deserialize;

use crate::package::{DELIVERY_RECORD, DeliveryRecord};

#[derive(Deserialize)]
struct Manifest {
    status: String,
    #[serde(default)]
    completed_at: Option<String>,
    #[serde(default)]
    archives: Vec<Archive>,
    #[serde(default)]
    resources: Vec<Resource>,
}

#[derive(Deserialize)]
struct Archive {
    name: String,
    bytes: u64,
    sha256: String,
}

#[derive(Deserialize)]
struct Resource {
    name: String,
    #[serde(default)]
    format: String,
    #[serde(default)]
    gzip: bool,
    #[serde(default)]
    records: u64,
    #[serde(default)]
    files: Vec<File>,
    #[serde(default)]
    error: Option<Failure>,
    #[serde(default)]
    timings: Timings,
}

#[derive(Deserialize)]
struct File {
    path: String,
    #[serde(default)]
    archive: Option<String>,
    #[serde(default)]
    records: u64,
    bytes: u64,
    sha256: String,
}

#[derive(Deserialize)]
struct Failure {
    kind: String,
    message: String,
}

#[derive(Deserialize, Default)]
struct Timings {
    #[serde(default)]
    wall_seconds: f64,
}

/// A part or file found in place.
#[derive(Debug, Clone)]
pub struct PublishedFile {
    pub kind: &'static str,
    pub resource: Option<String>,
    pub name: String,
    pub archive: Option<String>,
    pub records: Option<u64>,
    pub bytes: u64,
    pub sha256: String,
}

/// A resource's measured export, kept for `ferry plan`.
#[derive(Debug, Clone)]
pub struct ResourceRun {
    pub name: String,
    pub format: String,
    pub gzip: bool,
    pub records: u64,
    /// Compressed bytes of its files.
    pub bytes: u64,
    pub wall_seconds: f64,
}

/// A published snapshot whose manifest and every part and file are in place.
#[derive(Debug, Clone)]
pub struct PublishedSnapshot {
    pub completed_at: Option<String>,
    pub incomplete: bool,
    /// The resources left out of an incomplete snapshot, and why.
    pub error: Option<String>,
    pub records: u64,
    /// Bytes on disk: the parts plus any file not inside a part.
    pub bytes: u64,
    pub files: Vec<PublishedFile>,
    pub resources: Vec<ResourceRun>,
}

/// Reads a snapshot directory: `None` when it has no manifest (not published), an error
/// naming what is missing or wrong when its manifest does not match the files.
pub fn inspect_published(dir: &Path) -> Option<Result<PublishedSnapshot, String>> {
    let manifest_path = crate::package::layout::manifest_path(dir);
    let text = std::fs::read(&manifest_path).ok()?;
    Some(check(dir, &text))
}

/// A delivered snapshot's parts are wherever `delivery.json` says they were uploaded.
fn delivery(dir: &Path) -> Result<Option<DeliveryRecord>, String> {
    match std::fs::read(dir.join(DELIVERY_RECORD)) {
        Ok(text) => serde_json::from_slice(&text).map(Some).map_err(|e| format!("{DELIVERY_RECORD} cannot be read ({e})")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{DELIVERY_RECORD} cannot be read ({e})")),
    }
}

fn check(dir: &Path, text: &[u8]) -> Result<PublishedSnapshot, String> {
    let m: Manifest = serde_json::from_slice(text).map_err(|e| format!("manifest.json cannot be read ({e})"))?;
    let delivered = delivery(dir)?;
    let in_place = |name: &str, bytes: u64| -> Result<(), String> {
        if let Some(d) = &delivered {
            return match d.objects.iter().find(|o| o.name == name) {
                Some(o) if o.bytes == bytes => Ok(()),
                Some(o) => Err(format!("{name} was delivered to {} with {} bytes, the manifest says {bytes}", d.url, o.bytes)),
                None => Err(format!("{name} is not among the objects delivered to {}", d.url)),
            };
        }
        let path = dir.join(name);
        match std::fs::metadata(&path) {
            Ok(meta) if meta.len() == bytes => Ok(()),
            Ok(meta) => Err(format!("{} has {} bytes, the manifest says {bytes}", path.display(), meta.len())),
            Err(e) => Err(format!("{} is missing ({e})", path.display())),
        }
    };
    let mut files = Vec::new();
    let mut bytes = 0;
    for a in &m.archives {
        in_place(&a.name, a.bytes)?;
        bytes += a.bytes;
        files.push(PublishedFile {
            kind: "part",
            resource: None,
            name: a.name.clone(),
            archive: None,
            records: None,
            bytes: a.bytes,
            sha256: a.sha256.clone(),
        });
    }
    let mut resources = Vec::new();
    let mut failed = Vec::new();
    for r in &m.resources {
        if let Some(e) = &r.error {
            failed.push(format!("resource `{}` failed ({}): {}", r.name, e.kind, e.message));
        }
        for f in &r.files {
            match &f.archive {
                Some(part) if !m.archives.iter().any(|a| &a.name == part) => {
                    return Err(format!("{} is said to be in part {part}, which the manifest does not list", f.path));
                }
                Some(_) => {}
                None => {
                    in_place(&f.path, f.bytes)?;
                    bytes += f.bytes;
                }
            }
            files.push(PublishedFile {
                kind: "file",
                resource: Some(r.name.clone()),
                name: f.path.clone(),
                archive: f.archive.clone(),
                records: Some(f.records),
                bytes: f.bytes,
                sha256: f.sha256.clone(),
            });
        }
        if r.error.is_none() {
            resources.push(ResourceRun {
                name: r.name.clone(),
                format: r.format.clone(),
                gzip: r.gzip,
                records: r.records,
                bytes: r.files.iter().map(|f| f.bytes).sum(),
                wall_seconds: r.timings.wall_seconds,
            });
        }
    }
    let incomplete = m.status != "completed";
    Ok(PublishedSnapshot {
        completed_at: m.completed_at,
        incomplete,
        error: (!failed.is_empty()).then(|| failed.join("; ")),
        records: m.resources.iter().map(|r| r.records).sum(),
        bytes,
        files,
        resources,
    })
}

/// Who a published snapshot is, from its manifest: enough to record it again in a
/// catalog that lost it.
#[derive(Debug, Clone, Deserialize)]
pub struct Identity {
    pub snapshot_id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub as_of: String,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub resources: Vec<Named>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Named {
    pub name: String,
}

/// The largest manifest the catalog reads back; ferry's own are far smaller.
const MAX_MANIFEST_BYTES: u64 = 64 << 20;

/// The identity in `dir/manifest.json`, when it is a regular file of a sane size that
/// names this very directory.
pub fn identity(dir: &Path) -> Option<Identity> {
    use std::io::Read as _;
    let path = dir.join("manifest.json");
    if !std::fs::symlink_metadata(&path).ok()?.is_file() {
        return None;
    }
    let mut text = Vec::new();
    std::fs::File::open(&path).ok()?.take(MAX_MANIFEST_BYTES).read_to_end(&mut text).ok()?;
    let id: Identity = serde_json::from_slice(&text).ok()?;
    (dir.file_name()? == id.snapshot_id.as_str()).then_some(id)
}

/// Removes `.deleting-*` directories a crash left behind mid-delete.
pub fn remove_leftover_deletes(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else { return };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(".deleting-") {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
