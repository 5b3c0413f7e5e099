//! Parquet: one file per resource file, written while streaming. Datums are decoded into
//! per-column buffers and a row group is written whenever [`ROW_GROUP_ROWS`] rows or
//! [`ROW_GROUP_BYTES`] of values are buffered, so memory is bounded by a row group, never
//! a table. Types are carried exactly: Avro decimals as DECIMAL(p,s), timestamps as
//! TIMESTAMP(unit, UTC), dates as DATE, `[null, T]` unions as optional columns; nested
//! values (arrays, maps, records, wider unions) as JSON text.
//!
//! The low-level column writer of the `parquet` crate is used (no Arrow arrays): ferry
//! already has validated Avro datums and only needs to lay them out per column.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use parquet::column::writer::{ColumnCloseResult, ColumnWriter, get_column_writer};
use parquet::errors::ParquetError;
use parquet::file::writer::{SerializedPageWriter, TrackedWrite};
use parquet::schema::types::ColumnDescPtr;

use parquet::basic::{Compression, LogicalType, Repetition, TimeUnit, Type as Physical, ZstdLevel};
use parquet::data_type::{ByteArray, FixedLenByteArray};
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterPropertiesPtr};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type;

use super::value::{FieldValue, decode, long};
use super::{DatumWriter, FormatError};
use crate::records::{Kind, RecordSchema};

/// Rows per row group at most (DuckDB's default size, a good unit for readers' parallelism).
pub const ROW_GROUP_ROWS: usize = 122_880;
/// Buffered value bytes per row group at most, so wide rows stay bounded too.
pub const ROW_GROUP_BYTES: usize = 64 << 20;

/// How a column's values are laid out.
#[derive(Debug, Clone, Copy)]
enum Layout {
    Bool,
    Int32,
    Int64,
    Float,
    Double,
    /// Length-prefixed bytes or text, stored as they are.
    Bytes,
    Fixed(usize),
    /// An unscaled big-endian decimal widened or narrowed to this physical type.
    Decimal32,
    Decimal64,
    DecimalFixed(usize),
    /// Any nested value, rendered as JSON text.
    Json,
}

