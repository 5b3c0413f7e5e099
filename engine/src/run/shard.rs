//! A sharded run (`ferry run JOB --shard i/N`): this worker's slice of every resource,
//! written into the shared snapshot directory `<output dir>/<snapshot id>/` and ended by
//! its shard manifest. No worker talks to another: the snapshot id, the as_of and the
//! cut points are each a function of what every worker reads alike.
//!
//! A resource is cut on its main table's creation column (the column the as-of cut
//! already applies to) into `N` ranges holding equal numbers of rows: shard `i` reads
//! `[v(i), v(i+1))`, where `v(k)` is the column's value at position `k·rows/N` of the
//! rows sorted by it (`v(0)` and `v(N)` open). The ranges cover every row once whatever
//! the values are; each shard computes only its own two cut points (one sorted pass), and `assemble`
//! checks neighbours agree. A resource without a creation column or without a record key
//! (an aggregate, like the category-totals example) cannot be cut: it runs whole on one
//! shard.

use chrono::Utc;
use sha2::{Digest, Sha256};

use super::{Prepared, RunError, RunOptions, RunReport, export_snapshot, prepare};
use crate::job::Job;
use crate::package::Staging;
use crate::package::layout::Shard;
use crate::package::shards::{Cut, ShardManifest, whole_owner};
use crate::source::{Range, Source, TableQuery};

/// This worker's shard and the snapshot all shards write.
#[derive(Debug, Clone)]
pub struct ShardRun {
    pub shard: Shard,
    pub snapshot_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    #[error(
        "a sharded run needs one as_of every shard shares, but job {job} sets none (it would be each worker's start); set `[snapshot] as_of = \"2026-03-31T00:00:00Z\"`"
    )]
    NoAsOf { job: String },
    #[error(
        "sharded runs write to a directory every worker mounts (`[output] dir`, local or NFS/EFS); `s3://` delivery of shards is not supported yet, so set `[output] dir` to a shared path"
    )]
    S3,
    #[error(
        "job {job} signs its manifest (`[output] sign_with`), which a sharded run cannot do yet: the manifest is written by `ferry assemble`; remove `sign_with` for sharded runs"
    )]
    Sign { job: String },
    #[error("cannot cut resource `{resource}` into shards: {source}")]
    Cut { resource: String, source: Box<crate::source::SourceError> },
    #[error(transparent)]
    Window(#[from] crate::window::WindowError),
}

/// The snapshot id shards derive when none is given: from the job's name and as_of, so
/// every worker of one job and as_of finds the same, and another as_of another.
pub fn snapshot_id_for(job: &Job) -> String {
    let digest = Sha256::digest(format!("ferry-shards\0{}\0{}", job.name, job.as_of.timestamp_micros()));
    let h = hex::encode(&digest[..16]);
    // Shaped like a UUID (version nibble 8: custom), as other snapshot ids are.
    format!("{}-{}-8{}-{}-{}", &h[0..8], &h[8..12], &h[13..16], &h[16..20], &h[20..32])
}

