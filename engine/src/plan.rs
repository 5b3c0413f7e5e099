//! `ferry plan`: what a job will export before it runs, the document-backup seed's
//! "cost shown before creation".
//!
//! Rows are counted, not estimated: each resource's main table within its window, with
//! the same pushed-down range the export reads (see [`crate::progress::expected_rows`]).
//! Bytes and time are estimates: from the last completed run of the same resource in
//! the same format in this output root's catalog, or, without one, from the defaults
//! below, measured on the demo platform.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::catalog::{Catalog, CatalogError};
use crate::job::Job;
use crate::runtime::{Range, Runtime};
use crate::source::SourceError;
use crate::window;

/// Compressed bytes per record without history. Gzip-compressed Avro of the demo
/// platform measured 61 (members) to 128 (transactions) bytes a record at scale 4;
/// rounding up keeps a first estimate on the safe side.
pub const DEFAULT_BYTES_PER_RECORD: f64 = 200.0;
/// Records per second and resource without history. Measured with a debug build on a
/// busy machine (`ferry run --stats`, scale 4): 397,937 transactions in 105 s wall
/// (3,800/s), 8,155 in 1.2 s at scale 1 (6,800/s); no release figure was taken, and a
/// release build is faster, so a first estimate errs long.
pub const DEFAULT_RECORDS_PER_SECOND: f64 = 5_000.0;
const GIB: f64 = (1u64 << 30) as f64;

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Runtime(#[from] crate::runtime::StartError),
    #[error(transparent)]
    Load(#[from] crate::runtime::LoadError),
    #[error("resource `{resource}`: {error}")]
    Window { resource: String, error: window::WindowError },
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

/// Where an estimate comes from.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Basis {
    /// Measured by a past run of this resource, in this format, in this output root.
    History { snapshot_id: String },
    /// [`DEFAULT_BYTES_PER_RECORD`] and [`DEFAULT_RECORDS_PER_SECOND`].
    Default,
}

#[derive(Debug, Clone, Serialize)]
pub struct ResourcePlan {
    pub name: String,
    pub plugin: String,
    /// The main table the rows are counted in.
    pub table: Option<String>,
    /// `column [start, end)`, RFC 3339, when the resource has a window.
    pub window: Option<String>,
    /// Rows the export reads: exact for plugins that copy their main table.
    pub rows: u64,
    pub estimated_bytes: u64,
    pub files: u64,
    pub estimated_seconds: f64,
    pub basis: Basis,
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub name: String,
    pub as_of: String,
    pub output_dir: PathBuf,
    pub resources: Vec<ResourcePlan>,
    pub rows: u64,
    pub estimated_bytes: u64,
    /// Tar parts, when the snapshot is packed.
    pub parts: Option<u64>,
    /// Resources run in parallel: the longest chain of resources on `parallelism` workers.
    pub estimated_seconds: f64,
    pub retention_days: f64,
    pub cost: Option<Cost>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Cost {
    pub price_per_gib_month: f64,
    pub per_month: f64,
    /// For the whole retention period.
    pub retention: f64,
}

/// Plans a job: loads its plugins (compiled ones come from the cache), counts its rows.
pub fn plan(job: &Job, runtime: &Runtime, parallelism: usize) -> Result<Plan, PlanError> {
    let source = job.source.open()?;
    // History is optional: an output root with no catalog yet plans from the defaults.
    let catalog =
        if job.output_dir.join(crate::catalog::CATALOG_FILE).is_file() { Some(Catalog::open_existing(&job.output_dir)?) } else { None };
    let mut resources = Vec::new();
    for spec in &job.resources {
        let plugin = runtime.load_resource(&spec.name, &spec.plugin)?;
        // The window exactly as `run` resolves it.
        let window = window::for_resource(&plugin.info.name, plugin.info.window_column.as_deref(), spec.months, job.as_of)
            .map_err(|error| PlanError::Window { resource: spec.name.clone(), error })?;
        let window = window.as_ref().map(Range::from);
        let rows =
            crate::progress::expected_rows(&plugin, source.as_ref(), window.as_ref(), job.as_of.timestamp_micros(), None)?.unwrap_or(0);
        let format = spec.format.extension();
        let history = match &catalog {
            Some(c) => c.resource_stats(&spec.name, format, spec.gzip)?,
            None => None,
        };
        let (estimated_bytes, records_per_second, basis) = match history {
            Some(h) => (
                // In integers: the float product of rows and bytes per record came out a
                // byte over the last run's size for the same rows.
                if h.records > 0 { (rows as u128 * h.bytes as u128).div_ceil(h.records as u128) as u64 } else { 0 },
                if h.wall_seconds > 0.0 { h.records as f64 / h.wall_seconds } else { DEFAULT_RECORDS_PER_SECOND },
                Basis::History { snapshot_id: h.snapshot_id },
            ),
            None => ((rows as f64 * DEFAULT_BYTES_PER_RECORD).ceil() as u64, DEFAULT_RECORDS_PER_SECOND, Basis::Default),
        };
        let files = [spec.split.max_records.map(|m| rows.div_ceil(m)), spec.split.max_bytes.map(|m| estimated_bytes.div_ceil(m.max(1)))]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(1)
            .max(1);
        let micros = |t: i64| DateTime::<Utc>::from_timestamp_micros(t).map(crate::catalog::timestamp).unwrap_or_default();
        resources.push(ResourcePlan {
            name: spec.name.clone(),
            plugin: plugin.info.name.clone(),
            table: plugin.info.tables.first().map(|t| t.table.clone()),
            window: window.as_ref().map(|w| {
                format!(
                    "{} [{}, {})",
                    w.column,
                    w.start.map(micros).unwrap_or_else(|| "the beginning".into()),
                    w.end.map(micros).unwrap_or_default()
                )
            }),
            rows,
            estimated_bytes,
            files,
            estimated_seconds: rows as f64 / records_per_second,
            basis,
        });
    }
    let estimated_bytes: u64 = resources.iter().map(|r| r.estimated_bytes).sum();
    let retention_days = job.retention.as_secs_f64() / 86_400.0;
    let cost = job.price_per_gib.map(|price| {
        let per_month = estimated_bytes as f64 / GIB * price;
        Cost { price_per_gib_month: price, per_month, retention: per_month * retention_days / 30.0 }
    });
    Ok(Plan {
        name: job.name.clone(),
        as_of: crate::catalog::timestamp(job.as_of),
        output_dir: job.output_dir.clone(),
        rows: resources.iter().map(|r| r.rows).sum(),
        estimated_bytes,
        parts: job.tar_part_size.map(|size| estimated_bytes.div_ceil(size).max(1)),
        estimated_seconds: schedule(resources.iter().map(|r| r.estimated_seconds), parallelism),
        retention_days,
        cost,
        resources,
    })
}

/// Wall time of running tasks in order on `workers` workers, each task going to the
/// first free worker, as `run` schedules resources.
fn schedule(tasks: impl Iterator<Item = f64>, workers: usize) -> f64 {
    let mut free_at = vec![0.0f64; workers.max(1)];
    for t in tasks {
        let first = free_at.iter_mut().min_by(|a, b| a.total_cmp(b)).expect("at least one worker");
        *first += t;
    }
    free_at.into_iter().fold(0.0, f64::max)
}

/// A plan's estimated time, for people.
pub fn human_duration(seconds: f64) -> String {
    let d = Duration::from_secs_f64(seconds.max(0.0));
    match d.as_secs() {
        0 => format!("{} ms", d.as_millis().max(1)),
        s if s < 60 => format!("{seconds:.1} s"),
        s if s < 3600 => format!("{}m {:02}s", s / 60, s % 60),
        s => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_are_scheduled_on_the_first_free_worker() {
        assert_eq!(schedule([3.0, 1.0, 1.0, 1.0].into_iter(), 2), 3.0);
        assert_eq!(schedule([1.0, 1.0, 1.0].into_iter(), 1), 3.0);
        assert_eq!(schedule(std::iter::empty(), 4), 0.0);
    }
}
