//! Sharded snapshots (`ferry run --shard i/N`, `ferry assemble`): each shard moves its
//! files and parts into the shared snapshot directory, then writes its shard manifest
//! last (`shards/shard-0003-of-0004.<attempt>.json`); `assemble` checks every shard
//! manifest and writes the one `manifest.json` of the whole snapshot.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::layout::{MANIFEST, MANIFEST_TMP, SHARDS_DIR, Shard};
use super::{ArchiveEntry, ConsistencyEntry, Manifest, Status};

/// What one shard wrote: its part of the snapshot, and where it cut each resource.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardManifest {
    /// The shard's index and the shard count it ran with.
    pub shard: Shard,
    /// A fresh id per run of the shard: two manifests of one index are two workers.
    pub attempt: String,
    /// Per resource, the slice this shard exported (job order).
    pub cuts: Vec<Cut>,
    /// The shard's part of the snapshot: its resources' files and its parts. The
    /// snapshot id, job name and as_of are those every shard must share.
    pub manifest: Manifest,
}

/// The slice of one resource a shard exported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cut {
    pub resource: String,
    /// The main table's creation column the slice is a range of; `None`: the resource
    /// cannot be cut (no creation column, or no record key: an aggregate) and runs whole
    /// on one shard.
    pub column: Option<String>,
    /// Microseconds, inclusive; `None`: from the first row.
    pub start: Option<i64>,
    /// Microseconds, exclusive; `None`: to the last row.
    pub end: Option<i64>,
    /// The shard exported this resource (always, for a cut resource; for a whole one,
    /// only on the shard that owns it).
    pub ran: bool,
}

impl Cut {
    /// The slice of a resource that can be cut, from the values at the shard's two
    /// quantiles (`None` at the ends).
    pub fn slice(resource: &str, column: &str, start: Option<i64>, end: Option<i64>) -> Self {
        Cut { resource: resource.into(), column: Some(column.into()), start, end, ran: true }
    }

    /// A resource that runs whole on the shard `owner`.
    pub fn whole(resource: &str, ran: bool) -> Self {
        Cut { resource: resource.into(), column: None, start: None, end: None, ran }
    }
}

/// The shard that runs a resource that cannot be cut: the `n`th such resource of the job
/// goes to shard `n mod count`, so whole resources spread over the shards.
pub fn whole_owner(nth_whole: usize, count: u32) -> u32 {
    (nth_whole % count.max(1) as usize) as u32
}

/// Where a sharded snapshot lies: a directory every worker mounts ([`DirShards`]), or
/// the snapshot's prefix in a bucket (`crate::s3::S3Shards`). `assemble` reads and
/// writes only through it, so both go through the same checks.
pub trait ShardStore {
    /// The snapshot's place, for messages (`/snapshots/<id>`, `s3://bucket/prefix/<id>`).
    fn place(&self) -> String;
    /// The snapshot id the place names (its last segment).
    fn snapshot_id(&self) -> String;
    /// The names in the `shards/` folder; `None` when there is no such folder.
    fn shard_names(&self) -> Result<Option<Vec<String>>, StoreError>;
    /// One shard manifest's bytes.
    fn read_shard(&self, name: &str) -> Result<Vec<u8>, StoreError>;
    /// The size of the snapshot's file or part `name`; `None` when it is not there.
    fn size(&self, name: &str) -> Result<Option<u64>, StoreError>;
    /// Writes the snapshot's `manifest.json`, last and whole.
    fn write_manifest(&self, bytes: &[u8]) -> Result<(), StoreError>;
    /// Removes what shards killed mid-run left behind (local staging directories).
    fn clean_up(&self) {}
}

/// Why a [`ShardStore`] could not read or write.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The object store's own error (`crate::s3::S3Error`), boxed: `package` knows no S3.
    #[error(transparent)]
    Remote(Box<dyn std::error::Error + Send + Sync>),
}

/// A sharded snapshot in a directory: `<[output] dir>/<snapshot id>/`.
#[derive(Debug, Clone)]
pub struct DirShards {
    pub dir: PathBuf,
}

impl ShardStore for DirShards {
    fn place(&self) -> String {
        self.dir.display().to_string()
    }

    fn snapshot_id(&self) -> String {
        self.dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    }

