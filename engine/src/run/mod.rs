//! Running a job: a pipeline of stages, each owning its part.
//!
//! ```text
//! prepare ─▶ export workers (one resource each, in parallel) ─events─▶ packer ─▶ manifest ─▶ publish
//!            plugin ▶ validator ▶ writer thread               (job order)   (tar parts, S3 uploads)
//! ```
//!
//! - [`content`]: which resources run (tables, attachments, both) and their blob store;
//! - [`export`]: one resource's export stage and the one cleanup of a failed resource;
//! - [`writer`]: a resource's writer thread (encode, gzip, hash, split into files);
//! - [`pack`]: the ordered event stream and the packer reading it.
//!
//! Nothing is published unless the job succeeded, or, under `on_error = "continue"`,
//! the snapshot is marked incomplete: staging, then the manifest last, then a rename.

mod content;
mod export;
mod pack;
mod shard;
mod writer;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Instant;

use chrono::{DateTime, SecondsFormat, Utc};

pub use content::ContentError;
pub use export::GrantError;
pub use shard::{ShardError, ShardRun, snapshot_id_for};
pub use writer::WriteError;

use crate::job::{Job, OnError, ResourceSpec};
use crate::package::archive::{Part, PartDir, PartSink};
use crate::package::encrypt::Sealed;
use crate::package::{EncryptionEntry, MANIFEST_FORMAT_VERSION, Manifest, PluginEntry, ResourceEntry, Staging, StagingError, Status};
use crate::runtime::{Events, LoadError, PluginError, Runtime, StartError};
use crate::source::{BlobStore, Source, SourceError};
use crate::window::WindowError;
use content::{Selected, Selection};
use export::Exporter;
use pack::{Event, PartSpec, Parts};

/// How to run, beyond what the job says.
#[derive(Clone)]
pub struct RunOptions {
    pub events: Arc<dyn Events>,
    /// Compiled-plugin cache; `None` compiles every time.
    pub cache_dir: Option<PathBuf>,
    /// Resources exported at once (default: the machine's cores).
    pub parallelism: usize,
    /// Per-resource progress (records and bytes as they are validated); `None`: none.
    pub progress: Option<Arc<dyn crate::progress::Progress>>,
    /// When the run started, for `first_record_seconds` (`ferry run` passes its
    /// process's start, so start-up counts).
    pub started: Instant,
    /// `ferry run --shard i/N`: export this shard's slice into the shared snapshot
    /// directory, ending with its shard manifest (`ferry assemble` makes the snapshot).
    pub shard: Option<ShardRun>,
}

