//! The packer: one ordered stream of events from the export workers (a file closed, a
//! resource finished), read by one loop that packs each resource's files into tar parts
//! in job order, whatever order the workers finish in, so the parts are the same bytes
//! every run.
//!
//! Under `on_error = "fail"` the table files of the resource being packed go into the
//! part as each one closes (split files), while it still exports: a failure then fails
//! the whole run anyway. The stream ends when every worker has dropped its sender, also
//! when one panicked (the scope then re-raises the panic): no flag, no polling.

use std::collections::HashSet;
use std::sync::mpsc::Receiver;

use super::{Exported, PackedParts};
use crate::package::archive::{Packer, Part, PartSink};
use crate::package::spool::{SPOOL, SpoolReader};
use crate::package::{ConfinedDir, ResourceEntry};

/// What a worker tells the packer.
pub(super) enum Event {
    /// A table file of resource `resource` is whole in the staging directory.
    Closed { resource: usize, file: String },
    /// Resource `resource` is done (its last event).
    Finished { resource: usize, result: Box<Exported> },
}

/// Where finished files go: tar parts in the making (tables into
/// `snapshot_tables_partN_<stamp>.tar`, attachments into their own parts) handed to a
/// sink, or, for a job without parts, nowhere (files stay loose; the sink is kept for
/// their delivery).
pub(super) struct Parts<'a, S: PartSink> {
    sink: S,
    dir: &'a ConfinedDir,
    /// When the job packs.
    packers: Option<Packers<S::Writer>>,
    /// Set once packing failed, or once a resource failed under `on_error = "fail"`.
    stopped: Option<Stop<S::Error>>,
}

/// Why the packer stopped packing.
enum Stop<E> {
    /// The sink failed (a part's write or upload, or a staged file's read).
    Failed(E),
    /// A resource failed under `on_error = "fail"`: the run fails on that resource's
    /// error and publishes nothing, so the parts so far are abandoned.
    ResourceFailed,
}

/// The tables' packer and the attachments' packer.
type Packers<W> = (Packer<W>, Packer<W>);

/// Names and caps the parts: `stamp` names them, `max_bytes` caps each, `mtime` goes in
/// every header.
pub(super) struct PartSpec<'a> {
    pub stamp: &'a str,
    pub max_bytes: u64,
    pub mtime: u64,
}

impl<'a, S: PartSink> Parts<'a, S> {
    pub fn new(sink: S, dir: &'a ConfinedDir, spec: Option<PartSpec<'_>>) -> Self {
        let packers =
            spec.map(|p| (Packer::new("tables", p.stamp, p.max_bytes, p.mtime), Packer::new("attachments", p.stamp, p.max_bytes, p.mtime)));
        Parts { sink, dir, packers, stopped: None }
    }

    /// Packs a staged table file.
    fn add(&mut self, file: &str) {
        let Some((tables, _)) = &mut self.packers else { return };
        if self.stopped.is_some() {
            return;
        }
        if let Err(e) = tables.add(&mut self.sink, self.dir, file) {
            self.stopped = Some(Stop::Failed(e));
        }
    }

    /// Packs a finished resource's files (those not packed as they closed).
    fn add_resource(&mut self, result: &Exported, packed_early: &HashSet<String>) {
        if result.error.is_some() || self.packers.is_none() {
            return;
        }
        let entry = &result.entry;
        for f in entry.files.iter().filter(|f| !packed_early.contains(&f.path) && !f.is_attachment()) {
            self.add(&f.path);
        }
        if entry.files.iter().any(|f| f.is_attachment()) {
            self.add_attachments(entry);
        }
    }

    /// Packs a resource's attachments from its spool, in the order they were written.
    fn add_attachments(&mut self, entry: &ResourceEntry) {
        let folder = crate::package::layout::attachments_dir(&entry.name);
        let spool = format!("{folder}/{SPOOL}");
        let packed = self.pack_spool(entry, &spool);
        let _ = self.dir.remove_file(&spool);
        self.dir.remove_empty_dirs(folder);
        if let (Err(e), None) = (packed, &self.stopped) {
            self.stopped = Some(Stop::Failed(e));
        }
    }

    fn pack_spool(&mut self, entry: &ResourceEntry, spool: &str) -> Result<(), S::Error> {
        let Some((_, packer)) = &mut self.packers else { return Ok(()) };
        if self.stopped.is_some() {
            return Ok(());
        }
        let mut reader = SpoolReader::open(self.dir, spool)?;
        for f in entry.files.iter().filter(|f| f.is_attachment()) {
            let member = reader.next_member(&f.path, f.bytes)?;
            packer.add_member(&mut self.sink, &f.path, f.bytes, member)?;
        }
        if !reader.at_end()? {
            return Err(
                std::io::Error::other(format!("the staged attachments of `{}` hold more than its manifest lists", entry.name)).into()
            );
        }
        Ok(())
    }

    /// Closes the last parts (tables first, then attachments) and hands back the sink.
    pub fn finish(mut self) -> (Result<PackedParts, S::Error>, S) {
        match self.stopped.take() {
            Some(Stop::Failed(e)) => return (Err(e), self.sink),
            Some(Stop::ResourceFailed) => return (Ok(Vec::new()), self.sink),
            None => {}
        }
        let Some((tables, attachments)) = self.packers.take() else { return (Ok(Vec::new()), self.sink) };
        let finish = || -> Result<PackedParts, S::Error> {
            let mut parts: Vec<(&'static str, Part)> = tables.finish(&mut self.sink)?.into_iter().map(|p| ("tables", p)).collect();
            parts.extend(attachments.finish(&mut self.sink)?.into_iter().map(|p| ("attachments", p)));
            Ok(parts)
        };
        let parts = finish();
        (parts, self.sink)
    }
}

/// Reads the workers' events until they all hung up, packing each resource in job
/// order when `parts` is set. `pack_early`: pack table files as they close. `fail_fast`:
/// a failed resource stops the packing (nothing will be published).
/// Returns the results in job order (fewer than `count` only when a worker panicked).
pub(super) fn collect<S: PartSink>(
    events: Receiver<Event>,
    count: usize,
    pack_early: bool,
    fail_fast: bool,
    parts: &mut Parts<'_, S>,
) -> Vec<Exported> {
    let mut closed: Vec<Vec<String>> = vec![Vec::new(); count];
    let mut finished: Vec<Option<Exported>> = (0..count).map(|_| None).collect();
    let mut packed_early = HashSet::new();
    let mut results = Vec::with_capacity(count);
    for event in events {
        match event {
            Event::Closed { resource, file } if pack_early && parts.packers.is_some() => closed[resource].push(file),
            Event::Closed { .. } => {}
            Event::Finished { resource, result } => finished[resource] = Some(*result),
        }
        while let Some(next) = (results.len() < count).then_some(results.len()) {
            for file in closed[next].drain(..) {
                parts.add(&file);
                packed_early.insert(file);
            }
            let Some(result) = finished[next].take() else { break };
            if result.error.is_some() && fail_fast && parts.stopped.is_none() {
                parts.stopped = Some(Stop::ResourceFailed);
            }
            parts.add_resource(&result, &packed_early);
            packed_early.clear();
            results.push(result);
        }
    }
    results
}
