//! The host side of each WIT interface a plugin imports.
//!
//! Everything a plugin sends is checked here: reads against its grants, record batches
//! against its schema and size limit, logs against a byte budget.

use std::time::Instant;

use wasmtime::component::Resource;

use super::bindings::ferry::plugin::{log, progress, records, source, types};
use super::bindings::{Error, Range};
use super::state::{Cursor, Fault, HostState};
use crate::records::{CopyPlan, validate_batch};

/// Records copied by the host (`records.copy`) reach the output in batches of about this size.
const COPY_BATCH_BYTES: usize = 64 * 1024;
use crate::source::{self as src, TableQuery};

impl types::Host for HostState {}

impl HostState {
    fn denied(&self, what: String) -> Error {
        Error::Denied(format!("{what}; plugin `{}` may read only what its describe() declares (add it there)", self.resource))
    }

    /// Checks a request against the grants and the source's real columns.
    fn check_request(&self, req: &source::TableRequest) -> Result<(), Error> {
        let Some(granted) = self.grants.get(&req.table) else {
            return Err(self.denied(format!("table `{}` was not declared", req.table)));
        };
        if req.columns.is_empty() {
            return Err(Error::InvalidArgument(format!("read of `{}` names no columns", req.table)));
        }
        let extra = req.range.iter().map(|r| &r.column).chain(req.order_by.iter());
        for col in req.columns.iter().chain(extra) {
            if !granted.contains(col) {
                return Err(self.denied(format!("column `{}.{col}` was not declared", req.table)));
            }
        }
        if let Some(Range { start: Some(s), end: Some(e), .. }) = &req.range
            && s > e
        {
            return Err(Error::InvalidArgument(format!("range on `{}` starts at {s}, after its end {e}", req.table)));
        }
        Ok(())
    }
}

impl HostState {
    /// The source query for a request: reads of the main table get the as-of cut on its
    /// creation column, whatever the plugin asked.
    fn query<'a>(&'a self, req: &'a source::TableRequest) -> TableQuery<'a> {
        let main = self.main.as_ref().filter(|m| m.table == req.table);
        let created_before =
            main.and_then(|m| m.created_before.as_ref()).map(|(column, as_of)| src::Range { column, start: None, end: Some(*as_of) });
        let shard = main.and_then(|m| m.slice.as_ref()).map(|(column, start, end)| src::Range { column, start: *start, end: *end });
        TableQuery {
            shard,
            table: &req.table,
            columns: &req.columns,
            range: req.range.as_ref().map(|r| src::Range { column: &r.column, start: r.start, end: r.end }),
            order_by: req.order_by.as_deref(),
            created_before,
        }
    }

    /// `records.copy` (0.2.0) fills fields by name: the read's columns in field order
    /// (each field's declared column), then the request's other columns.
    fn copy_columns(&self, req: &source::TableRequest) -> Result<Vec<String>, Error> {
        let Some(main) = &self.main else { return Ok(req.columns.clone()) };
        let Some(copied) = &main.copied else { return Ok(req.columns.clone()) };
        if req.table != main.table {
            return Err(Error::InvalidArgument(format!(
                "`copy` reads the main table `{}`, not `{}`; emit the records of other tables",
                main.table, req.table
            )));
        }
        let schema = self.schema.as_deref().map(|s| s.fields.as_slice()).unwrap_or_default();
        let mut columns = Vec::with_capacity(req.columns.len());
        for (field, _) in schema {
            let Some(c) = copied.iter().find(|c| &c.field == field) else {
                return Err(Error::InvalidArgument(format!(
                    "field `{field}` is not among describe()'s copied fields, so `copy` cannot fill it; emit these records"
                )));
            };
            if !req.columns.contains(&c.column) {
                return Err(Error::InvalidArgument(format!(
                    "field `{field}` is copied from column `{}`, which the read does not name",
                    c.column
                )));
            }
            columns.push(c.column.clone());
        }
        columns.extend(req.columns.iter().filter(|c| !columns.contains(c)).cloned().collect::<Vec<_>>());
        Ok(columns)
    }
}

