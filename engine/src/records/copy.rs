//! `records.copy`: the rows of a read turned into Avro records by the host.
//!
//! Most resources only map columns to fields (the kit's `copy_table`). Sending every row
//! into the sandbox and every record back out to be checked cost more than the rest of
//! the export put together, for no decision the plugin makes. So the plugin names the
//! read, and the source's reader thread writes each row's cells straight into the
//! declared schema's fields through a [`RecordEncoder`] (no row batch in between), under
//! the rules `wit/ferry.wit` documents for `records.copy`. A value that does not fit is
//! refused with a message naming the row, column and field. These records skip the
//! batch validator: they are the host's own output, not the plugin's (debug builds run
//! the validator over them anyway, so every test cross-checks this encoder).

use ferry_wire::avro::{NULL_BRANCH, VALUE_BRANCH, timestamp_range, write_string};
use ferry_wire::cell::{self, Cell};
use ferry_wire::decimal;
use ferry_wire::varint::write_long;

use super::Cells;
use super::schema::{Kind, RecordSchema};

/// What a field can be filled with from one column.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Target {
    String,
    Long,
    Int,
    Boolean,
    Double,
    /// `long` timestamps, `per_second` units a second, within years 1 to 9999.
    Timestamp {
        min: i64,
        max: i64,
        per_second: i64,
    },
    /// `bytes` decimals.
    Decimal {
        precision: u32,
        scale: u32,
    },
}

#[derive(Debug, Clone, Copy)]
struct Step {
    target: Target,
    /// The field is `["null", T]`: null is branch 0, the value branch 1.
    nullable: bool,
}

/// How each field of a schema is filled from the cell of the same index, and what
/// names a refused value's row, column and field.
#[derive(Debug, Clone)]
pub struct CopyPlan {
    steps: Vec<Step>,
    table: String,
    /// The read's columns; those past the last field are read over, not copied.
    columns: Vec<String>,
    fields: Vec<String>,
    /// The column whose value names a row in messages.
    key: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(
        "field `{field}` is {what}, which `copy` cannot fill from a column; write these records with `emit` (the kit's `Export::record`)"
    )]
    Unsupported { field: String, what: String },
    #[error("`copy` fills field i from column i, so the read needs at least the schema's {fields} columns; it names {columns}")]
    TooFewColumns { fields: usize, columns: usize },
    #[error("key column `{0}` is not one of the read's columns; add it to them")]
    Key(String),
}

impl CopyPlan {
    /// The plan for `schema`'s fields from reads of `columns` of `table`.
    pub fn new(schema: &RecordSchema, table: &str, columns: &[String], key: Option<&str>) -> Result<Self, PlanError> {
        if columns.len() < schema.fields.len() {
            return Err(PlanError::TooFewColumns { fields: schema.fields.len(), columns: columns.len() });
        }
        let key = key.map(|k| columns.iter().position(|c| c == k).ok_or_else(|| PlanError::Key(k.into()))).transpose()?;
        let steps = schema
            .fields
            .iter()
            .map(|(name, kind)| {
                let unsupported = |what: String| PlanError::Unsupported { field: name.clone(), what };
                let (kind, nullable) = match kind {
                    Kind::Union(branches) => match branches.as_slice() {
                        [Kind::Null, value] => (value, true),
                        _ => return Err(unsupported("a union other than [\"null\", T]".into())),
                    },
                    kind => (kind, false),
                };
                let target = match kind {
                    Kind::String => Target::String,
                    Kind::Long => Target::Long,
                    Kind::Int => Target::Int,
                    Kind::Boolean => Target::Boolean,
                    Kind::Double => Target::Double,
                    &Kind::Timestamp { per_second } => {
                        let (min, max) = timestamp_range(per_second);
                        Target::Timestamp { min, max, per_second }
                    }
                    &Kind::Decimal { precision, scale, fixed: None } => Target::Decimal { precision, scale },
                    other => return Err(unsupported(format!("{other:?}").to_lowercase())),
                };
                Ok(Step { target, nullable })
            })
            .collect::<Result<_, _>>()?;
        Ok(CopyPlan {
            steps,
            table: table.into(),
            columns: columns.to_vec(),
            fields: schema.fields.iter().map(|(name, _)| name.clone()).collect(),
            key,
        })
    }

    /// An encoder writing records of this plan, batch by batch.
    pub fn encoder(self, batch_bytes: usize) -> RecordEncoder {
        RecordEncoder {
            plan: self,
            column: 0,
            batch: RecordBatch { count: 0, data: Vec::with_capacity(batch_bytes + 4096), ends: Vec::new() },
            batch_bytes,
            fault: None,
            key: Key::None,
        }
    }
}