enum Values {
    Bool(Vec<bool>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    Bytes(Vec<ByteArray>),
    Fixed(Vec<FixedLenByteArray>),
}

struct Column {
    /// The kind decoded for a present value (the non-null branch of a `[null, T]` union).
    kind: Kind,
    /// `Some(i)`: the field is a two-branch union whose branch `i` is null.
    null_branch: Option<usize>,
    optional: bool,
    layout: Layout,
    values: Values,
    defs: Vec<i16>,
}

/// Writes a resource file as Parquet.
pub struct ParquetWriter<W: Write + Send> {
    schema: Arc<RecordSchema>,
    columns: Vec<Column>,
    out: SerializedFileWriter<W>,
    rows: usize,
    buffered: usize,
    /// Threads encoding a row group's columns: a row group's flush held up the reader
    /// for ~80% of a Parquet export's wall time on one thread (issue 18).
    threads: usize,
}

fn parquet_error(e: ParquetError) -> FormatError {
    FormatError::Parquet(e)
}

/// Bytes of the smallest two's-complement integer holding every value below 10^precision.
fn decimal_bytes(precision: u32) -> usize {
    ((precision as f64 * std::f64::consts::LOG2_10 + 1.0) / 8.0).ceil() as usize
}

/// The column of one field: layout, logical type and repetition.
fn column(name: &str, kind: &Kind) -> Result<(Column, Type), FormatError> {
    let (inner, null_branch, optional) = match kind {
        Kind::Union(branches) if branches.len() == 2 && branches.iter().any(|b| matches!(b, Kind::Null)) => {
            let null = branches.iter().position(|b| matches!(b, Kind::Null)).unwrap_or(0);
            (branches[1 - null].clone(), Some(null), true)
        }
        Kind::Union(branches) => (kind.clone(), None, branches.iter().any(|b| matches!(b, Kind::Null))),
        other => (other.clone(), None, false),
    };
    let (layout, physical, logical, length, decimal) = match &inner {
        Kind::Boolean => (Layout::Bool, Physical::BOOLEAN, None, None, None),
        Kind::Int => (Layout::Int32, Physical::INT32, None, None, None),
        Kind::Long => (Layout::Int64, Physical::INT64, None, None, None),
        Kind::Float => (Layout::Float, Physical::FLOAT, None, None, None),
        Kind::Double => (Layout::Double, Physical::DOUBLE, None, None, None),
        Kind::Bytes => (Layout::Bytes, Physical::BYTE_ARRAY, None, None, None),
        Kind::Fixed(n) => (Layout::Fixed(*n), Physical::FIXED_LEN_BYTE_ARRAY, None, Some(*n), None),
        Kind::String | Kind::Uuid | Kind::Enum(_) => (Layout::Bytes, Physical::BYTE_ARRAY, Some(LogicalType::String), None, None),
        Kind::Date => (Layout::Int32, Physical::INT32, Some(LogicalType::Date), None, None),
        Kind::Timestamp { per_second } => {
            let unit = match per_second {
                1_000 => TimeUnit::MILLIS,
                1_000_000 => TimeUnit::MICROS,
                _ => TimeUnit::NANOS,
            };
            (Layout::Int64, Physical::INT64, Some(LogicalType::timestamp(true, unit)), None, None)
        }
        Kind::Decimal { precision, scale, .. } => {
            let logical = Some(LogicalType::decimal(*scale as i32, *precision as i32));
            let pair = Some((*precision as i32, *scale as i32));
            match precision {
                0..=9 => (Layout::Decimal32, Physical::INT32, logical, None, pair),
                10..=18 => (Layout::Decimal64, Physical::INT64, logical, None, pair),
                p => {
                    let n = decimal_bytes(*p);
                    (Layout::DecimalFixed(n), Physical::FIXED_LEN_BYTE_ARRAY, logical, Some(n), pair)
                }
            }
        }
        Kind::Null | Kind::Array(_) | Kind::Map(_) | Kind::Union(_) | Kind::Record(_) => {
            (Layout::Json, Physical::BYTE_ARRAY, Some(LogicalType::Json), None, None)
        }
    };
    let optional = optional || matches!(inner, Kind::Null);
    let mut builder = Type::primitive_type_builder(name, physical)
        .with_repetition(if optional { Repetition::OPTIONAL } else { Repetition::REQUIRED })
        .with_logical_type(logical);
    if let Some(n) = length {
        builder = builder.with_length(n as i32);
    }
    if let Some((p, s)) = decimal {
        builder = builder.with_precision(p).with_scale(s);
    }
    let ty = builder.build().map_err(parquet_error)?;
    let values = match layout {
        Layout::Bool => Values::Bool(Vec::new()),
        Layout::Int32 | Layout::Decimal32 => Values::I32(Vec::new()),
        Layout::Int64 | Layout::Decimal64 => Values::I64(Vec::new()),
        Layout::Float => Values::F32(Vec::new()),
        Layout::Double => Values::F64(Vec::new()),
        Layout::Bytes | Layout::Json => Values::Bytes(Vec::new()),
        Layout::Fixed(_) | Layout::DecimalFixed(_) => Values::Fixed(Vec::new()),
    };
    // A JSON column decodes the whole field, union included.
    let (kind, null_branch) = if matches!(layout, Layout::Json) { (kind.clone(), None) } else { (inner, null_branch) };
    Ok((Column { kind, null_branch, optional, layout, values, defs: Vec::new() }, ty))
}

/// The compression a resource's `codec` names; Parquet's default is zstd (set by the job).
fn compression(codec: apache_avro::Codec) -> Compression {
    match codec {
        apache_avro::Codec::Null => Compression::UNCOMPRESSED,
        apache_avro::Codec::Snappy => Compression::SNAPPY,
        _ => Compression::ZSTD(ZstdLevel::default()),
    }
}

/// An unscaled big-endian two's-complement value as an integer (at most 16 bytes: the
/// validator bounds it below 10^precision, and precision <= 18 here).
fn unscaled(be: &[u8]) -> i128 {
    let mut v: i128 = if be.first().is_some_and(|b| b & 0x80 != 0) { -1 } else { 0 };
    for &b in be {
        v = (v << 8) | b as i128;
    }
    v
}

/// `be` sign-extended (or stripped of redundant sign bytes) to exactly `n` bytes.
fn resized(be: &[u8], n: usize) -> Vec<u8> {
    let fill = if be.first().is_some_and(|b| b & 0x80 != 0) { 0xff } else { 0 };
    if be.len() >= n {
        return be[be.len() - n..].to_vec();
    }
    let mut out = vec![fill; n - be.len()];
    out.extend_from_slice(be);
    out
}

fn length_prefixed(data: &[u8], pos: usize) -> (&[u8], usize) {
    let (len, pos) = long(data, pos);
    let end = pos + len as usize;
    (&data[pos..end], end)
}

impl Column {
    /// Decodes this column's value at `pos` into the buffers; returns the position after
    /// it and the bytes it adds.
    fn push(&mut self, data: &[u8], mut pos: usize) -> (usize, usize) {
        if let Some(null) = self.null_branch {
            let (branch, p) = long(data, pos);
            pos = p;
            if branch as usize == null {
                self.defs.push(0);
                return (pos, 0);
            }
        }
        if self.optional && !matches!(self.layout, Layout::Json) {
            self.defs.push(1);
        }
        match (&mut self.values, self.layout) {
            (Values::Bool(v), _) => {
                v.push(data[pos] == 1);
                (pos + 1, 1)
            }
            (Values::F32(v), _) => {
                v.push(f32::from_le_bytes([data[pos], data[pos + 1], data[pos + 2], data[pos + 3]]));
                (pos + 4, 4)
            }
            (Values::F64(v), _) => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&data[pos..pos + 8]);
                v.push(f64::from_le_bytes(b));
                (pos + 8, 8)
            }
            (Values::I32(v), Layout::Decimal32) => {
                let (be, p) = self.kind.decimal_bytes(data, pos);
                v.push(unscaled(be) as i32);
                (p, 4)
            }
            (Values::I64(v), Layout::Decimal64) => {
                let (be, p) = self.kind.decimal_bytes(data, pos);
                v.push(unscaled(be) as i64);
                (p, 8)
            }
            (Values::I32(v), _) => {
                let (n, p) = long(data, pos);
                v.push(n as i32);
                (p, 4)
            }
            (Values::I64(v), _) => {
                let (n, p) = long(data, pos);
                v.push(n);
                (p, 8)
            }
            (Values::Fixed(v), Layout::DecimalFixed(n)) => {
                let (be, p) = self.kind.decimal_bytes(data, pos);
                v.push(resized(be, n).into());
                (p, n)
            }
            (Values::Fixed(v), _) => {
                let n = match self.layout {
                    Layout::Fixed(n) => n,
                    _ => 0,
                };
                v.push(data[pos..pos + n].to_vec().into());
                (pos + n, n)
            }
            (Values::Bytes(v), Layout::Json) => {
                let (value, p) = decode(&self.kind, data, pos);
                let text = match value {
                    FieldValue::Null => {
                        self.defs.push(0);
                        return (p, 0);
                    }
                    FieldValue::Str(s) => s.to_string(),
                    FieldValue::Text(s) => s,
                    other => other.to_json().to_string(),
                };
                if self.optional {
                    self.defs.push(1);
                }
                let len = text.len();
                v.push(text.into_bytes().into());
                (p, len + 16)
            }
            (Values::Bytes(v), _) => {
                let (b, p) = match &self.kind {
                    Kind::Enum(symbols) => {
                        let (i, p) = long(data, pos);
                        (symbols.get(i as usize).map(|s| s.as_bytes()).unwrap_or_default(), p)
                    }
                    _ => length_prefixed(data, pos),
                };
                v.push(b.to_vec().into());
                (p, b.len() + 16)
            }
        }
    }

    /// Encodes the buffered values as this column's chunk of a row group, into memory,
    /// and clears them: the chunk's bytes and what the row group needs to splice them in.
    fn encode(&mut self, descr: ColumnDescPtr, props: WriterPropertiesPtr) -> Result<(Bytes, ColumnCloseResult), ParquetError> {
        let mut sink = TrackedWrite::new(Vec::new());
        let writer = get_column_writer(descr, props, Box::new(SerializedPageWriter::new(&mut sink)));
        let defs = self.optional.then_some(&self.defs[..]);
        macro_rules! chunk {
            ($v:expr, $w:expr) => {{
                let mut w = $w;
                w.write_batch($v, defs, None)?;
                $v.clear();
                w.close()?
            }};
        }
        let close = match (&mut self.values, writer) {
            (Values::Bool(v), ColumnWriter::BoolColumnWriter(w)) => chunk!(v, w),
            (Values::I32(v), ColumnWriter::Int32ColumnWriter(w)) => chunk!(v, w),
            (Values::I64(v), ColumnWriter::Int64ColumnWriter(w)) => chunk!(v, w),
            (Values::F32(v), ColumnWriter::FloatColumnWriter(w)) => chunk!(v, w),
            (Values::F64(v), ColumnWriter::DoubleColumnWriter(w)) => chunk!(v, w),
            (Values::Bytes(v), ColumnWriter::ByteArrayColumnWriter(w)) => chunk!(v, w),
            (Values::Fixed(v), ColumnWriter::FixedLenByteArrayColumnWriter(w)) => chunk!(v, w),
            _ => return Err(ParquetError::General("a column's values do not match its physical type".into())),
        };
        self.defs.clear();
        Ok((Bytes::from(sink.into_inner()?), close))
    }
}