fn source_error(e: src::SourceError) -> Error {
    match e {
        src::SourceError::BadIdentifier { .. } => Error::InvalidArgument(e.to_string()),
        src::SourceError::Misfit(message) => Error::BadData(message),
        other => Error::Other(other.to_string()),
    }
}

impl HostState {
    /// Once refused, always refused: a plugin cannot talk its way past a bad batch.
    fn refused(&self) -> Option<Error> {
        self.fault.as_ref().map(|fault| Error::BadData(format!("an earlier batch was refused ({fault:?}); the export has failed")))
    }

    /// `describe` may only declare: reading or emitting then stops the plugin.
    pub(super) fn outside_export(&mut self, what: &str) -> wasmtime::Result<()> {
        if self.schema.is_some() {
            return Ok(());
        }
        self.fault = Some(Fault::Contract(format!("it {what} from describe(), which may only declare the resource")));
        Err(wasmtime::format_err!("{what} outside export"))
    }
}

impl source::Host for HostState {
    fn open(&mut self, req: source::TableRequest) -> wasmtime::Result<Result<Resource<Cursor>, Error>> {
        self.outside_export(&format!("opened a read of `{}`", req.table))?;
        if let Err(e) = self.check_request(&req) {
            return Ok(Err(e));
        }
        if self.open_cursors >= self.limits.open_cursors {
            return Ok(Err(Error::LimitExceeded(format!("{} reads are already open; drop one before opening another", self.open_cursors))));
        }
        let started = Instant::now();
        let opened = self.source.open(&self.query(&req));
        self.timings.source += started.elapsed();
        let stream = match opened {
            Ok(s) => s,
            Err(e) => return Ok(Err(source_error(e))),
        };
        self.open_cursors += 1;
        Ok(Ok(self.table.push(Cursor { table: req.table, stream })?))
    }

    fn count(&mut self, req: source::TableRequest) -> wasmtime::Result<Result<u64, Error>> {
        self.outside_export(&format!("counted rows of `{}`", req.table))?;
        if let Err(e) = self.check_request(&req) {
            return Ok(Err(e));
        }
        let started = Instant::now();
        let counted = self.source.count(&self.query(&req));
        self.timings.source += started.elapsed();
        Ok(counted.map_err(source_error))
    }
}

impl source::HostCursor for HostState {
    fn next(&mut self, cursor: Resource<Cursor>) -> wasmtime::Result<Result<Option<source::RowBatch>, Error>> {
        let cursor = self.table.get_mut(&cursor)?;
        let started = Instant::now();
        let next = cursor.stream.next_batch();
        self.timings.source += started.elapsed();
        Ok(match next {
            Ok(Some(b)) => Ok(Some(source::RowBatch { rows: b.rows, data: b.data })),
            Ok(None) => Ok(None),
            Err(e) => Err(Error::Other(format!("reading `{}`: {e}", cursor.table))),
        })
    }

    fn drop(&mut self, cursor: Resource<Cursor>) -> wasmtime::Result<()> {
        self.table.delete(cursor)?;
        self.open_cursors -= 1;
        Ok(())
    }
}

impl records::Host for HostState {
    fn emit(&mut self, count: u32, data: Vec<u8>) -> wasmtime::Result<Result<(), Error>> {
        if let Some(refused) = self.refused() {
            return Ok(Err(refused));
        }
        self.outside_export("emitted records")?;
        let (Some(schema), Some(_)) = (&self.schema, &self.sink) else {
            return Ok(Err(Error::Other("records can be emitted only during export".into())));
        };
        if data.len() > self.limits.batch_bytes {
            self.fault = Some(Fault::BatchTooLarge { bytes: data.len(), limit: self.limits.batch_bytes });
            return Ok(Err(Error::LimitExceeded(format!(
                "a batch of {} bytes is over the limit of {} bytes; emit smaller batches",
                data.len(),
                self.limits.batch_bytes
            ))));
        }
        let started = Instant::now();
        let validated = validate_batch(schema, count, &data);
        self.timings.validate += started.elapsed();
        let ends = match validated {
            Ok(ends) => ends,
            Err(e) => {
                let message = format!("{e}");
                self.fault = Some(Fault::BadBatch(e));
                return Ok(Err(Error::BadData(message)));
            }
        };
        self.write_records(count, data, ends)?;
        Ok(Ok(()))
    }

