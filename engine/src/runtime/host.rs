//! The host side of each WIT interface a plugin imports.
//!
//! Everything a plugin sends is checked here: reads against its grants, record batches
//! against its schema and size limit, logs against a byte budget.

use wasmtime::component::Resource;

use super::bindings::ferry::plugin::{log, progress, records, source, types};
use super::bindings::{Error, Range};
use super::state::{Cursor, Fault, HostState};
use crate::records::validate_batch;
use crate::source::{self as src, TableQuery};

impl types::Host for HostState {}

impl HostState {
    fn denied(&self, what: String) -> Error {
        Error::Denied(format!(
            "{what}; plugin `{}` may read only what its describe() declares (add it there)",
            self.resource
        ))
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

fn query(req: &source::TableRequest) -> TableQuery<'_> {
    TableQuery {
        table: &req.table,
        columns: &req.columns,
        range: req.range.as_ref().map(|r| src::Range { column: &r.column, start: r.start, end: r.end }),
        order_by: req.order_by.as_deref(),
    }
}

fn source_error(e: src::SourceError) -> Error {
    match e {
        src::SourceError::BadIdentifier { .. } => Error::InvalidArgument(e.to_string()),
        other => Error::Other(other.to_string()),
    }
}

impl HostState {
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
            return Ok(Err(Error::LimitExceeded(format!(
                "{} reads are already open; drop one before opening another",
                self.open_cursors
            ))));
        }
        let started = std::time::Instant::now();
        let opened = self.source.open(&query(&req));
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
        let started = std::time::Instant::now();
        let counted = self.source.count(&query(&req));
        self.timings.source += started.elapsed();
        Ok(counted.map_err(source_error))
    }
}

impl source::HostCursor for HostState {
    fn next(&mut self, cursor: Resource<Cursor>) -> wasmtime::Result<Result<Option<source::RowBatch>, Error>> {
        let cursor = self.table.get_mut(&cursor)?;
        let started = std::time::Instant::now();
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
        // Once refused, always refused: a plugin cannot talk its way past a bad batch.
        if let Some(fault) = &self.fault {
            return Ok(Err(Error::BadData(format!("an earlier batch was refused ({fault:?}); the export has failed"))));
        }
        self.outside_export("emitted records")?;
        let (Some(schema), Some(sink)) = (&self.schema, &mut self.sink) else {
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
        let started = std::time::Instant::now();
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
        let started = std::time::Instant::now();
        let written = sink.write(count, data, ends);
        self.timings.output_wait += started.elapsed();
        if let Err(e) = written {
            // The output is broken (disk full, say): not the plugin's fault, so stop it
            // with a trap and report the host's error.
            self.fault = Some(Fault::Sink(e.to_string()));
            return Err(wasmtime::format_err!("output failed: {e}"));
        }
        self.records += count as u64;
        Ok(Ok(()))
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