/// Encodes every column's chunk of a row group, on up to `threads` threads, each taking
/// the next column not yet taken (string columns cost far more than booleans). Results
/// come back in column order, so the file is the same whatever the thread count.
fn encode_columns(
    columns: &mut [Column],
    descrs: &[ColumnDescPtr],
    props: &WriterPropertiesPtr,
    threads: usize,
) -> Vec<Result<(Bytes, ColumnCloseResult), ParquetError>> {
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<&mut Column>>> = columns.iter_mut().map(|c| Mutex::new(Some(c))).collect();
    let work = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(slot) = slots.get(i) else { return done };
            let column = slot.lock().unwrap_or_else(|e| e.into_inner()).take().expect("each column is taken once");
            done.push((i, column.encode(descrs[i].clone(), props.clone())));
        }
    };
    let mut results: Vec<_> = std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads.min(slots.len())).map(|_| scope.spawn(work)).collect();
        let mut all = work();
        for helper in helpers {
            // An encoder that panicked lost its columns: they come back as errors below.
            all.extend(helper.join().unwrap_or_default());
        }
        all
    });
    results.sort_by_key(|(i, _)| *i);
    let mut out: Vec<_> = (0..columns.len()).map(|_| Err(ParquetError::General("a column encoder stopped".into()))).collect();
    for (i, result) in results {
        out[i] = result;
    }
    out
}

