//! The export stage of one resource: check its grants, resolve its window, run its
//! plugin into a writer thread (and, for attachments, a blob copier), and report its
//! manifest entry. Every failure goes through one cleanup: the resource's files leave the
//! staging directory, and its entry says why.

use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Utc};

use super::pack::Event;
use super::writer::{FileWriter, WriteError, Written};
use super::{Exported, ResourceError, RunOptions};
use crate::attachments::{AttachmentWriter, Members, SharedWriter};
use crate::formats::FileFormat;
use crate::job::ResourceSpec;
use crate::package::layout::{self, FileNames};
use crate::package::{ConfinedDir, FileEntry, PluginEntry, ResourceEntry, ResourceFiles, StageTimes, WindowEntry};
use crate::runtime::{AttachmentSink, ExportJob, ExportOutcome, ExportRequest, Origin, Plugin, Range, Runtime};
use crate::source::{BlobStore, Source, SourceError};
use crate::window::{self, Window};

/// Why a plugin's declared tables and columns do not fit the source.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(
        "the plugin reads table `{table}`, which the source does not have; check that `[source] {setting}` points at the right platform"
    )]
    NoTable { table: String, setting: &'static str },
    #[error("the plugin reads column `{table}.{column}`, which the source does not have (it has: {have})")]
    NoColumn { table: String, column: String, have: String },
}

/// What every resource's export shares.
pub(super) struct Exporter<'a> {
    pub runtime: &'a Runtime,
    pub source: &'a Arc<dyn Source>,
    /// The job's `[source]` setting the source comes from, for messages.
    pub source_setting: &'static str,
    /// The staging directory.
    pub dir: &'a ConfinedDir,
    pub as_of: DateTime<Utc>,
    pub options: &'a RunOptions,
    pub blobs: Option<&'a Arc<dyn BlobStore>>,
    /// Files stay loose (no tar parts): sync each attachment, as nothing rewrites them.
    pub sync_attachments: bool,
    /// A sharded run's shard: its file names carry the shard's tag.
    pub shard: Option<layout::Shard>,
    /// A sharded run's slice of each resource, in selection order.
    pub cuts: Option<&'a [crate::package::shards::Cut]>,
}

impl Exporter<'_> {
    /// Exports resource `index` (whose plugin loaded), telling `events` of each file it
    /// closes. The entry travels with the error: a failed resource is still listed.
    pub fn export(&self, index: usize, spec: &ResourceSpec, plugin: &Plugin, events: &Sender<Event>) -> Exported {
        let mut entry =
            ResourceEntry::new(&spec.name, plugin_entry(plugin), &plugin.schema.json, spec.format, spec.codec.name(), spec.gzip);
        entry.as_of = Some(crate::package::AsOfEntry::new(plugin.info.created_column.clone()));
        entry.key = plugin.info.key.clone();
        entry.references = plugin
            .info
            .references
            .iter()
            .map(|r| crate::package::ReferenceEntry { field: r.field.clone(), resource: r.resource.clone(), key: r.key.clone() })
            .collect();
        let cut = self.cuts.and_then(|cuts| cuts.get(index));
        if cut.is_some_and(|c| !c.ran) {
            // A resource that cannot be cut, run whole by another shard.
            return Exported { entry, error: None };
        }
        let output = Output::new(self.dir, spec, plugin.uses_blobs, self.shard);
        match self.try_export(index, spec, plugin, &output, events, &mut entry) {
            Ok(()) => Exported { entry, error: None },
            Err(error) => {
                output.discard();
                entry.fail(error.kind(), error.to_string());
                Exported { entry, error: Some(error) }
            }
        }
    }

    fn try_export(
        &self,
        index: usize,
        spec: &ResourceSpec,
        plugin: &Plugin,
        output: &Output,
        events: &Sender<Event>,
        entry: &mut ResourceEntry,
    ) -> Result<(), ResourceError> {
        let started = Instant::now();
        self.check_grants(plugin)?;
        let window = window::for_resource(&plugin.info.name, plugin.info.window_column.as_deref(), spec.months, self.as_of)?;
        entry.window = window.as_ref().map(window_entry);
        let attachments = self.attachment_writer(spec, plugin)?;
        let (outcome, (written, write_seconds), first_record) =
            self.run_plugin(index, spec, plugin, output, window.as_ref(), events, attachments.clone())?;
        entry.records = outcome.records;
        entry.files = written.into_iter().map(|f| FileEntry::records(f, spec.gzip)).collect();
        if let Some(writer) = attachments {
            let mut writer = writer.lock().unwrap_or_else(|e| e.into_inner());
            writer.flush().map_err(|e| ResourceError::Attachments { resource: spec.name.clone(), source: e })?;
            entry.files.extend(writer.files.iter().map(|s| FileEntry::attachment(&s.path, s.size, &s.sha256)));
        }
        entry.timings = stage_times(&outcome, write_seconds.as_secs_f64(), started, first_record);
        if outcome.log_dropped > 0 {
            let message = format!("{} log messages over the limit were dropped", outcome.log_dropped);
            self.options.events.log(&spec.name, crate::runtime::Level::Warn, &message);
        }
        Ok(())
    }

    /// Runs the plugin's export into a writer thread; returns how it went, what the
    /// writer wrote, and when the first record arrived.
    #[allow(clippy::too_many_arguments)]
    fn run_plugin(
        &self,
        index: usize,
        spec: &ResourceSpec,
        plugin: &Plugin,
        output: &Output,
        window: Option<&Window>,
        events: &Sender<Event>,
        attachments: Option<Arc<Mutex<AttachmentWriter>>>,
    ) -> Result<(ExportOutcome, Written, Option<f64>), ResourceError> {
        let marker = crate::formats::sync_marker(&spec.name, &plugin.schema.json, self.as_of.timestamp_micros());
        let format = FileFormat { format: spec.format, schema: plugin.schema.clone(), codec: spec.codec.to_avro(), marker };
        let events = events.clone();
        let files = ResourceFiles::new(self.dir, &output.stem, spec.gzip, format, spec.split)
            .on_close(move |file| drop(events.send(Event::Closed { resource: index, file: file.to_string() })));
        let output_error = |source: WriteError| ResourceError::Output { path: self.dir.path().into(), source };
        let (writer, channel) = FileWriter::spawn(&spec.name, files, self.options.started).map_err(output_error)?;
        let first_record = channel.first_record();
        let range = window.map(Range::from);
        let slice = self.cuts.and_then(|cuts| cuts.get(index)).and_then(|c| c.column.clone().map(|column| (column, c.start, c.end)));
        let sink = crate::progress::track(
            self.options.progress.clone(),
            &spec.name,
            plugin,
            self.source.clone(),
            range.as_ref(),
            self.as_of.timestamp_micros(),
            slice.as_ref(),
            Box::new(channel),
        );
        let job = ExportJob {
            slice,
            resource: spec.name.clone(),
            request: ExportRequest { as_of: self.as_of.timestamp_micros(), window: range, options: spec.options.clone() },
            source: self.source.clone(),
            sink,
            events: self.options.events.clone(),
            limits: spec.limits,
        };
        let copier = attachments.map(|w| Box::new(SharedWriter(w)) as Box<dyn AttachmentSink>);
        let outcome = self.runtime.export_with(plugin, job, copier);
        // The sink (and with it the channel) is gone once `export` returns: the writer
        // finishes the file, or says why it could not. A broken output is the root cause
        // even when the plugin saw it first.
        let written = writer.join().map_err(output_error)?;
        Ok((outcome?, written, first_record.get().map(|d| d.as_secs_f64())))
    }

    /// Checks the plugin's declared tables and columns against the source.
    fn check_grants(&self, plugin: &Plugin) -> Result<(), GrantError> {
        for (table, columns) in plugin.grants.iter() {
            let have =
                self.source.columns(table)?.ok_or_else(|| GrantError::NoTable { table: table.clone(), setting: self.source_setting })?;
            if let Some(missing) = columns.iter().find(|c| !have.contains(c)) {
                return Err(GrantError::NoColumn { table: table.clone(), column: missing.clone(), have: have.join(", ") });
            }
        }
        Ok(())
    }

    fn attachment_writer(&self, spec: &ResourceSpec, plugin: &Plugin) -> Result<Option<Arc<Mutex<AttachmentWriter>>>, ResourceError> {
        if !plugin.uses_blobs {
            return Ok(None);
        }
        let store = self.blobs.ok_or_else(|| ResourceError::NoBlobStore { resource: spec.name.clone() })?;
        let members = if self.sync_attachments { Members::Loose } else { Members::Spooled };
        Ok(Some(Arc::new(Mutex::new(AttachmentWriter::new(store.clone(), self.dir, &spec.name, members)))))
    }
}