    fn shard_names(&self) -> Result<Option<Vec<String>>, StoreError> {
        let entries = match std::fs::read_dir(self.dir.join(SHARDS_DIR)) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            other => other?,
        };
        let names = entries.map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned())).collect::<Result<_, _>>()?;
        Ok(Some(names))
    }

    fn read_shard(&self, name: &str) -> Result<Vec<u8>, StoreError> {
        Ok(std::fs::read(self.dir.join(SHARDS_DIR).join(name))?)
    }

    fn size(&self, name: &str) -> Result<Option<u64>, StoreError> {
        match std::fs::metadata(self.dir.join(name)) {
            Ok(meta) => Ok(Some(meta.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn write_manifest(&self, bytes: &[u8]) -> Result<(), StoreError> {
        let tmp = self.dir.join(MANIFEST_TMP);
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        Ok(std::fs::rename(&tmp, self.dir.join(MANIFEST))?)
    }

    fn clean_up(&self) {
        // A shard killed mid-run left its staging directory: not part of the snapshot.
        super::staging::remove_dead_staging(&self.dir);
    }
}

/// Why `assemble` refused.
#[derive(Debug, thiserror::Error)]
pub enum AssembleError {
    #[error(
        "cannot read the shard manifests in {place}: {source}; is this the snapshot's place (`<dir or s3://bucket/prefix>/<snapshot-id>`)?"
    )]
    Read { place: String, source: StoreError },
    #[error("{place} holds no shard manifest; run the shards first (`ferry run JOB --shard i/N --snapshot-id ID`)")]
    NoShards { place: String },
    #[error("shard manifest {place} is not valid: {reason}; remove it and rerun that shard")]
    Bad { place: String, reason: String },
    #[error("`--shards {count}` must be at least 1")]
    ZeroShards { count: u32 },
    #[error("{} of {count} shards missing: {}; rerun each with `ferry run JOB --shard i/{count} --snapshot-id ID`", missing.len(), missing.iter().map(|i| format!("{i}/{count}")).collect::<Vec<_>>().join(", "))]
    Missing { count: u32, missing: Vec<u32> },
    #[error("shard {index}/{count} has {n} manifests (attempts {attempts}): two workers ran that index; remove its manifests and rerun shard {index} alone", n = attempts.split(", ").count())]
    Duplicate { index: u32, count: u32, attempts: String },
    #[error("shard manifest {name} is stale: {reason}; remove it (and rerun that shard if it belongs to this snapshot)")]
    Stale { name: String, reason: String },
    #[error(
        "shards {a} and {b} cut resource `{resource}` at different points ({left} and {right}): the source changed between their reads; rerun shard {b}"
    )]
    Gap { resource: String, a: u32, b: u32, left: String, right: String },
    #[error("cannot write {place}/{MANIFEST}: {source}")]
    Write { place: String, source: StoreError },
}

/// The assembled snapshot: its manifest and how many shards went into it.
#[derive(Debug)]
pub struct Assembled {
    pub manifest: Manifest,
    pub shards: u32,
}

/// Reads every shard manifest of the snapshot in `store`, checks they make one snapshot
/// of `count` shards, and writes its `manifest.json`.
pub fn assemble(store: &dyn ShardStore, count: u32) -> Result<Assembled, AssembleError> {
    if count == 0 {
        return Err(AssembleError::ZeroShards { count });
    }
    let found = read_shards(store)?;
    let snapshot_id = store.snapshot_id();
    check_shared(store, &found, &snapshot_id, count)?;
    let mut by_index: BTreeMap<u32, Vec<&ShardManifest>> = BTreeMap::new();
    for (_, m) in &found {
        by_index.entry(m.shard.index).or_default().push(m);
    }
    if let Some((index, ms)) = by_index.iter().find(|(_, ms)| ms.len() > 1) {
        let attempts = ms.iter().map(|m| m.attempt.as_str()).collect::<Vec<_>>().join(", ");
        return Err(AssembleError::Duplicate { index: *index, count, attempts });
    }
    let missing: Vec<u32> = (0..count).filter(|i| !by_index.contains_key(i)).collect();
    if !missing.is_empty() {
        return Err(AssembleError::Missing { count, missing });
    }
    let shards: Vec<&ShardManifest> = by_index.into_values().map(|ms| ms[0]).collect();
    check_cuts(&shards)?;
    let manifest = merge(&shards);
    store.clean_up();
    store.write_manifest(&manifest.to_json()).map_err(|source| AssembleError::Write { place: store.place(), source })?;
    Ok(Assembled { manifest, shards: count })
}

