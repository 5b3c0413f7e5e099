//! The store's data: one struct per plugin instance.

use std::collections::BTreeMap;
use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::limits::{Limits, MemoryLimiter};
use super::{Events, RecordSink};
use crate::records::{BatchError, RecordSchema};
use crate::source::{RowStream, Source};

/// An open read, as the plugin's `cursor` resource.
pub struct Cursor {
    pub(crate) table: String,
    pub(crate) stream: Box<dyn RowStream>,
}

/// What the plugin may read: table -> columns, from its `describe`.
pub type Grants = BTreeMap<String, Vec<String>>;

/// Why the host stopped an export, recorded when it happens so that a plugin that
/// swallows the error (or traps afterwards) is still reported for the first cause.
#[derive(Debug)]
pub(crate) enum Fault {
    BadBatch(BatchError),
    BatchTooLarge {
        bytes: usize,
        limit: usize,
    },
    Sink(String),
    /// The plugin called the host where the contract forbids it (reading or emitting
    /// from `describe`).
    Contract(String),
    /// An attachment could not be stored (missing blob, sha256 mismatch, ...); the
    /// message names the attachment's uid and the version's sid.
    Attachment(String),
    /// The export's time limit ran out inside a host call (`records.copy`).
    TimeLimit,
}

/// Where an export's time went on the host side of the boundary.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostTimings {
    /// Waiting for the source: counts, opening reads, and each read's next batch (of
    /// rows, or for `records.copy` of records the reader thread converted).
    pub source: std::time::Duration,
    /// Checking record batches against the schema.
    pub validate: std::time::Duration,
    /// Handing batches to the writer (time here is the writer being behind).
    pub output_wait: std::time::Duration,
}

pub struct HostState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) limits: Limits,
    pub(crate) resource: Arc<str>,
    pub(crate) grants: Arc<Grants>,
    pub(crate) source: Arc<dyn Source>,
    pub(crate) schema: Option<Arc<RecordSchema>>,
    pub(crate) sink: Option<Box<dyn RecordSink>>,
    pub(crate) events: Arc<dyn Events>,
    pub(crate) records: u64,
    pub(crate) timings: HostTimings,
    pub(crate) fault: Option<Fault>,
    pub(crate) log_used: usize,
    pub(crate) log_dropped: u64,
    pub(crate) open_cursors: usize,
    pub(crate) stderr: MemoryOutputPipe,
    /// Where `blobs.copy` streams attachments; `None`: the plugin gets no blob store.
    pub(crate) attachments: Option<Box<dyn super::AttachmentSink>>,
    /// What the host applies to reads of the resource's main table (export only).
    pub(crate) main: Option<MainTable>,
    /// When the store was made: host calls that run long check the time limit against it.
    pub(crate) started: std::time::Instant,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// The resource's main table, as the host treats it during an export.
pub(crate) struct MainTable {
    pub(crate) table: String,
    /// `(creation column, as_of)`: every read and count of the main table gets
    /// `column < as_of`, so nothing created at or after as_of is in the snapshot.
    pub(crate) created_before: Option<(String, i64)>,
    /// A sharded run's slice: `(column, start, end)` on every read and count of the table.
    pub(crate) slice: Option<(String, Option<i64>, Option<i64>)>,
    /// `records.copy`'s field <- column map (0.2.0); `None`: by position (0.1.0).
    pub(crate) copied: Option<Vec<super::FieldColumn>>,
}

impl MainTable {
    pub(crate) fn new(plugin: &super::Plugin, as_of: i64) -> Self {
        let info = &plugin.info;
        MainTable {
            table: info.main_table.clone(),
            created_before: info.created_column.clone().map(|c| (c, as_of)),
            slice: None,
            copied: (plugin.contract == super::Contract::V0_2).then(|| info.copied.clone()),
        }
    }
}