impl Kind {
    /// The unscaled bytes of a decimal datum at `pos` and the position after them.
    fn decimal_bytes<'a>(&self, data: &'a [u8], pos: usize) -> (&'a [u8], usize) {
        match self {
            Kind::Decimal { fixed: Some(n), .. } => (&data[pos..pos + n], pos + n),
            _ => length_prefixed(data, pos),
        }
    }
}

impl<W: Write + Send> ParquetWriter<W> {
    pub fn new(schema: Arc<RecordSchema>, codec: apache_avro::Codec, inner: W) -> Result<Self, FormatError> {
        let mut columns = Vec::with_capacity(schema.fields.len());
        let mut fields = Vec::with_capacity(schema.fields.len());
        for (name, kind) in &schema.fields {
            let (c, ty) = column(name, kind)?;
            columns.push(c);
            fields.push(Arc::new(ty));
        }
        let message = Type::group_type_builder("schema").with_fields(fields).build().map_err(parquet_error)?;
        let props = WriterProperties::builder()
            .set_compression(compression(codec))
            .set_dictionary_enabled(true)
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_created_by(format!("ferry {}", env!("CARGO_PKG_VERSION")))
            .build();
        let out = SerializedFileWriter::new(inner, Arc::new(message), Arc::new(props)).map_err(parquet_error)?;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        Ok(ParquetWriter { schema, columns, out, rows: 0, buffered: 0, threads })
    }