/// Records ready for the output: `ends[i]` is where record `i` ends within `data`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecordBatch {
    pub count: u32,
    pub data: Vec<u8>,
    pub ends: Vec<u32>,
}

/// Writes each row's cells, as a source's reader hands them over, as one record.
#[derive(Debug)]
pub struct RecordEncoder {
    plan: CopyPlan,
    /// The column of the next cell.
    column: usize,
    batch: RecordBatch,
    batch_bytes: usize,
    /// The row's first value that did not fit: its field and why.
    fault: Option<(usize, String)>,
    /// The row's key cell, kept per row because the reader has moved on by the time a
    /// later cell is refused.
    key: Key,
}

/// A row's key, for naming the row in a message.
#[derive(Debug)]
enum Key {
    None,
    Text(String),
    Integer(i64),
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::None => Ok(()),
            Key::Text(t) => write!(f, " row {t:?}"),
            Key::Integer(n) => write!(f, " row {n}"),
        }
    }
}

impl RecordEncoder {
    /// The step for the next cell, or `None` for a column past the last field.
    #[inline(always)]
    fn next(&mut self) -> Option<(usize, Step)> {
        let field = self.column;
        self.column += 1;
        self.plan.steps.get(field).map(|&s| (field, s))
    }

    #[inline(always)]
    fn branch(&mut self, step: Step) {
        if step.nullable {
            self.batch.data.push(VALUE_BRANCH);
        }
    }

    #[cold]
    fn misfit(&mut self, field: usize, cell: Cell) {
        if self.fault.is_none() {
            let step = self.plan.steps[field];
            let why = match (step.target, cell) {
                (_, Cell::Null) => "NULL but the field is not nullable".into(),
                (Target::Timestamp { min, max, per_second }, Cell::Integer(n)) if !(min..=max).contains(&n) => {
                    format!("integer {n} is not a timestamp between years 1 and 9999 ({} since 1970)", unit(per_second))
                }
                _ => format!("{} does not fit {}", cell.describe(), type_name(step.target)),
            };
            self.fault = Some((field, why));
        }
    }

    /// Source text that is not UTF-8 never reaches a row batch (readers hand it to
    /// plugins as a blob), so it is no `Cell`: refused here, named for what it is.
    #[cold]
    fn not_utf8(&mut self, field: usize, b: &[u8]) {
        if self.fault.is_none() {
            let at = std::str::from_utf8(b).err().map_or(0, |e| e.valid_up_to());
            let n = b.len();
            let why =
                format!("text that is not valid UTF-8 ({n} bytes, the first bad byte at offset {at}); fix its encoding in the source");
            self.fault = Some((field, why));
        }
    }

    #[inline(always)]
    fn note_key(&mut self, cell: Cell) {
        if self.plan.key == Some(self.column) {
            self.key = match cell {
                Cell::Text(t) => {
                    // The buffer is reused: a row costs a copy of its key, not an allocation.
                    let mut text = match std::mem::replace(&mut self.key, Key::None) {
                        Key::Text(mut s) => {
                            s.clear();
                            s
                        }
                        _ => String::new(),
                    };
                    text.push_str(t);
                    Key::Text(text)
                }
                Cell::Integer(n) => Key::Integer(n),
                _ => Key::None,
            };
        }
    }

    /// Encodes every row of a row batch (sources without a reader of their own).
    pub fn row_batch(&mut self, data: &[u8], rows: u32) -> Result<(), String> {
        let table = self.plan.table.clone();
        let corrupt = || format!("the source's row batch for `{table}` is malformed");
        let mut pos = 0;
        for _ in 0..rows {
            for _ in 0..self.plan.columns.len() {
                let (cell, next) = cell::decode(data, pos).ok_or_else(corrupt)?;
                match cell {
                    Cell::Null => self.null(),
                    Cell::Integer(v) => self.integer(v),
                    Cell::Real(v) => self.real(v),
                    Cell::Text(t) => self.text(t),
                    Cell::Blob(b) => self.blob(b),
                }
                pos = next;
            }
            self.end_row()?;
        }
        if pos != data.len() {
            return Err(corrupt());
        }
        Ok(())
    }
}

impl Cells for RecordEncoder {
    type Batch = RecordBatch;