/// A published snapshot.
#[derive(Debug)]
pub struct RunReport {
    pub snapshot_dir: PathBuf,
    pub manifest: Manifest,
    /// Where the snapshot was uploaded, for `[output] dir = "s3://..."`.
    pub delivered: Option<crate::s3::Delivered>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Runtime(#[from] StartError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("{}", failures.iter().map(|(r, e)| format!("resource `{r}` failed: {e}")).collect::<Vec<_>>().join("\n"))]
    Failed { failures: Vec<(String, ResourceError)> },
    #[error(transparent)]
    Staging(#[from] StagingError),
    #[error("cannot pack the tar parts in {dir}: {source}")]
    Pack { dir: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Catalog(#[from] crate::catalog::CatalogError),
    #[error(transparent)]
    Content(#[from] ContentError),
    #[error(transparent)]
    S3(#[from] crate::s3::S3Error),
    #[error(transparent)]
    Encrypt(#[from] crate::package::encrypt::EncryptError),
    #[error(transparent)]
    Sign(#[from] crate::package::sign::SignError),
    #[error(transparent)]
    Shard(#[from] ShardError),
}

/// Why one resource failed.
#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    #[error(transparent)]
    Plugin(#[from] PluginError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Grants(#[from] GrantError),
    #[error(transparent)]
    Window(#[from] WindowError),
    #[error("resource `{resource}` exports attachments, but the job has no blob store; set `[source] blobs`")]
    NoBlobStore { resource: String },
    #[error("writing {path}: {source}")]
    Output { path: PathBuf, source: WriteError },
    #[error("staging the attachments of resource `{resource}`: {source}")]
    Attachments { resource: String, source: std::io::Error },
}

impl ResourceError {
    /// The short kind, for the manifest and for scripts.
    pub fn kind(&self) -> &'static str {
        match self {
            ResourceError::Plugin(e) => e.kind(),
            ResourceError::Load(e) => e.kind(),
            ResourceError::Grants(GrantError::Source(_)) => "source",
            ResourceError::Grants(_) => "grants",
            ResourceError::Window(_) | ResourceError::NoBlobStore { .. } => "config",
            ResourceError::Output { .. } | ResourceError::Attachments { .. } => "output",
        }
    }
}

/// A resource's manifest entry, and why it failed if it did (a failed resource is still
/// listed, with its error and no files).
struct Exported {
    entry: ResourceEntry,
    error: Option<ResourceError>,
}

/// The finished tar parts, tables first, each with its kind.
type PackedParts = Vec<(&'static str, Part)>;

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Runs a validated job to a published snapshot, recorded in its output root's catalog
/// from start (`pending`) to end (`completed` or `failed`).
pub fn run(job: &Job, options: &RunOptions) -> Result<RunReport, RunError> {
    if let Some(shard) = &options.shard {
        return shard::run_shard(job, options, shard);
    }
    let snapshot_id = uuid::Uuid::new_v4().to_string();
    // Bad S3 settings fail the run before anything is exported.
    let delivery = job.delivery.as_ref().map(|url| crate::s3::S3::connect(url, &job.s3)).transpose()?;
    let mut record = crate::catalog::Recorder::begin(job, &snapshot_id)?;
    if let Some(s3) = &delivery {
        remove_failed_deliveries(s3, &record, options);
    }
    let result = run_recorded(job, options, &snapshot_id, &mut record, delivery.as_ref());
    if let (Err(_), Some(s3)) = (&result, &delivery) {
        // Whatever went up of a failed run is of no use to anyone.
        let _ = crate::s3::remove_snapshot(s3, &snapshot_id);
    }
    record.finish(result, |report| &report.snapshot_dir)
}

/// Removes the objects of deliveries the catalog records as failed (a run killed
/// mid-upload is settled `failed` when the next run begins). Snapshots the catalog does
/// not know (another machine's, say) are left alone.
fn remove_failed_deliveries(s3: &crate::s3::S3, record: &crate::catalog::Recorder, options: &RunOptions) {
    let Ok(objects) = s3.list("") else { return };
    let prefix = s3.url().key("");
    let ids: std::collections::BTreeSet<String> = objects
        .iter()
        .filter_map(|o| o.location.as_ref().strip_prefix(prefix.as_str())?.split_once('/').map(|(id, _)| id.to_string()))
        .collect();
    for id in ids.into_iter().filter(|id| record.is_failed(id)) {
        if let Ok(n) = crate::s3::remove_snapshot(s3, &id) {
            options.events.log("ferry", crate::runtime::Level::Info, &format!("removed {n} objects of failed delivery {id}"));
        }
    }
}

/// What the export stage needs, ready before anything is written.
struct Prepared {
    source: Arc<dyn Source>,
    runtime: Runtime,
    selection: Selection,
    blobs: Option<Arc<dyn BlobStore>>,
}

/// Generates the demo platform if the job asks, opens the source, loads every plugin
/// (a broken plugin fails the run before anything is written, unless `on_error =
/// "continue"`, where its resource fails alone) and picks the resources `content` keeps.
fn prepare(job: &Job, options: &RunOptions) -> Result<Prepared, RunError> {
    if let Some(demo) = job.source.demo
        && !job.source.sqlite.is_file()
    {
        let blobs = job.source.blobs.clone().unwrap_or_else(|| job.source.sqlite.with_file_name("blobs"));
        crate::source::generate_demo(&job.source.sqlite, &blobs, demo)?;
    }
    let source = job.source.open()?;
    let runtime = Runtime::new(options.cache_dir.clone()).map_err(StartError)?;
    let mut plugins = Vec::with_capacity(job.resources.len());
    for spec in &job.resources {
        let plugin = runtime.load_resource(&spec.name, &spec.plugin);
        if job.on_error == OnError::Fail {
            plugins.push(Ok(plugin?));
        } else {
            plugins.push(plugin);
        }
    }
    let selection = content::select(job, plugins)?;
    let blobs = content::blob_store(job, &selection.resources)?;
    Ok(Prepared { source, runtime, selection, blobs })
}

fn run_recorded(
    job: &Job,
    options: &RunOptions,
    snapshot_id: &str,
    record: &mut crate::catalog::Recorder,
    s3: Option<&crate::s3::S3>,
) -> Result<RunReport, RunError> {
    let created_at = Utc::now();
    let prepared = prepare(job, options)?;
    let staging = record.stage(|| Staging::create(&job.output_dir, snapshot_id).map_err(RunError::from))?;
    let (manifest, staging, delivery, _) = export_snapshot(job, options, snapshot_id, prepared, staging, s3, None, created_at)?;
    let signature = job.trust.sign_with.as_ref().map(|key| key.sign(&manifest.to_json(), snapshot_id)).transpose()?;
    let delivered = match delivery {
        Some(delivery) => Some(deliver(delivery, &staging, &manifest, signature.as_deref())?),
        None => None,
    };
    if let Some(signature) = &signature {
        staging.add_signature(signature)?;
    }
    hold_before_publish();
    let snapshot_dir = staging.publish(&manifest)?;
    Ok(RunReport { snapshot_dir, manifest, delivered })
}

/// What [`export_snapshot`] hands back: the manifest, the staging directory it describes,
/// the S3 delivery under way, and the shard's cuts (for a shard).
type ExportedSnapshot = (Manifest, Staging, Option<crate::s3::Delivery>, Option<Vec<crate::package::shards::Cut>>);

/// Exports every selected resource into `staging` (a shard: its slice of each) and
/// builds the manifest, nothing published yet.
#[allow(clippy::too_many_arguments)]
fn export_snapshot(
    job: &Job,
    options: &RunOptions,
    snapshot_id: &str,
    prepared: Prepared,
    staging: Staging,
    s3: Option<&crate::s3::S3>,
    cuts: Option<Vec<crate::package::shards::Cut>>,
    created_at: DateTime<Utc>,
) -> Result<ExportedSnapshot, RunError> {
    let Prepared { source, runtime, selection, blobs } = prepared;
    let names: Vec<String> = selection.resources.iter().map(|s| s.spec.name.clone()).collect();
    let shard = options.shard.as_ref().map(|s| s.shard);
    let exporter = Exporter {
        runtime: &runtime,
        source: &source,
        source_setting: if job.source.postgres.is_some() { "postgres" } else { "sqlite" },
        dir: staging.files(),
        as_of: job.as_of,
        options,
        blobs: blobs.as_ref(),
        sync_attachments: job.tar_part_size.is_none(),
        shard,
        cuts: cuts.as_deref(),
    };
    // Tar parts fill while later resources still export; with S3 delivery they stream
    // into uploads and loose files go up one by one. A shard's parts are named after
    // as_of and the shard, so a rerun of it writes the same names.
    let stamp = match shard {
        Some(shard) => format!("{}_{}", job.as_of.format("%Y-%m-%d-%H%M%S"), shard.tag()),
        None => created_at.format("%Y-%m-%d-%H%M%S").to_string(),
    };
    let (results, archives, delivery) = export_to_sink(job, &exporter, selection, &stamp, &staging, s3.map(|s3| (s3, snapshot_id)));
    let (mut entries, failures) = settle(&names, results);
    if !failures.is_empty() && job.on_error == OnError::Fail {
        return Err(RunError::Failed { failures }); // `staging` drops: nothing is published
    }
    let archives = crate::package::place_in_parts(&mut entries, archives?);
    if let Some(recipients) = &job.trust.encrypt_to {
        crate::package::encrypt::seal_loose_files(staging.files(), &mut entries, recipients)?;
    }
    let manifest = Manifest {
        format_version: MANIFEST_FORMAT_VERSION,
        snapshot_id: snapshot_id.to_string(),
        name: job.name.clone(),
        description: job.description.clone(),
        as_of: rfc3339(job.as_of),
        created_at: rfc3339(created_at),
        completed_at: rfc3339(Utc::now()),
        status: if failures.is_empty() { Status::Completed } else { Status::Incomplete },
        ferry_version: env!("CARGO_PKG_VERSION").into(),
        archives,
        consistency: Some(source.consistency().into()),
        load_order: crate::package::relations::load_order(&entries),
        resources: entries,
        encryption: job.trust.encrypt_to.as_ref().map(|r| EncryptionEntry { method: "age".into(), recipients: r.written().to_vec() }),
    };
    Ok((manifest, staging, delivery, cuts))
}

/// Exports and packs into the parts' sink: uploads to S3 (`s3`: the bucket and the
/// snapshot's id) or files in the staging directory, encrypted when the job says so.
/// Returns the results, the parts (or why packing failed) and the delivery to finish.
fn export_to_sink(
    job: &Job,
    exporter: &Exporter<'_>,
    selection: Selection,
    stamp: &str,
    staging: &Staging,
    s3: Option<(&crate::s3::S3, &str)>,
) -> (Vec<Exported>, Result<PackedParts, RunError>, Option<crate::s3::Delivery>) {
    let pack_error = |source| RunError::Pack { dir: staging.dir().into(), source };
    match s3 {
        Some((s3, snapshot_id)) => {
            let sink = Sealed::new(crate::s3::Delivery::new(s3, snapshot_id), job.trust.encrypt_to.clone());
            let (results, archives, delivery) = export_and_pack(job, exporter, selection, stamp, sink);
            let archives = archives.map_err(|e| match e {
                crate::s3::PartError::Upload(e) => RunError::S3(e),
                crate::s3::PartError::Staging(source) => pack_error(source),
            });
            (results, archives, Some(delivery.into_inner()))
        }
        None => {
            let sink = Sealed::new(PartDir(staging.files().clone()), job.trust.encrypt_to.clone());
            let (results, archives, _) = export_and_pack(job, exporter, selection, stamp, sink);
            (results, archives.map_err(pack_error), None)
        }
    }
}

/// `FERRY_FAULT_HOLD_BEFORE_PUBLISH_MS`: wait that long before publishing, so a test can
/// watch a run in progress (the snapshots page's row) instead of racing a fast one. Only
/// in builds with the `test-hooks` feature (the test suite's).
#[cfg(feature = "test-hooks")]
fn hold_before_publish() {
    if let Some(ms) = std::env::var("FERRY_FAULT_HOLD_BEFORE_PUBLISH_MS").ok().and_then(|v| v.parse().ok()) {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}

#[cfg(not(feature = "test-hooks"))]
fn hold_before_publish() {}

/// Uploads the loose files (those no part holds), then the manifest, last.
fn deliver(
    mut delivery: crate::s3::Delivery,
    staging: &Staging,
    manifest: &Manifest,
    signature: Option<&str>,
) -> Result<crate::s3::Delivered, RunError> {
    for e in &manifest.resources {
        for f in e.files.iter().filter(|f| f.archive.is_none()) {
            delivery.upload_file(staging.files(), &f.path)?;
        }
        staging.files().remove_empty_dirs(crate::package::layout::attachments_dir(&e.name));
    }
    if let Some(signature) = signature {
        delivery.put(crate::package::sign::SIGNATURE_FILE, signature.as_bytes().to_vec())?;
    }
    let delivered = delivery.finish(manifest.to_json())?;
    // The local copy records where the snapshot went; the catalog checks it.
    staging.record_delivery(&crate::package::DeliveryRecord::new(&delivered.url, manifest))?;
    Ok(delivered)
}

/// The entries of every resource, in job order, and the failures among them.
fn settle(names: &[String], results: Vec<Exported>) -> (Vec<ResourceEntry>, Vec<(String, ResourceError)>) {
    let mut entries = Vec::with_capacity(results.len());
    let mut failures = Vec::new();
    for (name, Exported { entry, error }) in names.iter().zip(results) {
        entries.push(entry);
        if let Some(error) = error {
            failures.push((name.clone(), error));
        }
    }
    (entries, failures)
}

/// Exports every resource on `options.parallelism` workers while the packer, on this
/// thread, packs each finished resource's files in job order into parts handed to
/// `sink` (when the job packs). Returns the results in job order, the parts, and the sink.
fn export_and_pack<S: PartSink>(
    job: &Job,
    exporter: &Exporter<'_>,
    selection: Selection,
    stamp: &str,
    sink: S,
) -> (Vec<Exported>, Result<PackedParts, S::Error>, S) {
    let spec = job.tar_part_size.map(|max_bytes| PartSpec { stamp, max_bytes, mtime: job.as_of.timestamp().max(0) as u64 });
    let mut parts = Parts::new(sink, exporter.dir, spec);
    let fail_fast = job.on_error == OnError::Fail;
    let resources = &selection.resources;
    let next = AtomicUsize::new(0);
    let workers = exporter.options.parallelism.clamp(1, resources.len().max(1));
    let results = std::thread::scope(|scope| {
        let (events, received) = mpsc::channel::<Event>();
        for (index, error) in selection.unloaded {
            let result = unloaded(&resources[index].spec, error);
            report_finished(exporter.options, &resources[index].spec.name, &result);
            let _ = events.send(Event::Finished { resource: index, result: Box::new(result) });
        }
        for _ in 0..workers {
            let (events, next) = (events.clone(), &next);
            scope.spawn(move || worker(exporter, resources, next, &events));
        }
        // The stream ends once every worker hung up (a panicking one too: the scope then
        // re-raises its panic), so the packer needs no flag or timeout.
        drop(events);
        // Split files are packed as they close only under `fail`: under `continue`, a
        // resource that fails later must leave no file in a part.
        pack::collect(received, resources.len(), fail_fast, fail_fast, &mut parts)
    });
    let (archives, sink) = parts.finish();
    (results, archives, sink)
}

/// One worker: exports the next resource until none is left.
fn worker(exporter: &Exporter<'_>, resources: &[Selected], next: &AtomicUsize, events: &mpsc::Sender<Event>) {
    loop {
        let index = next.fetch_add(1, Ordering::Relaxed);
        let Some(selected) = resources.get(index) else { return };
        // A resource whose plugin did not load was reported before the workers started.
        let Some(plugin) = &selected.plugin else { continue };
        let result = exporter.export(index, &selected.spec, plugin, events);
        report_finished(exporter.options, &selected.spec.name, &result);
        let _ = events.send(Event::Finished { resource: index, result: Box::new(result) });
    }
}

/// The entry of a resource whose plugin did not load (under `on_error = "continue"`).
fn unloaded(spec: &ResourceSpec, error: LoadError) -> Exported {
    let plugin =
        PluginEntry { name: spec.name.clone(), version: String::new(), origin: export::origin_text(&spec.plugin), sha256: String::new() };
    let mut entry = ResourceEntry::new(&spec.name, plugin, "null", spec.format, spec.codec.name(), spec.gzip);
    let error = ResourceError::Load(error);
    entry.fail(error.kind(), error.to_string());
    Exported { entry, error: Some(error) }
}

/// Tells the progress display a resource is done.
fn report_finished(options: &RunOptions, resource: &str, result: &Exported) {
    let Some(progress) = &options.progress else { return };
    match &result.error {
        None => progress.finished(resource, Ok((result.entry.records, result.entry.files.iter().map(|f| f.bytes).sum()))),
        Some(error) => progress.finished(resource, Err(&error.to_string())),
    }
}