    fn flush_row_group(&mut self) -> Result<(), FormatError> {
        if self.rows == 0 {
            return Ok(());
        }
        let descrs = self.out.schema_descr().columns().to_vec();
        let props = self.out.properties().clone();
        let chunks = encode_columns(&mut self.columns, &descrs, &props, self.threads);
        let mut group = self.out.next_row_group().map_err(parquet_error)?;
        for chunk in chunks {
            let (bytes, close) = chunk.map_err(parquet_error)?;
            group.append_column(&bytes, close).map_err(parquet_error)?;
        }
        group.close().map_err(parquet_error)?;
        self.rows = 0;
        self.buffered = 0;
        Ok(())
    }
}

impl<W: Write + Send> DatumWriter<W> for ParquetWriter<W> {
    fn append(&mut self, datums: &[u8], ends: &[u32], _base: usize) -> Result<(), FormatError> {
        debug_assert_eq!(self.columns.len(), self.schema.fields.len());
        let mut pos = 0;
        for _ in ends {
            for column in &mut self.columns {
                let (p, added) = column.push(datums, pos);
                pos = p;
                self.buffered += added;
            }
            self.rows += 1;
            if self.rows >= ROW_GROUP_ROWS || self.buffered >= ROW_GROUP_BYTES {
                self.flush_row_group()?;
            }
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<W, FormatError> {
        self.flush_row_group()?;
        self.out.into_inner().map_err(parquet_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_widths_hold_their_precision() {
        assert_eq!(decimal_bytes(9), 4);
        assert_eq!(decimal_bytes(18), 8);
        assert_eq!(decimal_bytes(19), 9);
        assert_eq!(decimal_bytes(38), 16);
        assert_eq!(resized(&[0xfb], 3), vec![0xff, 0xff, 0xfb]);
        assert_eq!(resized(&[0x00, 0x00, 0x04, 0xd2], 2), vec![0x04, 0xd2]);
        assert_eq!(unscaled(&[0xff, 0x38]), -200);
    }

    /// Columns encoded on several threads make the same file as on one.
    #[test]
    fn the_file_is_the_same_whatever_the_encoding_threads() {
        use crate::records::proptests::{SCHEMAS, encoded, schema};
        for which in 0..SCHEMAS.len() {
            let schema = Arc::new(schema(which));
            let (data, ends) = encoded(&schema, 3000, which as u64);
            let file = |threads: usize| {
                let mut w = ParquetWriter::new(schema.clone(), apache_avro::Codec::Null, Vec::new()).unwrap();
                w.threads = threads;
                w.append(&data, &ends, 0).unwrap();
                Box::new(w).finish().unwrap()
            };
            let one = file(1);
            assert!(one.len() > 1000, "schema {which}: {} bytes", one.len());
            assert_eq!(one, file(3), "schema {which}: the file depends on the thread count");
        }
    }
}
