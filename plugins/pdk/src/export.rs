//! The export context: reading granted tables and emitting records in batches.

use crate::avro::RecordWriter;
use crate::bindings::ferry::plugin::{log, progress, records, source, types};
use crate::describe::{Describe, Field, Type};
use crate::copy::{RowFault, Step, TIMESTAMPS, copy_row};
use crate::rows::{Cell, Rows, decode_cell};
use crate::{Error, Result};

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
        let cursor = source::open(&source::TableRequest {
            table: table.into(),
            columns: columns.clone(),
            range,
            order_by: None,
        })
        .map_err(Error::from_wit)?;
        Ok(Rows::new(table, columns, cursor))
    }

    /// Opens a read of a granted table in the order of `order_by` (a granted column,
    /// ascending), for plugins that merge two tables on a key.
    pub fn read_ordered(&self, table: &str, columns: &[&str], order_by: &str) -> Result<Rows> {
        let columns: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
        let cursor = source::open(&source::TableRequest {
            table: table.into(),
            columns: columns.clone(),
            range: None,
            order_by: Some(order_by.into()),
        })
        .map_err(Error::from_wit)?;
        Ok(Rows::new(table, columns, cursor))
    }

    /// Reports progress: `done` records so far, out of `total` when known.
    pub fn progress(&self, done: u64, total: Option<u64>) {
        progress::report(done, total)
    }

    /// Counts the rows a read would return.
    pub fn count(&self, table: &str, columns: &[&str], range: Option<Range>) -> Result<u64> {
        source::count(&source::TableRequest {
            table: table.into(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            range,
            order_by: None,
        })
        .map_err(Error::from_wit)
    }

    /// Writes one record; `write` must append every field in schema order.
    pub fn record(&mut self, write: impl FnOnce(&mut RecordWriter) -> Result<()>) -> Result<()> {
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

    /// The common case: every row of the main table (within the window, if any),
    /// each field converted from its column.
    pub fn copy_table(&mut self) -> Result<()> {
        let d = self.describe;
        if let Some(f) = d.fields.iter().find(|f| f.column.is_empty()) {
            return Err(Error::InvalidArgument(format!(
                "field `{}` is computed, so copy_table cannot fill it; write records with Export::record",
                f.name
            )));
        }
        let columns = d.columns();
        let column_refs: Vec<&str> = columns.iter().map(String::as_str).collect();
        let range = self.request.window.clone();
        // No count first: the host already knows the expected rows for its progress
        // display, and a `count(*)` over a big window costs as much as a third of the copy.
        let mut rows = self.read(&d.table, &column_refs, range)?;
        let key = d.key_column().and_then(|k| columns.iter().position(|c| c == k));
        let steps: Vec<Step> = d.fields.iter().map(Step::of).collect();
        let mut done = 0u64;
        // Rows go from the batch straight into records (see `copy.rs`).
        while let Some(batch) = rows.next_batch()? {
            let data = &batch.data[..];
            let mut pos = 0;
            for _ in 0..batch.rows {
                let mark = self.batch.len();
                match copy_row(&steps, &d.fields, columns.len(), data, pos, &mut self.batch) {
                    Ok(next) => pos = next,
                    Err(fault) => {
                        self.batch.truncate(mark);
                        return Err(match fault {
                            RowFault::Corrupt => rows.corrupt("a cell is cut short"),
                            RowFault::Misfit { field, why } => {
                                let at = match key.and_then(|k| cell_at(data, pos, k)) {
                                    Some(Cell::Text(t)) => format!(" row {t:?}"),
                                    Some(Cell::Integer(n)) => format!(" row {n}"),
                                    _ => String::new(),
                                };
                                let field = &d.fields[field];
                                Error::bad_data(format!(
                                    "table `{}`{at} column `{}`: {why} (field `{}`)",
                                    d.table, field.column, field.name
                                ))
                            }
                        });
                    }
                }
                self.batch_records += 1;
                if self.batch.len() >= BATCH_BYTES {
                    self.flush()?;
                }
                done += 1;
                if done % 50_000 == 0 {
                    progress::report(done, None);
                }
            }
            if pos != data.len() {
                return Err(rows.corrupt("bytes left over after the batch's last row"));
            }
        }
        progress::report(done, Some(done));
        Ok(())
    }

    /// Logs a message for the operator.
    pub fn info(&self, message: &str) {
        log::log(log::Level::Info, message)
    }

    pub fn warn(&self, message: &str) {
        log::log(log::Level::Warn, message)
    }

    fn flush(&mut self) -> Result<()> {
        if self.batch_records > 0 {
            records::emit(self.batch_records, &self.batch).map_err(Error::from_wit)?;
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

/// The `k`th cell of the row at `data[pos..]`, if the row holds one.
fn cell_at(data: &[u8], mut pos: usize, k: usize) -> Option<Cell<'_>> {
    for _ in 0..k {
        pos = decode_cell(data, pos)?.1;
    }
    decode_cell(data, pos).map(|(cell, _)| cell)
}

/// Converts one source value into a field, or says why it does not fit.
pub(crate) fn write_field(w: &mut RecordWriter, field: &Field, cell: Cell) -> core::result::Result<(), String> {
    if field.nullable {
        if cell == Cell::Null {
            w.null();
            return Ok(());
        }
        w.some();
    }
    let misfit = || format!("{} does not fit {}", cell.describe(), type_name(field.ty));
    match (field.ty, cell) {
        (_, Cell::Null) => return Err("NULL but the field is not nullable".into()),
        (Type::String, Cell::Text(t)) => w.string(t),
        // Years 1 to 9999, the range every reader decodes (the host checks it too, but
        // only the kit can name the row).
        (Type::TimestampMicros, Cell::Integer(n)) if !TIMESTAMPS.contains(&n) => {
            return Err(format!("integer {n} is not a timestamp between years 1 and 9999 (microseconds since 1970)"));
        }
        (Type::Long | Type::TimestampMicros, Cell::Integer(n)) => w.long(n),
        (Type::Int, Cell::Integer(n)) => w.int(i32::try_from(n).map_err(|_| misfit())?),
        (Type::Boolean, Cell::Integer(n @ (0 | 1))) => w.boolean(n == 1),
        (Type::Double, Cell::Real(r)) => w.double(r),
        (Type::Double, Cell::Integer(n)) => w.double(n as f64),
        (Type::Decimal { precision, scale }, Cell::Text(t)) => {
            w.decimal(parse_decimal(t, precision, scale).ok_or_else(misfit)?)
        }
        (Type::Decimal { precision, scale }, Cell::Integer(n)) => {
            w.decimal(scale_decimal(n as i128, 0, precision, scale).ok_or_else(misfit)?)
        }
        _ => return Err(misfit()),
    }
    Ok(())
}

fn type_name(ty: Type) -> String {
    match ty {
        Type::String => "string".into(),
        Type::Long => "long".into(),
        Type::Int => "int (32-bit)".into(),
        Type::Boolean => "boolean (0 or 1)".into(),
        Type::Double => "double".into(),
        Type::TimestampMicros => "timestamp (integer microseconds)".into(),
        Type::Decimal { precision, scale } => format!("decimal({precision},{scale})"),
    }
}

/// Parses `-123.45` exactly into its unscaled value at `scale`; `None` when it is not a
/// plain decimal, has more fractional digits than `scale`, or more digits than `precision`.
pub(crate) fn parse_decimal(text: &str, precision: u8, scale: u8) -> Option<i128> {
    if let Some(v) = crate::copy::parse_decimal_small(text.as_bytes(), precision, scale) {
        return Some(v as i128);
    }
    parse_decimal_wide(text, precision, scale)
}

/// `parse_decimal` in 128-bit arithmetic, for any precision.
pub(crate) fn parse_decimal_wide(text: &str, precision: u8, scale: u8) -> Option<i128> {
    let (neg, body) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) || frac.len() > scale as usize {
        return None;
    }
    let mut v: i128 = 0;
    for b in int.bytes().chain(frac.bytes()) {
        v = v.checked_mul(10)?.checked_add((b - b'0') as i128)?;
    }
    let v = scale_decimal(v, frac.len() as u8, precision, scale)?;
    Some(if neg { -v } else { v })
}

pub(crate) fn scale_decimal(v: i128, from_scale: u8, precision: u8, scale: u8) -> Option<i128> {
    let v = v.checked_mul(10i128.checked_pow((scale - from_scale) as u32)?)?;
    let limit = 10i128.checked_pow(precision as u32)?;
    (v.abs() < limit).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::parse_decimal;

    #[test]
    fn decimals_are_exact() {
        assert_eq!(parse_decimal("12.3", 14, 2), Some(1230));
        assert_eq!(parse_decimal("-0.05", 14, 2), Some(-5));
        assert_eq!(parse_decimal("99999999999999.99", 16, 2), Some(9999999999999999));
        assert_eq!(parse_decimal("1.234", 14, 2), None);
        assert_eq!(parse_decimal("1e3", 14, 2), None);
        assert_eq!(parse_decimal("100", 3, 1), None);
        assert_eq!(parse_decimal(".", 3, 1), None);
    }
}
