//! A native mock host (feature `mock`): run a plugin's `export` in `cargo test`, without
//! wasm or the engine, against tables written in the test.
//!
//! ```ignore
//! use ferry_pdk::mock::{MockHost, row};
//!
//! let out = MockHost::new()
//!     .table("transactions", &["category", "type", "amount"], [row!["food", "DEBIT", "12.30"]])
//!     .export::<CategoryTotals>()
//!     .unwrap();
//! assert_eq!(out.records[0]["debits"].to_string(), "12.30");
//! ```
//!
//! It keeps the host's rules a plugin can trip on: reads of tables or columns not
//! declared in `describe` are `denied`; ranges and orderings are pushed down; rows come
//! in small batches (so batch edges are crossed); `copy_table` converts each column
//! into its field by the `records.copy` table of `wit/ferry.wit`, and every emitted
//! record is decoded against the schema, so a record that does not fit fails the test
//! with the host's kind of message. Blobs are checked for presence and size; their
//! sha256 is taken as declared, not recomputed.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::fmt;

use ferry_wire::avro::{NULL_BRANCH, VALUE_BRANCH, read_bytes};
use ferry_wire::cell::encode;
use ferry_wire::{decimal, varint};

use crate::bindings::ferry::plugin::blobs::{AttachmentVersion, Stored};
use crate::bindings::ferry::plugin::log::Level;
use crate::bindings::ferry::plugin::source::RowBatch;
use crate::bindings::ferry::plugin::types::{ExportRequest, ResourceInfo};
use crate::describe::{Field, Type};
use crate::host::TableRequest;
use crate::{Cell, Decimal, Error, Range, Resource, Result};

/// Rows per batch the mock hands out: small, so a plugin crosses batch edges in tests.
const ROWS_PER_BATCH: usize = 3;

/// A source value in a mock table; `From` covers text, integers, reals, booleans (0/1),
/// blobs and `Option`s of them (`None` is NULL).
#[derive(Debug, Clone, PartialEq, PartialOrd)]
pub enum Datum {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl Datum {
    fn cell(&self) -> Cell<'_> {
        match self {
            Datum::Null => Cell::Null,
            Datum::Integer(n) => Cell::Integer(*n),
            Datum::Real(r) => Cell::Real(*r),
            Datum::Text(t) => Cell::Text(t),
            Datum::Blob(b) => Cell::Blob(b),
        }
    }
}

impl From<&str> for Datum {
    fn from(v: &str) -> Self {
        Datum::Text(v.into())
    }
}
impl From<String> for Datum {
    fn from(v: String) -> Self {
        Datum::Text(v)
    }
}
impl From<i64> for Datum {
    fn from(v: i64) -> Self {
        Datum::Integer(v)
    }
}
impl From<i32> for Datum {
    fn from(v: i32) -> Self {
        Datum::Integer(v.into())
    }
}
impl From<f64> for Datum {
    fn from(v: f64) -> Self {
        Datum::Real(v)
    }
}
impl From<bool> for Datum {
    fn from(v: bool) -> Self {
        Datum::Integer(v.into())
    }
}
impl From<Vec<u8>> for Datum {
    fn from(v: Vec<u8>) -> Self {
        Datum::Blob(v)
    }
}
impl<T: Into<Datum>> From<Option<T>> for Datum {
    fn from(v: Option<T>) -> Self {
        v.map_or(Datum::Null, Into::into)
    }
}

/// A row of a mock table: `row!["a1", 12, None::<&str>, "12.30"]`.
#[macro_export]
macro_rules! row {
    ($($v:expr),* $(,)?) => { vec![$($crate::mock::Datum::from($v)),*] };
}
pub use crate::row;

/// A record field's value as the mock host decoded it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Long(i64),
    Int(i32),
    Boolean(bool),
    Double(f64),
    String(String),
    /// Microseconds since the Unix epoch, UTC.
    Timestamp(i64),
    Decimal(Decimal),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Long(n) | Value::Timestamp(n) => write!(f, "{n}"),
            Value::Int(n) => write!(f, "{n}"),
            Value::Boolean(b) => write!(f, "{b}"),
            Value::Double(r) => write!(f, "{r}"),
            Value::String(s) => f.write_str(s),
            Value::Decimal(d) => write!(f, "{d}"),
        }
    }
}

