//! Running a job: plugins export in parallel, each into its own writer thread, into a
//! staging directory that is published (manifest last, then a rename) only when the job
//! succeeded, or under `on_error = "continue"` marked incomplete.
//!
//! ```text
//! source ──row batches──▶ plugin ──record batches──▶ validator ──channel(4)──▶ writer thread
//!                                                               (avro blocks ▶ gzip ▶ sha256 ▶ file)
//! ```

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use sha2::{Digest, Sha256};

use crate::formats::{FileFormat, Format};
use crate::job::{Job, OnError, PluginRef, ResourceSpec};
use crate::package::{
    ArchiveEntry, EncryptionEntry, FileEntry, archive::{self, PartDir, PartSink}, encrypt::Sealed, MANIFEST_FORMAT_VERSION, Manifest, PluginEntry, ResourceEntry, ResourceFailure, ResourceFiles, Staging,
    StagingError, StageTimes, Status, WindowEntry, WrittenFile,
};
use crate::runtime::{Events, ExportJob, ExportRequest, Origin, Plugin, PluginError, Range, RecordSink, Runtime};
use crate::window::{self, Months};
use crate::source::{Source, SourceError};

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
    #[error("cannot start the plugin runtime: {0}")]
    Runtime(String),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("{}", failures.iter().map(|(r, e)| format!("resource `{r}` failed: {e}")).collect::<Vec<_>>().join("\n"))]
    Failed { failures: Vec<(String, ResourceError)> },
    #[error(transparent)]
    Staging(#[from] StagingError),
    #[error(transparent)]
    Catalog(#[from] crate::catalog::CatalogError),
    #[error(transparent)]
    Attachments(#[from] crate::attachments::AttachmentsError),
    #[error(transparent)]
    S3(#[from] crate::s3::S3Error),
    #[error(transparent)]
    Encrypt(#[from] crate::package::encrypt::EncryptError),
    #[error(transparent)]
    Sign(#[from] crate::package::sign::SignError),
}

/// Why a resource's plugin could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read plugin {path}: {source}")]
    PluginFile { path: PathBuf, source: std::io::Error },
    #[error("resource `{resource}`: {error}")]
    Plugin { resource: String, error: PluginError },
}

/// Loads a resource's plugin (a built-in by name, or a component file) and has it
/// describe itself; compiled components come from the cache.
pub fn load_plugin(runtime: &Runtime, spec: &ResourceSpec) -> Result<Plugin, LoadError> {
    let (origin, wasm) = match &spec.plugin {
        PluginRef::Builtin(name) => (Origin::Builtin(name.clone()), crate::runtime::builtin(name).unwrap_or_default().to_vec()),
        PluginRef::Path(path) => {
            (Origin::Path(path.clone()), std::fs::read(path).map_err(|source| LoadError::PluginFile { path: path.clone(), source })?)
        }
    };
    runtime.load(origin, &wasm).map_err(|error| LoadError::Plugin { resource: spec.name.clone(), error })
}

/// Why one resource failed.
#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    #[error(transparent)]
    Plugin(#[from] PluginError),
    #[error("{0}")]
    Source(String),
    #[error("writing {path}: {reason}")]
    Output { path: PathBuf, reason: String },
}

impl ResourceError {
    fn kind(&self) -> &'static str {
        match self {
            ResourceError::Plugin(e) => e.kind(),
            ResourceError::Source(_) => "source",
            ResourceError::Output { .. } => "output",
        }
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Runs a validated job to a published snapshot, recorded in its output root's catalog
/// from start (`pending`) to end (`completed` or `failed`).
pub fn run(job: &Job, options: &RunOptions) -> Result<RunReport, RunError> {
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

fn run_recorded(
    job: &Job,
    options: &RunOptions,
    snapshot_id: &str,
    record: &mut crate::catalog::Recorder,
    s3: Option<&crate::s3::S3>,
) -> Result<RunReport, RunError> {
    let created_at = Utc::now();
    if let Some(demo) = job.source.demo
        && !job.source.sqlite.is_file()
    {
        let blobs = job.source.blobs.clone().unwrap_or_else(|| job.source.sqlite.with_file_name("blobs"));
        crate::source::generate_demo(&job.source.sqlite, &blobs, demo)?;
    }
    let source: Arc<dyn Source> = job.source.open()?;
    let runtime = Runtime::new(options.cache_dir.clone()).map_err(|e| RunError::Runtime(e.to_string()))?;

    // Load every plugin before writing anything: a broken plugin fails the run early.
    let plugins = job.resources.iter().map(|spec| load_plugin(&runtime, spec)).collect::<Result<Vec<_>, _>>()?;
    // `content` keeps table resources, attachment resources, or both.
    let (selected, plugins) = crate::attachments::select(job, plugins)?;
    let job = &selected;
    let attachments = AttachmentsContext { store: crate::attachments::blob_store(job, &plugins)?, sync: job.tar_part_size.is_none() };

    let staging = record.stage(|| Staging::create(&job.output_dir, snapshot_id).map_err(RunError::from))?;

    // Tar parts fill while later resources still export; with S3 delivery they stream
    // into uploads and loose files go up one by one.
    let stamp = created_at.format("%Y-%m-%d-%H%M%S").to_string();
    let packing = job.tar_part_size.map(|max| (stamp.as_str(), max, job.as_of.timestamp().max(0) as u64));
    let pack_error = |e: std::io::Error| match crate::s3::s3_error(e) {
        Ok(e) => RunError::S3(e),
        Err(source) => RunError::Staging(StagingError::Write { path: staging.dir().into(), source }),
    };
    let (results, archives, delivery) = match s3 {
        Some(s3) => {
            let delivery = Sealed::new(crate::s3::Delivery::new(s3, snapshot_id), job.trust.encrypt_to.clone());
            let (results, archives, delivery) = export_all(job, options, &runtime, &plugins, &source, staging.dir(), &attachments, packing, delivery);
            (results, archives, Some(delivery.into_inner()))
        }
        None => {
            let parts = Sealed::new(PartDir(staging.dir().into()), job.trust.encrypt_to.clone());
            let (results, archives, _) = export_all(job, options, &runtime, &plugins, &source, staging.dir(), &attachments, packing, parts);
            (results, archives, None)
        }
    };
    let mut entries = Vec::new();
    let mut failures = Vec::new();
    for (spec, result) in job.resources.iter().zip(results) {
        match result {
            Ok(entry) => entries.push(entry),
            Err((entry, error)) => {
                entries.push(entry);
                failures.push((spec.name.clone(), error));
            }
        }
    }
    if !failures.is_empty() && job.on_error == OnError::Fail {
        return Err(RunError::Failed { failures }); // `staging` drops: nothing is published
    }
    let archives = archives.map_err(pack_error)?;
    if let Some(recipients) = &job.trust.encrypt_to {
        crate::package::encrypt::seal_loose_files(staging.dir(), &mut entries, recipients)?;
    }
    let delivery = match delivery {
        Some(mut delivery) => {
            for e in &entries {
                for f in e.files.iter().filter(|f| f.archive.is_none()) {
                    delivery.upload_file(&staging.dir().join(&f.path), &f.path)?;
                }
                crate::attachments::remove_empty_dirs(&staging.dir().join(&e.name));
            }
            Some(delivery)
        }
        None => None,
    };
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
        resources: entries,
        encryption: job.trust.encrypt_to.as_ref().map(|r| EncryptionEntry { method: "age".into(), recipients: r.written().to_vec() }),
    };
    let signature = job.trust.sign_with.as_ref().map(|key| key.sign(&manifest.to_json(), snapshot_id)).transpose()?;
    let delivered = match delivery {
        Some(mut d) => {
            if let Some(signature) = &signature {
                d.put(crate::package::sign::SIGNATURE_FILE, signature.as_bytes().to_vec())?;
            }
            let delivered = d.finish(manifest.to_json())?;
            // The local copy records where the snapshot went; the catalog checks it.
            staging.record_delivery(&crate::package::DeliveryRecord::new(&delivered.url, &manifest))?;
            Some(delivered)
        }
        None => None,
    };
    if let Some(signature) = &signature {
        staging.add_signature(signature)?;
    }
    let snapshot_dir = staging.publish(&manifest)?;
    Ok(RunReport { snapshot_dir, manifest, delivered })
}

type Exported = Result<ResourceEntry, (ResourceEntry, ResourceError)>;

/// Exports every resource, in parallel on `options.parallelism` workers, and meanwhile
/// packs each finished resource's files, in job order, into tar parts handed to `sink`
/// (when `packing` = (stamp, part size, mtime) is set): tables into
/// `snapshot_tables_partN_<stamp>.tar`, attachments into their own parts. Each packed
/// file's entry learns its part. Returns the results in job order, the parts (tables
/// first), and the sink.
#[allow(clippy::too_many_arguments)]
fn export_all<S: PartSink>(
    job: &Job,
    options: &RunOptions,
    runtime: &Runtime,
    plugins: &[Plugin],
    source: &Arc<dyn Source>,
    dir: &Path,
    attachments: &AttachmentsContext,
    packing: Option<(&str, u64, u64)>,
    mut sink: S,
) -> (Vec<Exported>, std::io::Result<Vec<ArchiveEntry>>, S) {
    let slots: Vec<Mutex<Option<Exported>>> = job.resources.iter().map(|_| Mutex::new(None)).collect();
    let done = std::sync::Condvar::new();
    let panicked = std::sync::atomic::AtomicBool::new(false);
    let (closed_tx, closed_rx) = std::sync::mpsc::channel::<(usize, String)>();
    let early = packing.is_some() && job.on_error == OnError::Fail;
    let next = AtomicUsize::new(0);
    let workers = options.parallelism.clamp(1, job.resources.len().max(1));
    let mut packers = packing.map(|(stamp, max, mtime)| {
        (archive::Packer::<S::Writer>::new("tables", stamp, max, mtime), archive::Packer::<S::Writer>::new("attachments", stamp, max, mtime))
    });
    let mut packed: std::io::Result<()> = Ok(());
    let mut results = Vec::new();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                let _flag = PanicFlag(&panicked, &slots, &done);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(spec) = job.resources.get(i) else { break };
                    let r = export_resource(i, runtime, &plugins[i], spec, source, dir, job.as_of, options, attachments, early.then(|| closed_tx.clone()));
                    crate::progress::finished(options.progress.as_ref(), &spec.name, &r);
                    *slots[i].lock().unwrap() = Some(r);
                    done.notify_all();
                }
            });
        }
        // Resource i is packed once it and every resource before it finished, so the
        // parts are the same whatever order the workers finish in. Under `on_error =
        // "fail"` the table files of resource i are packed as each closes (split files),
        // while it still exports: a failure then fails the whole run anyway.
        let mut closed: Vec<Vec<String>> = vec![Vec::new(); slots.len()];
        for (i, slot) in slots.iter().enumerate() {
            let mut packed_early = 0;
            let mut guard = slot.lock().unwrap();
            loop {
                while let Ok((r, name)) = closed_rx.try_recv() {
                    closed[r].push(name);
                }
                if let (Some((tables, _)), Ok(())) = (&mut packers, &packed)
                    && !closed[i].is_empty()
                {
                    drop(guard);
                    for name in std::mem::take(&mut closed[i]) {
                        packed = tables.add(&mut sink, dir, &name);
                        if packed.is_err() {
                            break;
                        }
                        packed_early += 1;
                    }
                    guard = slot.lock().unwrap();
                }
                if guard.is_some() || panicked.load(Ordering::Relaxed) {
                    break;
                }
                guard = done.wait_timeout(guard, Duration::from_millis(20)).unwrap().0;
            }
            // A worker panicked: stop waiting; the scope re-raises its panic.
            let Some(mut result) = guard.take() else { break };
            drop(guard);
            // A failure that fails the run stops the packing: nothing will be published.
            if result.is_err() && job.on_error == OnError::Fail && packed.is_ok() {
                packed = Err(std::io::Error::other("a resource failed"));
            }
            if let (Some((tables, attachments)), Ok(entry), Ok(())) = (&mut packers, &mut result, &packed) {
                let mut skip = packed_early;
                packed = entry.files.iter_mut().try_for_each(|f| {
                    if f.is_attachment() {
                        return attachments.add(&mut sink, dir, &f.path);
                    }
                    if skip > 0 {
                        skip -= 1;
                        return Ok(());
                    }
                    tables.add(&mut sink, dir, &f.path)
                });
                if entry.files.iter().any(|f| f.is_attachment()) {
                    crate::attachments::remove_empty_dirs(&dir.join(&entry.name));
                }
            }
            results.push(result);
        }
    });
    let Some((tables, attachments)) = packers else { return (results, packed.map(|()| Vec::new()), sink) };
    let parts = packed.and_then(|()| {
        let mut parts = Vec::new();
        for (kind, packer) in [("tables", tables), ("attachments", attachments)] {
            parts.extend(packer.finish(&mut sink)?.into_iter().map(|p| (kind, p)));
        }
        Ok(parts)
    });
    let parts = match parts {
        Ok(parts) => parts,
        Err(e) => return (results, Err(e), sink),
    };
    let part_of: std::collections::HashMap<&str, &str> =
        parts.iter().flat_map(|(_, p)| p.members.iter().map(move |m| (m.as_str(), p.name.as_str()))).collect();
    for f in results.iter_mut().filter_map(|r| r.as_mut().ok()).flat_map(|e| e.files.iter_mut()) {
        f.archive = part_of.get(f.path.as_str()).map(|p| p.to_string());
    }
    let archives = parts
        .into_iter()
        .map(|(kind, p)| ArchiveEntry { name: p.name, bytes: p.bytes, sha256: p.sha256, kind: kind.into(), part: p.number, plaintext: p.plaintext })
        .collect();
    (results, Ok(archives), sink)
}

