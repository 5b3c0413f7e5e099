//! A sharded run (`ferry run JOB --shard i/N`): this worker's slice of every resource,
//! written into the shared snapshot directory `<output dir>/<snapshot id>/` and ended by
//! its shard manifest. No worker talks to another: the snapshot id, the as_of and the
//! cut points are each a function of what every worker reads alike.
//!
//! A resource is cut on its main table's creation column (the column the as-of cut
//! already applies to) into `N` ranges holding equal numbers of rows: shard `i` reads
//! `[v(i), v(i+1))`, where `v(k)` is the column's value at position `k·rows/N` of the
//! rows sorted by it (`v(0)` and `v(N)` open). The ranges cover every row once whatever
//! the values are; each shard computes only its own two cut points, from a sample of the
//! values every shard draws alike (a count, then one scan that sorts only the sample), and
//! `assemble` checks neighbours agree. A resource without a creation column or without a record key
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
/// inside the shared snapshot directory (for `s3://` output, a local one while its parts
/// stream up), then the files move in (or go up) and the shard manifest is written last.
/// Not recorded in a catalog: `ferry assemble` records the snapshot.
pub(super) fn run_shard(job: &Job, options: &RunOptions, run: &ShardRun) -> Result<RunReport, RunError> {
    if !job.as_of_given {
        return Err(ShardError::NoAsOf { job: job.path.display().to_string() }.into());
    }
    if job.trust.sign_with.is_some() {
        return Err(ShardError::Sign { job: job.path.display().to_string() }.into());
    }
    let created_at = Utc::now();
    // Bad S3 settings fail the shard before anything is exported.
    let s3 = job.delivery.as_ref().map(|url| crate::s3::S3::connect(url, &job.s3)).transpose()?;
    let prepared = prepare(job, options)?;
    let cuts = cuts(job, &prepared, run.shard)?;
    if let Some(s3) = &s3 {
        crate::s3::withdraw_shard(s3, &run.snapshot_id, run.shard)?;
    }
    let snapshot_dir = job.output_dir.join(&run.snapshot_id);
    let staging = Staging::create_shard(&snapshot_dir, &run.shard.name())?;
    let (mut manifest, staging, delivery, cuts) =
        export_snapshot(job, options, &run.snapshot_id, prepared, staging, s3.as_ref(), Some(cuts), created_at)?;
    manifest.consistency = manifest.consistency.map(|c| crate::package::ConsistencyEntry {
        detail: format!("{} (within shard {}/{})", c.detail, run.shard.index, run.shard.count),
        ..c
    });
    let attempt = uuid::Uuid::new_v4().simple().to_string();
    let shard_manifest = ShardManifest { shard: run.shard, attempt: attempt.clone(), cuts: cuts.unwrap_or_default(), manifest };
    let mut text = serde_json::to_vec_pretty(&shard_manifest).expect("a shard manifest serializes");
    text.push(b'\n');
    super::hold_before_publish();
    let name = run.shard.manifest_name(&attempt);
    let (path, delivered) = match (delivery, &s3) {
        (Some(delivery), Some(s3)) => {
            let delivered = deliver_shard(s3, delivery, &staging, &shard_manifest.manifest, run, &name, text)?;
            (job.output_dir.join(&run.snapshot_id), Some(delivered))
        }
        _ => (staging.publish_shard(&run.shard.name(), &run.shard.tag(), &name, &text)?, None),
    };
    Ok(RunReport { snapshot_dir: path, manifest: shard_manifest.manifest, delivered })
}

/// A shard's end in a bucket: its loose files go up, its earlier attempts' objects that
/// this one did not overwrite go, and its shard manifest goes up last.
fn deliver_shard(
    s3: &crate::s3::S3,
    mut delivery: crate::s3::Delivery,
    staging: &Staging,
    manifest: &crate::package::Manifest,
    run: &ShardRun,
    name: &str,
    text: Vec<u8>,
) -> Result<crate::s3::Delivered, RunError> {
    for e in &manifest.resources {
        for f in e.files.iter().filter(|f| f.archive.is_none()) {
            delivery.upload_file(staging.files(), &f.path)?;
        }
    }
    let record = crate::package::DeliveryRecord::new("", manifest);
    let keep = record.objects.into_iter().map(|o| o.name).collect();
    crate::s3::remove_shard_leftovers(s3, &run.snapshot_id, &run.shard.tag(), &keep)?;
    let shards = crate::package::layout::SHARDS_DIR;
    Ok(delivery.finish_as(&format!("{shards}/{name}"), text)?)
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
/// `k·len/N` of a sorted sample of the rows' values, open at both ends of the table (an
/// empty sample: `i64::MAX`, every row in the first shard). The sample holds every row
/// up to [`sample_target`] rows, else a deterministic 1-in-`rows/target` of them by
/// value, so every shard draws it alike and only the sample is sorted. One count and
/// one sampled scan.
fn slice(
    source: &dyn Source,
    query: &TableQuery,
    column: &str,
    shard: Shard,
) -> Result<(Option<i64>, Option<i64>), crate::source::SourceError> {
    let n = u64::from(shard.count);
    let (lo, hi) = (u64::from(shard.index), u64::from(shard.index) + 1);
    if lo == 0 && hi == n {
        return Ok((None, None));
    }
    let rows = source.count(query)?;
    let one_in = (rows / sample_target(shard.count).max(1)).max(1);
    let sample = source.sample_sorted(query, column, one_in)?;
    let at = |k: u64| {
        if k == 0 || k == n {
            return None;
        }
        let position = (u128::from(k) * sample.len() as u128 / u128::from(n)) as usize;
        Some(sample.get(position).copied().unwrap_or(i64::MAX))
    };
    Ok((at(lo), at(hi)))
}

/// How many rows the cut points' sample aims at: 4,000 per shard, at least 20,000 (the
/// whole table below that: exact quantiles) and at most 2,000,000. With 20,000 a
/// quarter's position is off by about 0.3% of the rows (binomial: sqrt(p(1-p)/n)).
fn sample_target(count: u32) -> u64 {
    #[cfg(feature = "test-hooks")]
    if let Some(target) = std::env::var("FERRY_TEST_SHARD_SAMPLE_TARGET").ok().and_then(|v| v.parse().ok()) {
        return target;
    }
    (u64::from(count) * 4_000).clamp(20_000, 2_000_000)
}