/// One record, its fields in schema order; `record["name"]` panics on an unknown name.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub fields: Vec<(String, Value)>,
}

impl Record {
    pub fn get(&self, field: &str) -> Option<&Value> {
        self.fields.iter().find(|(n, _)| n == field).map(|(_, v)| v)
    }
}

impl std::ops::Index<&str> for Record {
    type Output = Value;

    fn index(&self, field: &str) -> &Value {
        self.get(field).unwrap_or_else(|| panic!("the record has no field `{field}`; it has: {:?}", self.fields))
    }
}

/// What an export did.
#[derive(Debug, Clone, Default)]
pub struct Output {
    pub records: Vec<Record>,
    /// Log lines, `info: ...` / `warn: ...`.
    pub logs: Vec<String>,
    /// The last progress report: done, total.
    pub progress: Option<(u64, Option<u64>)>,
    /// Files written beside the records (blobs and version lists): path, bytes.
    pub files: Vec<(String, Vec<u8>)>,
}

#[derive(Debug, Clone)]
struct Table {
    columns: Vec<String>,
    rows: Vec<Vec<Datum>>,
}

/// The source tables, blobs and request of one mock export.
#[derive(Debug, Clone, Default)]
pub struct MockHost {
    tables: BTreeMap<String, Table>,
    blobs: BTreeMap<String, Vec<u8>>,
    as_of: i64,
    window: Option<Range>,
    options: Vec<(String, String)>,
}

impl MockHost {
    pub fn new() -> Self {
        MockHost { as_of: i64::MAX, ..Default::default() }
    }

    /// A source table: its columns and rows (`row![...]`, one value per column).
    pub fn table(mut self, name: &str, columns: &[&str], rows: impl IntoIterator<Item = Vec<Datum>>) -> Self {
        let rows: Vec<Vec<Datum>> = rows.into_iter().collect();
        for (i, r) in rows.iter().enumerate() {
            assert_eq!(r.len(), columns.len(), "mock table `{name}` row {}: {} values for {} columns", i + 1, r.len(), columns.len());
        }
        self.tables.insert(name.into(), Table { columns: columns.iter().map(|c| c.to_string()).collect(), rows });
        self
    }

    /// A blob in the store, by key.
    pub fn blob(mut self, key: &str, bytes: &[u8]) -> Self {
        self.blobs.insert(key.into(), bytes.into());
        self
    }

    /// The window the host resolved: `[start, end)` on `column`.
    pub fn window(mut self, column: &str, start: Option<i64>, end: Option<i64>) -> Self {
        self.window = Some(Range { column: column.into(), start, end });
        self
    }

    /// A resource option from the job.
    pub fn option(mut self, key: &str, value: &str) -> Self {
        self.options.push((key.into(), value.into()));
        self
    }

    /// The snapshot's as-of time (microseconds).
    pub fn as_of(mut self, micros: i64) -> Self {
        self.as_of = micros;
        self
    }

    /// Runs `R`'s export against this host. Errors are the plugin's, or the host's
    /// refusal of a read or a record, as the real host would fail the export.
    pub fn export<R: Resource>(&self) -> Result<Output> {
        let info = R::describe().to_wit();
        let request = ExportRequest { as_of: self.as_of, window: self.window.clone(), options: self.options.clone() };
        let fields = R::describe().fields().to_vec();
        HOST.with_borrow_mut(|h| *h = Some(State { host: self.clone(), info, fields, out: Output::default() }));
        // Uninstalled whatever happens, so a failed test leaves no host behind.
        struct Uninstall;
        impl Drop for Uninstall {
            fn drop(&mut self) {
                HOST.with_borrow_mut(|h| *h = None);
            }
        }
        let _guard = Uninstall;
        let result = crate::run::<R>(request);
        let state = HOST.with_borrow_mut(|h| h.take()).expect("the mock host is installed during the export");
        let emitted = result?;
        if emitted != state.out.records.len() as u64 {
            return Err(Error::other(format!("the export reported {emitted} records but the host received {}", state.out.records.len())));
        }
        Ok(state.out)
    }
}

thread_local! {
    static HOST: RefCell<Option<State>> = const { RefCell::new(None) };
}