/// Every shard manifest in the store's `shards/` folder, by name.
fn read_shards(store: &dyn ShardStore) -> Result<Vec<(String, ShardManifest)>, AssembleError> {
    let names = store.shard_names().map_err(|source| AssembleError::Read { place: format!("{}/{SHARDS_DIR}", store.place()), source })?;
    let Some(names) = names else { return Err(AssembleError::NoShards { place: store.place() }) };
    let mut found: Vec<(String, ShardManifest)> = Vec::new();
    for name in names {
        let Some((shard, attempt)) = Shard::parse_manifest_name(&name) else { continue };
        let bad = |reason: String| AssembleError::Bad { place: format!("{}/{SHARDS_DIR}/{name}", store.place()), reason };
        let text = store.read_shard(&name).map_err(|e| bad(e.to_string()))?;
        let m: ShardManifest = serde_json::from_slice(&text).map_err(|e| bad(e.to_string()))?;
        if m.shard != shard || m.attempt != attempt {
            return Err(bad(format!("its name says shard {}/{} attempt {attempt}, its content another", shard.index, shard.count)));
        }
        found.push((name, m));
    }
    if found.is_empty() {
        return Err(AssembleError::NoShards { place: store.place() });
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(found)
}

/// Every shard manifest must be of this snapshot, this shard count, the job and as_of
/// most of them share, and list files that are in place.
fn check_shared(store: &dyn ShardStore, found: &[(String, ShardManifest)], snapshot_id: &str, count: u32) -> Result<(), AssembleError> {
    // What every shard must share: the snapshot id, the job and its as_of.
    let key = |m: &ShardManifest| (m.manifest.snapshot_id.clone(), m.manifest.name.clone(), m.manifest.as_of.clone());
    let mut votes: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    for (_, m) in found.iter().filter(|(_, m)| m.shard.count == count) {
        *votes.entry(key(m)).or_default() += 1;
    }
    let common = votes.into_iter().max_by_key(|(_, n)| *n).map(|(k, _)| k);
    for (name, m) in found {
        let stale = |reason: String| Err(AssembleError::Stale { name: name.clone(), reason });
        if m.shard.count != count {
            return stale(format!(
                "it is shard {}/{} of an earlier attempt with {} shards, not {count} (its files' names hold `{}`)",
                m.shard.index,
                m.shard.count,
                m.shard.count,
                m.shard.tag()
            ));
        }
        if m.manifest.snapshot_id != snapshot_id {
            return stale(format!("it belongs to snapshot {}, not {snapshot_id}", m.manifest.snapshot_id));
        }
        if let Some((_, job, as_of)) = &common
            && (&m.manifest.name != job || &m.manifest.as_of != as_of)
        {
            return stale(format!(
                "it exported job `{}` as of {}, the other shards job `{job}` as of {as_of} (an earlier attempt?)",
                m.manifest.name, m.manifest.as_of
            ));
        }
        if m.shard.index >= count {
            return stale(format!("its index {} is not below the shard count {count}", m.shard.index));
        }
        if let Some(missing) = missing_file(store, &m.manifest)? {
            return stale(format!("{missing} (replaced or removed by another attempt of shard {})", m.shard.index));
        }
    }
    Ok(())
}

/// Writes the local copy of a snapshot assembled in a bucket at `url`: `<root>/<id>/`
/// with its `delivery.json` (every object the manifest lists), then `manifest.json`, as
/// a delivery leaves them, so the root's catalog records it delivered. Returns the
/// snapshot's local directory.
pub fn keep_delivered_copy(root: &std::path::Path, manifest: &Manifest, url: &str) -> std::io::Result<PathBuf> {
    let dir = root.join(&manifest.snapshot_id);
    std::fs::create_dir_all(&dir)?;
    let mut record = serde_json::to_vec_pretty(&super::DeliveryRecord::new(url, manifest)).map_err(std::io::Error::other)?;
    record.push(b'\n');
    std::fs::write(dir.join(super::DELIVERY_RECORD), record)?;
    DirShards { dir: dir.clone() }.write_manifest(&manifest.to_json()).map_err(|e| match e {
        StoreError::Io(e) => e,
        StoreError::Remote(e) => std::io::Error::other(e),
    })?;
    Ok(dir)
}

/// The first file or part a shard manifest lists that is not in the store at its size.
fn missing_file(store: &dyn ShardStore, m: &Manifest) -> Result<Option<String>, AssembleError> {
    let parts = m.archives.iter().map(|a| (a.name.as_str(), a.bytes));
    let loose = m.resources.iter().flat_map(|r| &r.files).filter(|f| f.archive.is_none()).map(|f| (f.path.as_str(), f.bytes));
    for (name, bytes) in parts.chain(loose) {
        match store.size(name).map_err(|source| AssembleError::Read { place: store.place(), source })? {
            Some(size) if size == bytes => {}
            Some(size) => return Ok(Some(format!("its file {name} has {size} bytes, it lists {bytes}"))),
            None => return Ok(Some(format!("its file {name} is not in the snapshot"))),
        }
    }
    Ok(None)
}

/// Each cut resource's slices must follow each other without gap or overlap, from the
/// first row to the last; each whole resource must have run on exactly one shard.
fn check_cuts(shards: &[&ShardManifest]) -> Result<(), AssembleError> {
    let show = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_else(|| "the end".into());
    let names: Vec<&str> = shards[0].cuts.iter().map(|c| c.resource.as_str()).collect();
    for (i, resource) in names.iter().enumerate() {
        let cuts: Vec<&Cut> = shards.iter().filter_map(|s| s.cuts.get(i).filter(|c| c.resource == *resource)).collect();
        if cuts.len() != shards.len() {
            let reason = format!("the shards do not list the same resources (`{resource}`): they ran different jobs");
            return Err(AssembleError::Stale { name: shards[0].shard.name(), reason });
        }
        if cuts[0].column.is_none() {
            let ran = cuts.iter().filter(|c| c.ran).count();
            if ran != 1 {
                let reason = format!("resource `{resource}` cannot be cut and ran on {ran} shards, not one");
                return Err(AssembleError::Stale { name: shards[0].shard.name(), reason });
            }
            continue;
        }
        let ends = std::iter::once(None).chain(cuts.iter().map(|c| c.end));
        for (k, (c, left)) in cuts.iter().zip(ends).enumerate() {
            if c.start != left {
                return Err(AssembleError::Gap {
                    resource: resource.to_string(),
                    a: k.saturating_sub(1) as u32,
                    b: k as u32,
                    left: show(left),
                    right: show(c.start),
                });
            }
        }
        if let Some(last) = cuts.last().filter(|c| c.end.is_some()) {
            let b = shards.len() as u32 - 1;
            return Err(AssembleError::Gap { resource: resource.to_string(), a: b, b, left: show(last.end), right: "the end".into() });
        }
    }
    Ok(())
}

/// One manifest from the shards' (in shard order): files and parts of all, records
/// summed, the slowest shard's wall time per resource, the load order again.
fn merge(shards: &[&ShardManifest]) -> Manifest {
    let first = &shards[0].manifest;
    let mut resources = first.resources.clone();
    for (i, r) in resources.iter_mut().enumerate() {
        let entries: Vec<_> = shards.iter().filter_map(|s| s.manifest.resources.get(i)).collect();
        let owner = shards.iter().position(|s| s.cuts.get(i).is_some_and(|c| c.ran)).unwrap_or(0);
        if let Some(e) = shards[owner].manifest.resources.get(i) {
            *r = e.clone();
        }
        r.records = entries.iter().map(|e| e.records).sum();
        r.files = entries.iter().flat_map(|e| e.files.iter().cloned()).collect();
        r.timings.wall_seconds = entries.iter().map(|e| e.timings.wall_seconds).fold(0.0, f64::max);
        if let Some(failed) = entries.iter().find_map(|e| e.error.clone()) {
            r.error = Some(failed);
        }
    }
    let mut archives: Vec<ArchiveEntry> = Vec::new();
    for kind in ["tables", "attachments"] {
        let of_kind = shards.iter().flat_map(|s| &s.manifest.archives).filter(|a| a.kind == kind);
        archives.extend(of_kind.zip(1..).map(|(a, part)| ArchiveEntry { part, ..a.clone() }));
    }
    let kinds: BTreeSet<&str> = ["tables", "attachments"].into();
    archives.extend(shards.iter().flat_map(|s| &s.manifest.archives).filter(|a| !kinds.contains(a.kind.as_str())).cloned());
    let method = first.consistency.as_ref().map(|c| c.method.clone()).unwrap_or_else(|| "per-read".into());
    let consistency = ConsistencyEntry {
        method: "sharded-as-of".into(),
        detail: format!(
            "{} shards each read the source at its own moment ({method} within a shard); every shard cut at the same as_of on the creation columns, so rows created later are in no shard, but rows updated or deleted between the shards' reads show each shard's view",
            shards.len()
        ),
    };
    let status = if shards.iter().all(|s| s.manifest.status == Status::Completed) && resources.iter().all(|r| r.error.is_none()) {
        Status::Completed
    } else {
        Status::Incomplete
    };
    Manifest {
        format_version: first.format_version,
        snapshot_id: first.snapshot_id.clone(),
        name: first.name.clone(),
        description: first.description.clone(),
        as_of: first.as_of.clone(),
        created_at: shards.iter().map(|s| s.manifest.created_at.clone()).min().unwrap_or_default(),
        completed_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        status,
        ferry_version: env!("CARGO_PKG_VERSION").into(),
        archives,
        consistency: Some(consistency),
        load_order: super::relations::load_order(&resources),
        resources,
        encryption: first.encryption.clone(),
    }
}