    fn copy(&mut self, request: source::TableRequest, key: Option<String>) -> wasmtime::Result<Result<u64, Error>> {
        self.copy_records(request, key)
    }
}

impl HostState {
    /// `records.copy`: reads rows and writes them as records without the plugin seeing
    /// them (see `records::CopyPlan`). Trusted output, so no validation.
    fn copy_records(&mut self, req: source::TableRequest, key: Option<String>) -> wasmtime::Result<Result<u64, Error>> {
        if let Some(refused) = self.refused() {
            return Ok(Err(refused));
        }
        self.outside_export(&format!("copied records of `{}`", req.table))?;
        if let Err(e) = self.check_request(&req) {
            return Ok(Err(e));
        }
        let Some(schema) = self.schema.clone() else {
            return Ok(Err(Error::Other("records can be copied only during export".into())));
        };
        let req = match self.copy_columns(&req) {
            Ok(columns) => source::TableRequest { columns, ..req },
            Err(e) => return Ok(Err(e)),
        };
        let plan = match CopyPlan::new(&schema, &req.table, &req.columns, key.as_deref()) {
            Ok(plan) => plan,
            Err(e) => return Ok(Err(Error::InvalidArgument(e.to_string()))),
        };
        let started = Instant::now();
        let opened = self.source.open_records(&self.query(&req), plan.encoder(COPY_BATCH_BYTES));
        self.timings.source += started.elapsed();
        let mut stream = match opened {
            Ok(s) => s,
            Err(e) => return Ok(Err(source_error(e))),
        };
        let mut copied = 0u64;
        let mut reported = 0u64;
        loop {
            // One host call can be the whole export, and epoch interruption only stops
            // wasm code: the time limit is checked here, per batch.
            if self.started.elapsed() > self.limits.time {
                self.fault = Some(Fault::TimeLimit);
                return Err(wasmtime::format_err!("time limit reached while copying `{}`", req.table));
            }
            let started = Instant::now();
            let next = stream.next_records();
            self.timings.source += started.elapsed();
            let batch = match next {
                Ok(Some(b)) => b,
                Ok(None) => break,
                Err(e) => return Ok(Err(source_error(e))),
            };
            debug_assert_eq!(validate_batch(&schema, batch.count, &batch.data).as_ref(), Ok(&batch.ends));
            let count = batch.count;
            self.write_records(count, batch.data, batch.ends)?;
            copied += count as u64;
            if copied - reported >= 50_000 {
                self.events.progress(&self.resource, copied, None);
                reported = copied;
            }
        }
        Ok(Ok(copied))
    }

    /// Hands checked records to the sink. A broken output (disk full, say) is not the
    /// plugin's fault: it is stopped with a trap and the host's error reported.
    fn write_records(&mut self, count: u32, data: Vec<u8>, ends: Vec<u32>) -> wasmtime::Result<()> {
        let Some(sink) = &mut self.sink else { return Err(wasmtime::format_err!("no sink outside export")) };
        let started = Instant::now();
        let written = sink.write(count, data, ends);
        self.timings.output_wait += started.elapsed();
        if let Err(e) = written {
            self.fault = Some(Fault::Sink(e.to_string()));
            return Err(wasmtime::format_err!("output failed: {e}"));
        }
        self.records += count as u64;
        Ok(())
    }
}

impl log::Host for HostState {
    fn log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        const LINE: usize = 4096;
        if self.log_used >= self.limits.log_bytes {
            self.log_dropped += 1;
            return Ok(());
        }
        let mut message = message;
        if message.len() > LINE {
            message.truncate(message.floor_char_boundary(LINE));
            message.push_str("...");
        }
        self.log_used += message.len();
        let level = match level {
            log::Level::Debug => super::Level::Debug,
            log::Level::Info => super::Level::Info,
            log::Level::Warn => super::Level::Warn,
            log::Level::Error => super::Level::Error,
        };
        self.events.log(&self.resource, level, &message);
        Ok(())
    }
}

impl progress::Host for HostState {
    fn report(&mut self, done: u64, total: Option<u64>) -> wasmtime::Result<()> {
        self.events.progress(&self.resource, done, total);
        Ok(())
    }
}