/// Where one resource writes in the staging directory, and the one way its files leave
/// again when it fails.
struct Output<'a> {
    dir: &'a ConfinedDir,
    /// The stem of its record files.
    stem: String,
    names: FileNames,
    /// The folder of its attachment files, for a resource that exports attachments.
    attachments: Option<&'a str>,
}

impl<'a> Output<'a> {
    fn new(dir: &'a ConfinedDir, spec: &'a ResourceSpec, attachments: bool, shard: Option<layout::Shard>) -> Self {
        let stem = layout::shard_stem(&layout::records_stem(&spec.name, attachments), shard);
        let names = FileNames::new(&stem, spec.format.extension(), spec.gzip);
        Output { dir, stem, names, attachments: attachments.then(|| layout::attachments_dir(&spec.name)) }
    }

    /// Removes every file the resource wrote: whole or partial, one or split, records or
    /// attachments. A snapshot holds only whole files of resources that succeeded.
    fn discard(&self) {
        for name in self.dir.names().unwrap_or_default().iter().filter(|name| self.names.owns(name)) {
            let _ = self.dir.remove_file(name);
        }
        if let Some(folder) = self.attachments {
            let _ = self.dir.remove_dir_all(folder);
        }
    }
}

/// The manifest's entry of a plugin.
pub(super) fn plugin_entry(plugin: &Plugin) -> PluginEntry {
    PluginEntry {
        name: plugin.info.name.clone(),
        version: plugin.info.version.clone(),
        origin: origin_text(&plugin.origin),
        sha256: plugin.sha256.clone(),
    }
}

pub(super) fn origin_text(origin: &Origin) -> String {
    match origin {
        Origin::Builtin(_) => "builtin".into(),
        Origin::Path(p) => p.display().to_string(),
    }
}

fn window_entry(w: &Window) -> WindowEntry {
    WindowEntry { column: w.column.clone(), start: w.start_rfc3339(), end: Some(w.end_rfc3339()) }
}

fn stage_times(outcome: &ExportOutcome, write_seconds: f64, started: Instant, first_record_seconds: Option<f64>) -> StageTimes {
    let host = &outcome.host;
    StageTimes {
        plugin_seconds: outcome.elapsed.saturating_sub(host.source + host.validate + host.output_wait).as_secs_f64(),
        source_wait_seconds: host.source.as_secs_f64(),
        validate_seconds: host.validate.as_secs_f64(),
        output_wait_seconds: host.output_wait.as_secs_f64(),
        write_seconds,
        wall_seconds: started.elapsed().as_secs_f64(),
        first_record_seconds,
        plugin_memory_bytes: Some(outcome.memory_peak),
    }
}
