//! The export context: reading granted tables and emitting records in batches.

use crate::avro::RecordWriter;
use crate::bindings::ferry::plugin::{log, types};
use crate::describe::Describe;
use crate::record::Record;
use crate::rows::Rows;
use crate::{Error, Result, host};

/// Records leave the plugin in batches of about this many bytes (tens of KiB: large
/// enough that the per-call cost vanishes, small enough to stay in cache).
const BATCH_BYTES: usize = 64 * 1024;

/// A half-open range `[start, end)` on an integer column, pushed down to the source.
pub type Range = types::Range;

/// What an export sees: the request, the source, and the record batcher.
pub struct Export<'a> {
    describe: &'a Describe,
    request: types::ExportRequest,
    batch: Vec<u8>,
    batch_records: u32,
    emitted: u64,
}

impl<'a> Export<'a> {
    pub(crate) fn new(describe: &'a Describe, request: types::ExportRequest) -> Self {
        Export { describe, request, batch: Vec::with_capacity(BATCH_BYTES + 4096), batch_records: 0, emitted: 0 }
    }

    /// The snapshot's as-of time, microseconds since the Unix epoch (UTC).
    pub fn as_of(&self) -> i64 {
        self.request.as_of
    }

    /// The window the host resolved for this resource, if any.
    pub fn window(&self) -> Option<&Range> {
        self.request.window.as_ref()
    }

    /// A resource option from the job.
    pub fn option(&self, key: &str) -> Option<&str> {
        self.request.options.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Opens a read of a granted table.
    pub fn read(&self, table: &str, columns: &[&str], range: Option<Range>) -> Result<Rows> {
        let columns: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
        let cursor = host::open(&host::TableRequest { table: table.into(), columns: columns.clone(), range, order_by: None })?;
        Ok(Rows::new(table, columns, cursor, self.key_of(table)))
    }

    /// The column naming a row of `table` in messages: the resource's key on its main table.
    fn key_of(&self, table: &str) -> Option<&str> {
        (table == self.describe.table).then(|| self.describe.key_column()).flatten()
    }

    /// Opens a read of a granted table in the order of `order_by` (a granted column,
    /// ascending), for plugins that merge two tables on a key.
    pub fn read_ordered(&self, table: &str, columns: &[&str], order_by: &str) -> Result<Rows> {
        let columns: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
        let cursor = host::open(&host::TableRequest {
            table: table.into(),
            columns: columns.clone(),
            range: None,
            order_by: Some(order_by.into()),
        })?;
        Ok(Rows::new(table, columns, cursor, self.key_of(table)))
    }

    /// Reports progress: `done` records so far, out of `total` when known.
    pub fn progress(&self, done: u64, total: Option<u64>) {
        host::report(done, total)
    }

    /// Counts the rows a read would return.
    pub fn count(&self, table: &str, columns: &[&str], range: Option<Range>) -> Result<u64> {
        host::count(&host::TableRequest {
            table: table.into(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            range,
            order_by: None,
        })
    }

    /// A new record of this resource, its fields set by name:
    /// `cx.emit(cx.record().set("category", category).set("debits", debits))?`.
    pub fn record<'v>(&self) -> Record<'a, 'v> {
        Record::new(self.describe)
    }

    /// Writes a record built with [`Export::record`]; an unknown or unset field, or a
    /// value that does not fit its field, is an error naming the field.
    pub fn emit(&mut self, record: &Record) -> Result<()> {
        record.encode(&mut self.batch)?;
        self.batch_records += 1;
        if self.batch.len() >= BATCH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes one record by position; `write` must append every field in schema order.
    /// [`Export::record`] and [`Export::emit`] name the fields instead.
    pub fn write_record(&mut self, write: impl FnOnce(&mut RecordWriter) -> Result<()>) -> Result<()> {
        let mark = self.batch.len();
        if let Err(e) = write(&mut RecordWriter { buf: &mut self.batch }) {
            self.batch.truncate(mark);
            return Err(e);
        }
        self.batch_records += 1;
        if self.batch.len() >= BATCH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// The common case: every row of the main table (within the window, if any), each
    /// field its column as it stands. The host does the copying (`records.copy` in
    /// `wit/ferry.wit` lists the conversions): the rows never enter the plugin, so a
    /// column-to-field resource exports at the host's native speed. A value that does
    /// not fit its field fails the export with a message naming the row and column.
    pub fn copy_table(&mut self) -> Result<()> {
        let d = self.describe;
        if let Some(f) = d.fields.iter().find(|f| f.column.is_empty()) {
            return Err(Error::InvalidArgument(format!(
                "field `{}` is computed, so copy_table cannot fill it; build records with Export::record and Export::emit",
                f.name
            )));
        }
        // Records written before stay before the copied ones.
        self.flush()?;
        let request =
            host::TableRequest { table: d.table.clone(), columns: d.columns(), range: self.request.window.clone(), order_by: None };
        let copied = host::copy(&request, d.key_column())?;
        self.emitted += copied;
        host::report(copied, Some(copied));
        Ok(())
    }

    /// Logs a message for the operator.
    pub fn info(&self, message: &str) {
        host::log(log::Level::Info, message)
    }

    pub fn warn(&self, message: &str) {
        host::log(log::Level::Warn, message)
    }

    fn flush(&mut self) -> Result<()> {
        if self.batch_records > 0 {
            host::emit(self.batch_records, &self.batch)?;
            self.emitted += self.batch_records as u64;
            self.batch.clear();
            self.batch_records = 0;
        }
        Ok(())
    }

    pub(crate) fn finish(mut self) -> Result<u64> {
        self.flush()?;
        Ok(self.emitted)
    }
}