/// Runs this worker's shard: the cuts first, then the export into a staging directory
/// inside the shared snapshot directory, then the files move in and the shard manifest
/// is written last. Not recorded in a catalog: `ferry assemble` records the snapshot.
pub(super) fn run_shard(job: &Job, options: &RunOptions, run: &ShardRun) -> Result<RunReport, RunError> {
    if !job.as_of_given {
        return Err(ShardError::NoAsOf { job: job.path.display().to_string() }.into());
    }
    if job.delivery.is_some() {
        return Err(ShardError::S3.into());
    }
    if job.trust.sign_with.is_some() {
        return Err(ShardError::Sign { job: job.path.display().to_string() }.into());
    }
    let created_at = Utc::now();
    let prepared = prepare(job, options)?;
    let cuts = cuts(job, &prepared, run.shard)?;
    let snapshot_dir = job.output_dir.join(&run.snapshot_id);
    let staging = Staging::create_shard(&snapshot_dir, &run.shard.name())?;
    let (mut manifest, staging, _, cuts) =
        export_snapshot(job, options, &run.snapshot_id, prepared, staging, None, Some(cuts), created_at)?;
    manifest.consistency = manifest.consistency.map(|c| crate::package::ConsistencyEntry {
        detail: format!("{} (within shard {}/{})", c.detail, run.shard.index, run.shard.count),
        ..c
    });
    let attempt = uuid::Uuid::new_v4().simple().to_string();
    let shard_manifest = ShardManifest { shard: run.shard, attempt: attempt.clone(), cuts: cuts.unwrap_or_default(), manifest };
    let mut text = serde_json::to_vec_pretty(&shard_manifest).expect("a shard manifest serializes");
    text.push(b'\n');
    super::hold_before_publish();
    let path = staging.publish_shard(&run.shard.name(), &run.shard.tag(), &run.shard.manifest_name(&attempt), &text)?;
    Ok(RunReport { snapshot_dir: path, manifest: shard_manifest.manifest, delivered: None })
}

/// Where this shard cuts each selected resource (selection order).
fn cuts(job: &Job, prepared: &Prepared, shard: Shard) -> Result<Vec<Cut>, RunError> {
    let mut cuts = Vec::with_capacity(prepared.selection.resources.len());
    for selected in &prepared.selection.resources {
        let name = &selected.spec.name;
        let cuttable =
            selected.plugin.as_ref().and_then(|p| p.info.created_column.clone().filter(|_| p.info.key.is_some()).map(|c| (p, c)));
        let Some((plugin, column)) = cuttable else {
            let wholes = cuts.iter().filter(|c: &&Cut| c.column.is_none()).count();
            cuts.push(Cut::whole(name, whole_owner(wholes, shard.count) == shard.index));
            continue;
        };
        let window = crate::window::for_resource(&plugin.info.name, plugin.info.window_column.as_deref(), selected.spec.months, job.as_of)
            .map_err(ShardError::from)?;
        let columns = [column.clone()];
        let query = TableQuery {
            table: &plugin.info.main_table,
            columns: &columns,
            range: window.as_ref().map(|w| Range { column: &w.column, start: w.bounds.start, end: Some(w.bounds.end) }),
            order_by: None,
            created_before: Some(Range { column: &column, start: None, end: Some(job.as_of.timestamp_micros()) }),
            shard: None,
        };
        let (start, end) = slice(prepared.source.as_ref(), &query, &column, shard)
            .map_err(|source| ShardError::Cut { resource: name.clone(), source: Box::new(source) })?;
        cuts.push(Cut::slice(name, &column, start, end));
    }
    Ok(cuts)
}

/// Shard `i`'s range `[v(i), v(i+1))` of `column`: `v(k)` is the value at position
/// `k·rows/N` of the rows sorted by it, open at both ends of the table (past the last
/// numbered row, `i64::MAX`: an empty slice). One count and one sorted pass.
fn slice(
    source: &dyn Source,
    query: &TableQuery,
    column: &str,
    shard: Shard,
) -> Result<(Option<i64>, Option<i64>), crate::source::SourceError> {
    let rows = source.count(query)?;
    let n = u64::from(shard.count);
    let (lo, hi) = (u64::from(shard.index), u64::from(shard.index) + 1);
    // `v(0)` and `v(N)` are open: only the inner cut points are looked up.
    let inner: Vec<u64> = [lo, hi].into_iter().filter(|k| *k != 0 && *k != n).collect();
    let offsets: Vec<u64> = inner.iter().map(|k| (u128::from(rows) * u128::from(*k) / u128::from(n)) as u64).collect();
    let values = if offsets.is_empty() { Vec::new() } else { source.values_at(query, column, &offsets)? };
    let at = |k: u64| inner.iter().position(|i| *i == k).map(|p| values[p].unwrap_or(i64::MAX));
    Ok((at(lo), at(hi)))
}
