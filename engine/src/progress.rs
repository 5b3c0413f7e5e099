//! Host-side progress of each resource: how many records and bytes its plugin has sent,
//! against the rows the source says it will send. Counted where records leave the
//! validator, so it is exact whatever the plugin reports about itself.
//!
//! The library only counts and calls a [`Progress`]; drawing bars or printing lines is
//! the command line's business.

use std::sync::Arc;

use crate::runtime::{Plugin, Range, RecordSink};
use crate::source::Source;

/// Where per-resource progress goes. Called from the resources' threads at once.
pub trait Progress: Send + Sync {
    /// A resource starts exporting; `expected` is the rows its main table holds within
    /// its window, when the source could count them.
    fn started(&self, resource: &str, expected: Option<u64>);
    /// Totals so far: validated records, and their encoded (uncompressed Avro) bytes.
    fn advanced(&self, resource: &str, records: u64, bytes: u64);
    /// The resource is done: its records and compressed file bytes, or why it failed.
    fn finished(&self, resource: &str, outcome: Result<(u64, u64), &str>);
}

/// A sharded run's slice of a main table: `(creation column, start, end)`.
pub type Slice = (String, Option<i64>, Option<i64>);

/// The rows a resource's plugin will read from its main table, within its window and
/// created before `as_of` (microseconds): the count `copy_table` exports, pushed down
/// exactly as the export's read is (a shard's: within its slice).
pub fn expected_rows(
    plugin: &Plugin,
    source: &dyn Source,
    window: Option<&Range>,
    as_of: i64,
    slice: Option<&Slice>,
) -> Result<Option<u64>, crate::source::SourceError> {
    let Some(main) = plugin.info.tables.iter().find(|t| t.table == plugin.info.main_table) else { return Ok(None) };
    let range = window.map(|w| crate::source::Range { column: &w.column, start: w.start, end: w.end });
    let created_before = plugin.info.created_column.as_deref().map(|column| crate::source::Range { column, start: None, end: Some(as_of) });
    let shard = slice.map(|(column, start, end)| crate::source::Range { column, start: *start, end: *end });
    let query = crate::source::TableQuery { table: &main.table, columns: &main.columns, range, order_by: None, created_before, shard };
    source.count(&query).map(Some)
}

/// Wraps a resource's record sink so every batch it accepts is counted, and reports the
/// start (with the expected rows, of its slice for a shard) right away.
#[allow(clippy::too_many_arguments)]
pub fn track(
    progress: Option<Arc<dyn Progress>>,
    resource: &str,
    plugin: &Plugin,
    source: &dyn Source,
    window: Option<&Range>,
    as_of: i64,
    slice: Option<&Slice>,
    sink: Box<dyn RecordSink>,
) -> Box<dyn RecordSink> {
    let Some(progress) = progress else { return sink };
    // An estimate only: a count that fails leaves the bar without a length.
    progress.started(resource, expected_rows(plugin, source, window, as_of, slice).ok().flatten());
    Box::new(Tracked { inner: sink, progress, resource: resource.into(), records: 0, bytes: 0 })
}

struct Tracked {
    inner: Box<dyn RecordSink>,
    progress: Arc<dyn Progress>,
    resource: String,
    records: u64,
    bytes: u64,
}

impl RecordSink for Tracked {
    fn write(&mut self, count: u32, datums: Vec<u8>, ends: Vec<u32>) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let bytes = datums.len() as u64;
        self.inner.write(count, datums, ends)?;
        self.records += count as u64;
        self.bytes += bytes;
        self.progress.advanced(&self.resource, self.records, self.bytes);
        Ok(())
    }
}
