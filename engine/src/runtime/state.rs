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
    BatchTooLarge { bytes: usize, limit: usize },
    Sink(String),
    /// The plugin called the host where the contract forbids it (reading or emitting
    /// from `describe`).
    Contract(String),
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
    pub(crate) fault: Option<Fault>,
    pub(crate) log_used: usize,
    pub(crate) log_dropped: u64,
    pub(crate) open_cursors: usize,
    pub(crate) stderr: MemoryOutputPipe,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}