/// The blob store attachment resources read, and whether their files stay loose.
struct AttachmentsContext {
    store: Option<Arc<dyn crate::source::BlobStore>>,
    /// Files stay loose (no tar parts): sync each, as nothing rewrites them.
    sync: bool,
}

/// Checks the plugin's declared tables and columns against the source.
fn check_grants(plugin: &Plugin, source: &dyn Source) -> Result<(), ResourceError> {
    for (table, columns) in plugin.grants.iter() {
        let have = source.columns(table).map_err(|e| ResourceError::Source(e.to_string()))?.ok_or_else(|| {
            ResourceError::Source(format!("the plugin reads table `{table}`, which the source does not have; check `[source] sqlite` points at the right platform"))
        })?;
        if let Some(missing) = columns.iter().find(|c| !have.contains(c)) {
            return Err(ResourceError::Source(format!(
                "the plugin reads column `{table}.{missing}`, which the source does not have (it has: {})",
                have.join(", ")
            )));
        }
    }
    Ok(())
}

// The entry travels with the error (a failed resource is still listed), once per resource.
#[allow(clippy::too_many_arguments, clippy::result_large_err)]
fn export_resource(
    index: usize,
    runtime: &Runtime,
    plugin: &Plugin,
    spec: &ResourceSpec,
    source: &Arc<dyn Source>,
    dir: &Path,
    as_of: DateTime<Utc>,
    options: &RunOptions,
    attachments: &AttachmentsContext,
    closed: Option<std::sync::mpsc::Sender<(usize, String)>>,
) -> Result<ResourceEntry, (ResourceEntry, ResourceError)> {
    let started = Instant::now();
    // An attachments plugin's records are the index of its files: `<name>_index.<ext>`.
    let stem = if plugin.uses_blobs { format!("{}_index", spec.name) } else { spec.name.clone() };
    let mut entry = ResourceEntry {
        name: spec.name.clone(),
        plugin: PluginEntry {
            name: plugin.info.name.clone(),
            version: plugin.info.version.clone(),
            origin: match &plugin.origin {
                Origin::Builtin(_) => "builtin".into(),
                Origin::Path(p) => p.display().to_string(),
            },
            sha256: plugin.sha256.clone(),
        },
        schema: serde_json::from_str(&plugin.schema.json).unwrap_or(serde_json::Value::Null),
        format: spec.format.extension().into(),
        codec: (spec.format == Format::Avro).then(|| spec.codec.name().into()),
        gzip: spec.gzip,
        window: None,
        records: 0,
        files: Vec::new(),
        error: None,
        timings: StageTimes::default(),
        schema_fingerprint: crate::records::SchemaFingerprint::of_json(&plugin.schema.json).ok(),
    };
    let fail = |mut entry: ResourceEntry, error: ResourceError| {
        entry.error = Some(ResourceFailure { kind: error.kind().into(), message: error.to_string() });
        // Whatever it wrote before failing must not be published beside the manifest.
        discard_files(dir, spec, &stem);
        if plugin.uses_blobs {
            let _ = std::fs::remove_dir_all(dir.join(&spec.name));
        }
        entry.files.clear();
        entry.records = 0;
        Err((entry, error))
    };
    if let Err(e) = check_grants(plugin, source.as_ref()) {
        return fail(entry, e);
    }

    let window = match (&plugin.info.window_column, spec.months) {
        (None, Some(_)) => {
            return fail(entry, ResourceError::Source(format!(
                "`months` is set, but plugin `{}` has no time window; remove `months` from this resource",
                plugin.info.name
            )));
        }
        (None, None) => None,
        (Some(column), months) => {
            let bounds = window::resolve(as_of, months.unwrap_or(Months::All));
            let micros = |t: i64| DateTime::from_timestamp_micros(t).map(rfc3339).unwrap_or_default();
            entry.window = Some(WindowEntry { column: column.clone(), start: bounds.start.map(micros), end: Some(micros(bounds.end)) });
            Some(Range { column: column.clone(), start: bounds.start, end: Some(bounds.end) })
        }
    };
    let marker = {
        let mut h = Sha256::new();
        h.update(spec.name.as_bytes());
        h.update(plugin.schema.json.as_bytes());
        h.update(as_of.timestamp_micros().to_le_bytes());
        let d = h.finalize();
        let mut m = [0u8; 16];
        m.copy_from_slice(&d[..16]);
        m
    };
    let attachment_writer = match (&attachments.store, plugin.uses_blobs) {
        (_, false) => None,
        (Some(store), true) => Some(Arc::new(Mutex::new(crate::attachments::AttachmentWriter::new(store.clone(), dir, &spec.name, attachments.sync)))),
        (None, true) => {
            return fail(entry, ResourceError::Source(format!("resource `{}` exports attachments, but the job has no blob store; set `[source] blobs`", spec.name)));
        }
    };
    let files = ResourceFiles::new(
        dir,
        &stem,
        spec.gzip,
        FileFormat { format: spec.format, schema: plugin.schema.clone(), codec: spec.codec.to_avro(), marker },
        spec.split,
    );
    let files = match closed {
        Some(closed) => files.on_close(move |name| {
            let _ = closed.send((index, name.to_string()));
        }),
        None => files,
    };
    let (tx, rx) = sync_channel::<Batch>(4);
    let writer = std::thread::Builder::new()
        .name(format!("ferry-write-{}", spec.name))
        .spawn(move || write_files(files, rx))
        .expect("spawning a writer thread");
    let first_record = Arc::new(std::sync::OnceLock::new());
    let channel = ChannelSink { tx, started: options.started, first: first_record.clone() };
    let sink = crate::progress::track(options.progress.clone(), &spec.name, plugin, source.as_ref(), window.as_ref(), Box::new(channel));
    let request = ExportRequest { as_of: as_of.timestamp_micros(), window, options: spec.options.clone() };
    let outcome = runtime.export_with(
        plugin,
        ExportJob {
            resource: spec.name.clone(),
            request,
            source: source.clone(),
            sink,
            events: options.events.clone(),
            limits: spec.limits,
        },
        attachment_writer.clone().map(|w| Box::new(crate::attachments::SharedWriter(w)) as Box<dyn crate::runtime::AttachmentSink>),
    );
    // The sink (and with it the channel) is gone once `export` returns: the writer
    // finishes the file, or reports why it could not.
    let written = writer.join().unwrap_or_else(|_| Err("the writer thread panicked".into()));
    let outcome = match (outcome, written) {
        (Ok(outcome), Ok(written)) => (outcome, written),
        // A broken output is the root cause even when the plugin saw it first.
        (_, Err(reason)) => return fail(entry, ResourceError::Output { path: dir.into(), reason }),
        (Err(e), Ok((written, _))) => {
            // The plugin failed after the writer finished what it had: those files are
            // partial, and a snapshot holds only whole files.
            for f in written {
                let _ = std::fs::remove_file(dir.join(&f.name));
            }
            return fail(entry, e.into());
        }
    };
    let (outcome, (written, write_time)) = outcome;
    entry.records = outcome.records;
    entry.files = written
        .into_iter()
        .map(|f| FileEntry {
            path: f.name,
            archive: None,
            records: f.records,
            bytes: f.stats.bytes,
            uncompressed_bytes: spec.gzip.then_some(f.stats.uncompressed_bytes),
            sha256: f.stats.sha256,
            kind: None,
            plaintext: None,
        })
        .collect();
    if let Some(writer) = &attachment_writer {
        let writer = writer.lock().expect("the writer never panics while locked");
        entry.files.extend(writer.files.iter().map(|s| FileEntry {
            path: s.path.clone(),
            archive: None,
            records: 0,
            bytes: s.size,
            uncompressed_bytes: None,
            sha256: s.sha256.clone(),
            kind: Some(crate::package::ATTACHMENT_KIND.into()),
            plaintext: None,
        }));
    }
    entry.timings = StageTimes {
        plugin_seconds: outcome.elapsed.saturating_sub(outcome.host.source + outcome.host.validate + outcome.host.output_wait).as_secs_f64(),
        source_wait_seconds: outcome.host.source.as_secs_f64(),
        validate_seconds: outcome.host.validate.as_secs_f64(),
        output_wait_seconds: outcome.host.output_wait.as_secs_f64(),
        write_seconds: write_time.as_secs_f64(),
        wall_seconds: started.elapsed().as_secs_f64(),
        first_record_seconds: first_record.get().map(Duration::as_secs_f64),
    };
    if outcome.log_dropped > 0 {
        options.events.log(&spec.name, crate::runtime::Level::Warn, &format!("{} log messages over the limit were dropped", outcome.log_dropped));
    }
    Ok(entry)
}

