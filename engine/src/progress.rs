//! Host-side progress of each resource: how many records and bytes its plugin has sent,
//! against the rows the source says it will send. Counted where records leave the
//! validator, so it is exact whatever the plugin reports about itself.
//!
//! The library only counts and calls a [`Progress`]; drawing bars or printing lines is
//! the command line's business.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

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
    Expected::of(plugin, window, as_of, slice).map(|e| e.count(source)).transpose()
}

/// What [`expected_rows`] counts, owned, so the count can run beside the export.
struct Expected {
    table: String,
    columns: Vec<String>,
    window: Option<Range>,
    created: Option<String>,
    as_of: i64,
    slice: Option<Slice>,
}

impl Expected {
    fn of(plugin: &Plugin, window: Option<&Range>, as_of: i64, slice: Option<&Slice>) -> Option<Self> {
        let main = plugin.info.tables.iter().find(|t| t.table == plugin.info.main_table)?;
        Some(Expected {
            table: main.table.clone(),
            columns: main.columns.clone(),
            window: window.cloned(),
            created: plugin.info.created_column.clone(),
            as_of,
            slice: slice.cloned(),
        })
    }

    fn count(&self, source: &dyn Source) -> Result<u64, crate::source::SourceError> {
        use crate::source::{Range as Bounds, TableQuery};
        let query = TableQuery {
            table: &self.table,
            columns: &self.columns,
            range: self.window.as_ref().map(|w| Bounds { column: &w.column, start: w.start, end: w.end }),
            order_by: None,
            created_before: self.created.as_deref().map(|column| Bounds { column, start: None, end: Some(self.as_of) }),
            shard: self.slice.as_ref().map(|(column, start, end)| Bounds { column, start: *start, end: *end }),
        };
        source.count(&query)
    }
}

/// Wraps a resource's record sink so every batch it accepts is counted, and reports the
/// start with the expected rows (of its slice for a shard). The count runs on a thread
/// of its own beside the export, which does not wait for it (a scan of 1M transactions
/// took 0.34 s before the first record could leave); progress is reported once the start
/// is, and the start always comes before the resource's end.
#[allow(clippy::too_many_arguments)]
pub fn track(
    progress: Option<Arc<dyn Progress>>,
    resource: &str,
    plugin: &Plugin,
    source: Arc<dyn Source>,
    window: Option<&Range>,
    as_of: i64,
    slice: Option<&Slice>,
    sink: Box<dyn RecordSink>,
) -> Box<dyn RecordSink> {
    let Some(progress) = progress else { return sink };
    let start = Arc::new(Start { progress: progress.clone(), resource: resource.into(), told: Mutex::new(false), counted: Condvar::new() });
    let expected = Expected::of(plugin, window, as_of, slice);
    let counter = start.clone();
    let spawned = std::thread::Builder::new().name("ferry-count".into()).spawn(move || {
        // An estimate only: a count that fails leaves the bar without a length.
        counter.tell(expected.and_then(|e| e.count(source.as_ref()).ok()));
    });
    if spawned.is_err() {
        start.tell(None);
    }
    Box::new(Tracked { inner: sink, progress, start, resource: resource.into(), records: 0, bytes: 0 })
}

/// A resource's start, told once: by the count when it ends, or without a count by the
/// resource's end if the count has not ended a second after the export did.
struct Start {
    progress: Arc<dyn Progress>,
    resource: String,
    told: Mutex<bool>,
    counted: Condvar,
}

/// How long a finished export waits for its count before its start is told without one.
const COUNT_WAIT: Duration = Duration::from_secs(1);

impl Start {
    fn tell(&self, expected: Option<u64>) {
        let mut told = self.told.lock().unwrap_or_else(|e| e.into_inner());
        if !*told {
            self.progress.started(&self.resource, expected);
            *told = true;
            self.counted.notify_all();
        }
    }

    fn told(&self) -> bool {
        *self.told.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits a little for the count, then tells the start without it.
    fn tell_at_end(&self) {
        let told = self.told.lock().unwrap_or_else(|e| e.into_inner());
        let (told, _) = self.counted.wait_timeout_while(told, COUNT_WAIT, |told| !*told).unwrap_or_else(|e| e.into_inner());
        drop(told);
        self.tell(None);
    }
}

struct Tracked {
    inner: Box<dyn RecordSink>,
    progress: Arc<dyn Progress>,
    start: Arc<Start>,
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
        if self.start.told() {
            self.progress.advanced(&self.resource, self.records, self.bytes);
        }
        Ok(())
    }
}

impl Drop for Tracked {
    /// The export is over: its start is told before its end, with or without the count.
    fn drop(&mut self) {
        self.start.tell_at_end();
    }
}
