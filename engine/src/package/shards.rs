//! Sharded snapshots (`ferry run --shard i/N`, `ferry assemble`): each shard moves its
//! files and parts into the shared snapshot directory, then writes its shard manifest
//! last (`shards/shard-0003-of-0004.<attempt>.json`); `assemble` checks every shard
//! manifest and writes the one `manifest.json` of the whole snapshot.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};

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

/// Why `assemble` refused.
#[derive(Debug, thiserror::Error)]
pub enum AssembleError {
    #[error("cannot read the shard manifests in {path}: {source}; is this the snapshot's directory (`<dir>/<snapshot-id>`)?")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} holds no shard manifest; run the shards first (`ferry run JOB --shard i/N --snapshot-id ID`)")]
    NoShards { path: PathBuf },
    #[error("shard manifest {path} is not valid: {reason}; remove it and rerun that shard")]
    Bad { path: PathBuf, reason: String },
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
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

/// The assembled snapshot: its manifest and how many shards went into it.
#[derive(Debug)]
pub struct Assembled {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub shards: u32,
}

/// Reads every shard manifest of `dir`, checks they make one snapshot of `count`
/// shards, and writes `dir/manifest.json`.
pub fn assemble(dir: &Path, count: u32) -> Result<Assembled, AssembleError> {
    if count == 0 {
        return Err(AssembleError::ZeroShards { count });
    }
    let shards_dir = dir.join(SHARDS_DIR);
    let read_err = |source| AssembleError::Read { path: shards_dir.clone(), source };
    let entries = match std::fs::read_dir(&shards_dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(AssembleError::NoShards { path: dir.into() }),
        other => other.map_err(read_err)?,
    };
    let mut found: Vec<(String, ShardManifest)> = Vec::new();
    for entry in entries {
        let name = entry.map_err(read_err)?.file_name().to_string_lossy().into_owned();
        let Some((shard, attempt)) = Shard::parse_manifest_name(&name) else { continue };
        let path = shards_dir.join(&name);
        let bad = |reason: String| AssembleError::Bad { path: path.clone(), reason };
        let text = std::fs::read(&path).map_err(|e| bad(e.to_string()))?;
        let m: ShardManifest = serde_json::from_slice(&text).map_err(|e| bad(e.to_string()))?;
        if m.shard != shard || m.attempt != attempt {
            return Err(bad(format!("its name says shard {}/{} attempt {attempt}, its content another", shard.index, shard.count)));
        }
        found.push((name, m));
    }
    if found.is_empty() {
        return Err(AssembleError::NoShards { path: dir.into() });
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    let snapshot_id = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    // What every shard must share: the snapshot id, the job and its as_of.
    let key = |m: &ShardManifest| (m.manifest.snapshot_id.clone(), m.manifest.name.clone(), m.manifest.as_of.clone());
    let mut votes: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    for (_, m) in found.iter().filter(|(_, m)| m.shard.count == count) {
        *votes.entry(key(m)).or_default() += 1;
    }
    let common = votes.into_iter().max_by_key(|(_, n)| *n).map(|(k, _)| k);
    for (name, m) in &found {
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
        if let Some(missing) = missing_file(dir, &m.manifest) {
            return stale(format!("{missing} (replaced or removed by another attempt of shard {})", m.shard.index));
        }
    }
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
    // A shard killed mid-run left its staging directory: not part of the snapshot.
    super::staging::remove_dead_staging(dir);
    let write_err = |source| AssembleError::Write { path: dir.join(MANIFEST), source };
    let write = || -> std::io::Result<()> {
        let tmp = dir.join(MANIFEST_TMP);
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&manifest.to_json())?;
        file.sync_all()?;
        std::fs::rename(&tmp, dir.join(MANIFEST))
    };
    write().map_err(write_err)?;
    Ok(Assembled { dir: dir.into(), manifest, shards: count })
}

/// The first file or part a shard manifest lists that is not in `dir` at its size.
fn missing_file(dir: &Path, m: &Manifest) -> Option<String> {
    let parts = m.archives.iter().map(|a| (a.name.as_str(), a.bytes));
    let loose = m.resources.iter().flat_map(|r| &r.files).filter(|f| f.archive.is_none()).map(|f| (f.path.as_str(), f.bytes));
    for (name, bytes) in parts.chain(loose) {
        match std::fs::metadata(dir.join(name)) {
            Ok(meta) if meta.len() == bytes => {}
            Ok(meta) => return Some(format!("its file {name} has {} bytes, it lists {bytes}", meta.len())),
            Err(_) => return Some(format!("its file {name} is not in the snapshot directory")),
        }
    }
    None
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