    #[inline]
    fn null(&mut self) {
        self.note_key(Cell::Null);
        if let Some((field, step)) = self.next() {
            if step.nullable {
                self.batch.data.push(NULL_BRANCH);
            } else {
                self.misfit(field, Cell::Null);
            }
        }
    }

    #[inline]
    fn integer(&mut self, n: i64) {
        self.note_key(Cell::Integer(n));
        let Some((field, step)) = self.next() else { return };
        let fits = match step.target {
            Target::Long => true,
            Target::Int => i32::try_from(n).is_ok(),
            Target::Timestamp { min, max, .. } => (min..=max).contains(&n),
            Target::Boolean => {
                if n == 0 || n == 1 {
                    self.branch(step);
                    self.batch.data.push(n as u8);
                    return;
                }
                false
            }
            Target::Double => {
                self.branch(step);
                self.batch.data.extend_from_slice(&(n as f64).to_le_bytes());
                return;
            }
            Target::Decimal { precision, scale } => {
                if let Some(v) = decimal::from_integer(n, precision, scale) {
                    self.branch(step);
                    decimal::write(&mut self.batch.data, v);
                    return;
                }
                false
            }
            Target::String => false,
        };
        if fits {
            self.branch(step);
            write_long(&mut self.batch.data, n);
        } else {
            self.misfit(field, Cell::Integer(n));
        }
    }

    #[inline]
    fn real(&mut self, v: f64) {
        self.note_key(Cell::Real(v));
        let Some((field, step)) = self.next() else { return };
        if step.target == Target::Double {
            self.branch(step);
            self.batch.data.extend_from_slice(&v.to_le_bytes());
        } else {
            self.misfit(field, Cell::Real(v));
        }
    }

    #[inline]
    fn text(&mut self, t: &str) {
        self.note_key(Cell::Text(t));
        let Some((field, step)) = self.next() else { return };
        match step.target {
            Target::String => {
                self.branch(step);
                write_string(&mut self.batch.data, t);
            }
            Target::Decimal { precision, scale } => match decimal::parse(t.as_bytes(), precision, scale) {
                Some(v) => {
                    self.branch(step);
                    decimal::write(&mut self.batch.data, v);
                }
                None => self.misfit(field, Cell::Text(t)),
            },
            _ => self.misfit(field, Cell::Text(t)),
        }
    }

    #[inline]
    fn blob(&mut self, b: &[u8]) {
        self.note_key(Cell::Blob(b));
        if let Some((field, _)) = self.next() {
            self.misfit(field, Cell::Blob(b));
        }
    }

    /// No field takes text that is not UTF-8: named as such, not as a blob.
    fn bad_text(&mut self, b: &[u8]) {
        self.note_key(Cell::Blob(b));
        if let Some((field, _)) = self.next() {
            self.not_utf8(field, b);
        }
    }

    fn end_row(&mut self) -> Result<(), String> {
        if let Some((field, why)) = self.fault.take() {
            let p = &self.plan;
            return Err(format!("table `{}`{} column `{}`: {why} (field `{}`)", p.table, self.key, p.columns[field], p.fields[field]));
        }
        debug_assert_eq!(self.column, self.plan.columns.len(), "a reader wrote the wrong number of cells");
        self.column = 0;
        self.batch.count += 1;
        self.batch.ends.push(self.batch.data.len() as u32);
        Ok(())
    }

    fn full(&self) -> bool {
        self.batch.data.len() >= self.batch_bytes
    }

    fn rows(&self) -> u32 {
        self.batch.count
    }

    fn take(&mut self) -> RecordBatch {
        let fresh =
            RecordBatch { count: 0, data: Vec::with_capacity(self.batch_bytes + 4096), ends: Vec::with_capacity(self.batch.ends.len()) };
        std::mem::replace(&mut self.batch, fresh)
    }

    fn fresh(&self) -> Self {
        self.plan.clone().encoder(self.batch_bytes)
    }
}

fn unit(per_second: i64) -> &'static str {
    match per_second {
        1_000 => "milliseconds",
        _ => "microseconds",
    }
}

fn type_name(target: Target) -> String {
    match target {
        Target::String => "string".into(),
        Target::Long => "long".into(),
        Target::Int => "int (32-bit)".into(),
        Target::Boolean => "boolean (0 or 1)".into(),
        Target::Double => "double".into(),
        Target::Timestamp { per_second, .. } => format!("timestamp (integer {})", unit(per_second)),
        Target::Decimal { precision, scale } => format!("decimal({precision},{scale})"),
    }
}

#[cfg(test)]
#[path = "copy_tests.rs"]
mod tests;