/// Runs `f` on the installed mock host, if a test installed one on this thread.
pub(crate) fn with<R>(f: impl FnOnce(&mut State) -> R) -> Option<R> {
    HOST.with_borrow_mut(|h| h.as_mut().map(f))
}

pub(crate) struct State {
    host: MockHost,
    info: ResourceInfo,
    fields: Vec<Field>,
    out: Output,
}

impl State {
    /// The rows a request reads, checked against the grants, ranged and ordered.
    fn rows(&self, request: &TableRequest) -> Result<(Vec<usize>, Vec<&Vec<Datum>>)> {
        let t = &request.table;
        // A table may be granted twice (as the main table and by `.reads`): the union.
        let granted: Vec<&String> = self.info.tables.iter().filter(|g| &g.table == t).flat_map(|g| &g.columns).collect();
        if !self.info.tables.iter().any(|g| &g.table == t) {
            return Err(Error::Denied(format!("table `{t}` was not declared; declare it in describe (`.table` or `.reads`)")));
        }
        let mut wanted: Vec<&String> = request.columns.iter().collect();
        wanted.extend(request.range.as_ref().map(|r| &r.column));
        wanted.extend(request.order_by.as_ref());
        if let Some(c) = wanted.iter().find(|c| !granted.contains(c)) {
            return Err(Error::Denied(format!("column `{c}` of table `{t}` was not declared; add it to the table's columns in describe")));
        }
        if request.columns.is_empty() {
            return Err(Error::InvalidArgument(format!("a read of table `{t}` names no columns")));
        }
        let table = self
            .host
            .tables
            .get(t)
            .ok_or_else(|| Error::NotFound(format!("table `{t}` is not in the mock source; add it with MockHost::table")))?;
        let index = |c: &String| {
            table
                .columns
                .iter()
                .position(|x| x == c)
                .ok_or_else(|| Error::NotFound(format!("column `{c}` of table `{t}` is not in the mock source")))
        };
        let columns = request.columns.iter().map(index).collect::<Result<Vec<_>>>()?;
        let mut rows: Vec<&Vec<Datum>> = table.rows.iter().collect();
        if let Some(r) = &request.range {
            let i = index(&r.column)?;
            rows.retain(|row| match row[i] {
                Datum::Integer(n) => r.start.is_none_or(|s| n >= s) && r.end.is_none_or(|e| n < e),
                _ => false,
            });
        }
        // The host leaves out main-table rows created at or after the as-of time.
        if let Some(c) = self.info.created_column.as_ref().filter(|_| *t == self.info.main_table) {
            let i = index(c)?;
            rows.retain(|row| matches!(row[i], Datum::Integer(n) if n < self.host.as_of));
        }
        if let Some(o) = &request.order_by {
            let i = index(o)?;
            rows.sort_by(|a, b| a[i].partial_cmp(&b[i]).unwrap_or(std::cmp::Ordering::Equal));
        }
        Ok((columns, rows))
    }

    pub(crate) fn open(&mut self, request: &TableRequest) -> Result<VecDeque<RowBatch>> {
        let (columns, rows) = self.rows(request)?;
        Ok(rows
            .chunks(ROWS_PER_BATCH)
            .map(|chunk| {
                let mut data = Vec::new();
                for row in chunk {
                    for &i in &columns {
                        encode(&mut data, row[i].cell());
                    }
                }
                RowBatch { rows: chunk.len() as u32, data }
            })
            .collect())
    }

    pub(crate) fn count(&mut self, request: &TableRequest) -> Result<u64> {
        Ok(self.rows(request)?.1.len() as u64)
    }

    pub(crate) fn emit(&mut self, count: u32, data: &[u8]) -> Result<()> {
        let mut pos = 0;
        for n in 0..count {
            let record = self.out.records.len() + 1;
            let mut fields = Vec::with_capacity(self.fields.len());
            for f in &self.fields {
                let (v, next) = decode_field(data, pos, f).ok_or_else(|| {
                    Error::bad_data(format!(
                        "record {record} (of {count} in the batch, #{n}): field `{}` is not a valid {}",
                        f.name,
                        f.type_name()
                    ))
                })?;
                fields.push((f.name.clone(), v));
                pos = next;
            }
            self.out.records.push(Record { fields });
        }
        if pos != data.len() {
            return Err(Error::bad_data(format!("the batch has {} bytes after its {count} records", data.len() - pos)));
        }
        Ok(())
    }