/// Tells the packer, waiting for a result, that a worker died and will send none.
struct PanicFlag<'a>(&'a std::sync::atomic::AtomicBool, &'a [Mutex<Option<Exported>>], &'a std::sync::Condvar);

impl Drop for PanicFlag<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Ordering::Relaxed);
            // Taking each lock once means the packer is either about to see the flag or
            // already waiting, so the notification cannot be lost.
            for slot in self.1 {
                drop(slot.lock());
            }
            self.2.notify_all();
        }
    }
}

type Batch = (u32, Vec<u8>, Vec<u32>);

struct ChannelSink {
    tx: SyncSender<Batch>,
    started: Instant,
    first: Arc<std::sync::OnceLock<Duration>>,
}

impl RecordSink for ChannelSink {
    fn write(&mut self, count: u32, datums: Vec<u8>, ends: Vec<u32>) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if count > 0 {
            self.first.get_or_init(|| self.started.elapsed());
        }
        self.tx.send((count, datums, ends)).map_err(|_| "the output writer stopped".into())
    }
}

/// The writer thread: encodes, compresses, hashes and writes a resource's files.
/// Returns the files and the time it was busy.
fn write_files(mut files: ResourceFiles, rx: Receiver<Batch>) -> Result<(Vec<WrittenFile>, Duration), String> {
    let mut busy = Duration::ZERO;
    for (count, datums, ends) in rx {
        let t = Instant::now();
        files.append(count, &datums, &ends).map_err(|e| e.to_string())?;
        busy += t.elapsed();
    }
    let t = Instant::now();
    let written = files.finish().map_err(|e| e.to_string())?;
    Ok((written, busy + t.elapsed()))
}

/// Removes a failed resource's files from the staging directory: `NAME.EXT` and the
/// split files `NAME-NNNNN.EXT`.
fn discard_files(dir: &Path, spec: &ResourceSpec, file_stem: &str) {
    let ext = format!(".{}{}", spec.format.extension(), if spec.gzip { ".gz" } else { "" });
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(ext.as_str())) else { continue };
        let ours = stem == file_stem
            || stem
                .strip_prefix(file_stem)
                .and_then(|rest| rest.strip_prefix('-'))
                .is_some_and(|n| n.len() == 5 && n.bytes().all(|b| b.is_ascii_digit()));
        if ours {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
