//! Reading row batches from the host (encoding documented in `wit/ferry.wit`).

pub use ferry_wire::cell::Cell;
use ferry_wire::cell::decode;

use crate::bindings::ferry::plugin::source::RowBatch;
use crate::host::Cursor;
use crate::values::FromCell;
use crate::{Error, Result};

/// Columns that name a row in messages when the read is not of the main table (whose
/// key is the resource's `key`): the first of these the read requested.
const KEY_COLUMNS: &[&str] = &["guid", "uid", "sid", "id"];

/// A forward-only read of one table, batch by batch.
pub struct Rows {
    table: String,
    columns: Vec<String>,
    cursor: Cursor,
    key: Option<usize>,
    row: u64,
    batch: Vec<u8>,
    pos: usize,
    left: u32,
    cells: Vec<Slot>,
    done: bool,
}

/// A cell decoded once when its row is split: values inline, text and blobs as a span
/// of the batch (text already checked to be UTF-8).
#[derive(Debug, Clone, Copy)]
enum Slot {
    Null,
    Integer(i64),
    Real(f64),
    Text(u32, u32),
    Blob(u32, u32),
}

/// One row: a cell per requested column, in request order.
pub struct Row<'a> {
    data: &'a [u8],
    cells: &'a [Slot],
    columns: &'a [String],
    table: &'a str,
    key: Option<usize>,
    number: u64,
}

impl Rows {
    pub(crate) fn new(table: &str, columns: Vec<String>, cursor: Cursor, key: Option<&str>) -> Self {
        let key = key
            .and_then(|k| columns.iter().position(|c| c == k))
            .or_else(|| KEY_COLUMNS.iter().find_map(|k| columns.iter().position(|c| c == k)));
        Rows { table: table.into(), columns, cursor, key, row: 0, batch: Vec::new(), pos: 0, left: 0, cells: Vec::new(), done: false }
    }

    /// Names rows in error messages by `column` (one of the read's columns) instead of
    /// the default: the resource's key on its main table, else a `guid`, `uid`, `sid` or
    /// `id` column, else the row's number in the read.
    pub fn keyed_by(mut self, column: &str) -> Self {
        self.key = self.columns.iter().position(|c| c == column);
        self
    }

    /// The next row, or `None` at the end of the table. Not an `Iterator`: each row
    /// borrows the reader's batch, and the read can fail.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Row<'_>>> {
        while self.left == 0 {
            if self.pos != self.batch.len() {
                return Err(self.corrupt("bytes left over after the batch's last row"));
            }
            if self.done {
                return Ok(None);
            }
            match self.cursor.next()? {
                Some(RowBatch { rows, data }) => {
                    self.batch = data;
                    self.pos = 0;
                    self.left = rows;
                }
                None => self.done = true,
            }
        }
        self.cells.clear();
        for _ in 0..self.columns.len() {
            let (cell, next) = decode(&self.batch, self.pos).ok_or_else(|| self.corrupt("a cell is cut short"))?;
            let span = |b: &[u8]| ((b.as_ptr() as usize - self.batch.as_ptr() as usize) as u32, b.len() as u32);
            self.cells.push(match cell {
                Cell::Null => Slot::Null,
                Cell::Integer(n) => Slot::Integer(n),
                Cell::Real(r) => Slot::Real(r),
                Cell::Text(t) => {
                    let (at, len) = span(t.as_bytes());
                    Slot::Text(at, len)
                }
                Cell::Blob(b) => {
                    let (at, len) = span(b);
                    Slot::Blob(at, len)
                }
            });
            self.pos = next;
        }
        self.left -= 1;
        self.row += 1;
        Ok(Some(Row { data: &self.batch, cells: &self.cells, columns: &self.columns, table: &self.table, key: self.key, number: self.row }))
    }

    fn corrupt(&self, what: &str) -> Error {
        Error::other(format!("row batch from table `{}` is malformed: {what}", self.table))
    }
}

impl<'a> Row<'a> {
    /// The cell of the `i`th requested column.
    pub fn cell(&self, i: usize) -> Cell<'a> {
        match self.cells[i] {
            Slot::Null => Cell::Null,
            Slot::Integer(n) => Cell::Integer(n),
            Slot::Real(r) => Cell::Real(r),
            Slot::Text(at, len) => {
                let bytes = &self.data[at as usize..(at + len) as usize];
                // SAFETY: `Rows::next` took this span from a `&str` that `from_utf8`
                // checked, and the batch cannot change while this row borrows it.
                Cell::Text(unsafe { core::str::from_utf8_unchecked(bytes) })
            }
            Slot::Blob(at, len) => Cell::Blob(&self.data[at as usize..(at + len) as usize]),
        }
    }

    /// The named column's value as `T`: `row.get::<Decimal>("amount")?`,
    /// `row.get::<Option<&str>>("category")?` ([`FromCell`] lists the types). A value
    /// that is not a `T` is `bad-data` naming the table, the row and the column.
    pub fn get<T: FromCell<'a>>(&self, column: &str) -> Result<T> {
        let i = self.columns.iter().position(|c| c == column).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "column `{column}` was not requested from table `{}`; add it to the read's columns (it has: {})",
                self.table,
                self.columns.join(", ")
            ))
        })?;
        let cell = self.cell(i);
        T::from_cell(cell).ok_or_else(|| {
            Error::bad_data(format!(
                "table `{}`, {}, column `{column}`: {} is not {}; read it as an Option or a Cell, or fix the source",
                self.table,
                self.name(),
                cell.describe(),
                T::expected()
            ))
        })
    }

    /// How messages name this row: `row guid "a1"` or `row 17` (its number in the read).
    pub fn name(&self) -> String {
        match self.key.map(|k| (&self.columns[k], self.cell(k))) {
            Some((column, Cell::Text(t))) => format!("row {column} {t:?}"),
            Some((column, Cell::Integer(n))) => format!("row {column} {n}"),
            _ => format!("row {}", self.number),
        }
    }

    pub fn len(&self) -> usize {
        self.columns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }
}