    pub(crate) fn copy(&mut self, request: &TableRequest, key: Option<&str>) -> Result<u64> {
        let t = &request.table;
        if *t != self.info.main_table {
            return Err(Error::InvalidArgument(format!("copy reads the main table `{}`, not `{t}`", self.info.main_table)));
        }
        let mut sources = Vec::new();
        for f in &self.fields {
            let column = self
                .info
                .copied
                .iter()
                .find(|c| c.field == f.name)
                .map(|c| &c.column)
                .ok_or_else(|| Error::InvalidArgument(format!("field `{}` is not copied from a column; emit those records", f.name)))?;
            let i = request
                .columns
                .iter()
                .position(|c| c == column)
                .ok_or_else(|| Error::InvalidArgument(format!("column `{column}` of field `{}` is not in the request", f.name)))?;
            sources.push(i);
        }
        let key = key.and_then(|k| request.columns.iter().position(|c| c == k));
        let (columns, rows) = self.rows(request)?;
        let mut records = Vec::with_capacity(rows.len());
        for (n, row) in rows.iter().enumerate() {
            let mut fields = Vec::with_capacity(self.fields.len());
            for (f, &i) in self.fields.iter().zip(&sources) {
                let cell = row[columns[i]].cell();
                let v = copy_cell(cell, f).ok_or_else(|| {
                    let which = match key.map(|k| (&request.columns[k], row[columns[k]].cell())) {
                        Some((c, Cell::Text(v))) => format!("row {c} {v:?}"),
                        Some((c, Cell::Integer(v))) => format!("row {c} {v}"),
                        _ => format!("row {}", n + 1),
                    };
                    Error::bad_data(format!(
                        "table `{t}`, {which}, column `{}`: {} does not fit field `{}` ({})",
                        request.columns[i],
                        cell.describe(),
                        f.name,
                        f.type_name()
                    ))
                })?;
                fields.push((f.name.clone(), v));
            }
            records.push(Record { fields });
        }
        let copied = records.len() as u64;
        self.out.records.extend(records);
        Ok(copied)
    }

    pub(crate) fn progress(&mut self, done: u64, total: Option<u64>) {
        self.out.progress = Some((done, total));
    }

    pub(crate) fn log(&mut self, level: Level, message: &str) {
        let level = match level {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        self.out.logs.push(format!("{level}: {message}"));
    }

    pub(crate) fn blob_copy(&mut self, v: &AttachmentVersion) -> Result<Stored> {
        let bytes =
            self.host.blobs.get(&v.blob_key).ok_or_else(|| {
                Error::NotFound(format!("attachment {} version {}: blob `{}` is not in the store", v.uid, v.sid, v.blob_key))
            })?;
        if bytes.len() as u64 != v.size {
            return Err(Error::bad_data(format!(
                "attachment {} version {}: blob `{}` has {} bytes, the version says {}",
                v.uid,
                v.sid,
                v.blob_key,
                bytes.len(),
                v.size
            )));
        }
        let path = format!("{}/{}_{}/{}_{}", self.info.name, v.uid, v.file_name, v.sid, v.version);
        self.out.files.push((path.clone(), bytes.clone()));
        Ok(Stored { path, size: v.size, sha256: v.sha256.clone() })
    }

    pub(crate) fn write_versions(&mut self, uid: &str, file_name: &str, json: &[u8]) -> Result<Stored> {
        let path = format!("{}/versions/{uid}_{file_name}.json", self.info.name);
        self.out.files.push((path.clone(), json.into()));
        Ok(Stored { path, size: json.len() as u64, sha256: String::from("(not computed by the mock host)") })
    }
}

/// A source cell as a field's value, by the `records.copy` rules; `None` if it does not fit.
fn copy_cell(cell: Cell, f: &Field) -> Option<Value> {
    if cell == Cell::Null {
        return f.nullable.then_some(Value::Null);
    }
    Some(match (f.ty, cell) {
        (Type::String, Cell::Text(t)) => Value::String(t.into()),
        (Type::Long, Cell::Integer(n)) => Value::Long(n),
        (Type::Int, Cell::Integer(n)) => Value::Int(i32::try_from(n).ok()?),
        (Type::Boolean, Cell::Integer(n @ (0 | 1))) => Value::Boolean(n == 1),
        (Type::Double, Cell::Real(r)) => Value::Double(r),
        (Type::Double, Cell::Integer(n)) => Value::Double(n as f64),
        (Type::TimestampMicros, Cell::Integer(n)) => Value::Timestamp(n),
        (Type::Decimal { precision, scale }, c @ (Cell::Text(_) | Cell::Integer(_))) => {
            Value::Decimal(Decimal::new(c.decimal(precision, scale)?, scale)?)
        }
        _ => return None,
    })
}

/// One field of an emitted record, checked against its type.
fn decode_field(data: &[u8], pos: usize, f: &Field) -> Option<(Value, usize)> {
    let mut pos = pos;
    if f.nullable {
        match *data.get(pos)? {
            NULL_BRANCH => return Some((Value::Null, pos + 1)),
            VALUE_BRANCH => pos += 1,
            _ => return None,
        }
    }
    let long = |pos| varint::read_long(data, pos).ok();
    Some(match f.ty {
        Type::String => {
            let (b, next) = read_bytes(data, pos)?;
            (Value::String(std::str::from_utf8(b).ok()?.into()), next)
        }
        Type::Long => long(pos).map(|(n, p)| (Value::Long(n), p))?,
        Type::TimestampMicros => long(pos).map(|(n, p)| (Value::Timestamp(n), p))?,
        Type::Int => long(pos).and_then(|(n, p)| Some((Value::Int(i32::try_from(n).ok()?), p)))?,
        Type::Boolean => match *data.get(pos)? {
            b @ (0 | 1) => (Value::Boolean(b == 1), pos + 1),
            _ => return None,
        },
        Type::Double => (Value::Double(f64::from_le_bytes(data.get(pos..pos + 8)?.try_into().ok()?)), pos + 8),
        Type::Decimal { precision, scale } => {
            let (b, next) = read_bytes(data, pos)?;
            let unscaled = decimal::from_twos_complement(b)?;
            decimal::fits(unscaled, precision.into()).then_some(())?;
            (Value::Decimal(Decimal::new(unscaled, scale)?), next)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::MockHost;
    use crate::prelude::*;

    struct Sneaky;

    impl Resource for Sneaky {
        fn describe() -> Describe {
            Describe::new("sneaky", "1").table("users").computed("n", Type::Long).computed("note", Type::String.or_null())
        }

        fn export(cx: &mut Export) -> Result<()> {
            match cx.option("mode") {
                Some("undeclared") => drop(cx.read("secrets", &["token"], None)?),
                Some("wrong-type") => cx.emit(cx.record().set("n", "seven"))?,
                Some("missing") => cx.emit(cx.record().set("note", "no n"))?,
                Some("unknown") => cx.emit(cx.record().set("n", 1).set("nope", 2))?,
                _ => cx.emit(cx.record().set("n", 7))?,
            }
            Ok(())
        }
    }

    fn run(mode: &str) -> String {
        let host = MockHost::new().table("users", &["guid"], [row!["U1"]]).table("secrets", &["token"], [row!["t"]]);
        match host.option("mode", mode).export::<Sneaky>() {
            Ok(out) => format!("{:?}", out.records),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn the_mock_host_refuses_what_the_host_refuses() {
        assert_eq!(run("ok"), r#"[Record { fields: [("n", Long(7)), ("note", Null)] }]"#);
        assert_eq!(run("undeclared"), "denied: table `secrets` was not declared; declare it in describe (`.table` or `.reads`)");
        assert_eq!(run("wrong-type"), "bad data: resource `sneaky`, field `n` (long): got text \"seven\"; set a value of the field's type");
        assert_eq!(
            run("missing"),
            "bad data: resource `sneaky`, field `n` (long): not set; set it, or declare it with `.or_null()` if it may be missing"
        );
        assert!(run("unknown").starts_with("invalid argument: resource `sneaky` has no field `nope`; declare it"), "{}", run("unknown"));
    }
}
