//! One value as inspect compares it, whatever file it came from: decimals as unscaled
//! integers, timestamps and dates as integers in their unit, so min and max are exact
//! and equal across Avro, CSV, JSONL and Parquet.

use std::cmp::Ordering;

use apache_avro::types::Value as Avro;
use parquet::record::Field;

use crate::formats::value::decimal_text;
use crate::records::Kind;

#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Bool(bool),
    /// Integers, unscaled decimals, timestamps and dates in their unit.
    Int(i128),
    Float(f64),
    Text(String),
}

impl Cell {
    /// Orders two values of one column (of one variant; mixed variants are unordered).
    pub fn compare(&self, other: &Cell) -> Option<Ordering> {
        match (self, other) {
            (Cell::Bool(a), Cell::Bool(b)) => Some(a.cmp(b)),
            (Cell::Int(a), Cell::Int(b)) => Some(a.cmp(b)),
            (Cell::Float(a), Cell::Float(b)) => a.partial_cmp(b),
            (Cell::Text(a), Cell::Text(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }

    /// Bytes that identify the value, for the distinct-count sketch.
    pub fn key(&self) -> Vec<u8> {
        match self {
            Cell::Null => vec![0],
            Cell::Bool(b) => vec![1, *b as u8],
            Cell::Int(n) => [&[2u8][..], &n.to_le_bytes()].concat(),
            Cell::Float(f) => [&[3u8][..], &f.to_bits().to_le_bytes()].concat(),
            Cell::Text(s) => [&[4u8][..], s.as_bytes()].concat(),
        }
    }

    /// The value as the user reads it, by the column's kind.
    pub fn display(&self, kind: &Kind) -> String {
        match (self, plain(kind)) {
            (Cell::Int(n), Kind::Decimal { scale, .. }) => decimal_text(&n.to_be_bytes(), *scale),
            (Cell::Int(n), Kind::Timestamp { per_second }) => {
                let n = *n as i64;
                let nanos = n.rem_euclid(*per_second) * (1_000_000_000 / per_second);
                chrono::DateTime::from_timestamp(n.div_euclid(*per_second), nanos as u32)
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
                    .unwrap_or_else(|| n.to_string())
            }
            (Cell::Int(n), Kind::Date) => chrono::DateTime::from_timestamp(*n as i64 * 86_400, 0)
                .map(|t| t.format("%Y-%m-%d").to_string())
                .unwrap_or_else(|| n.to_string()),
            (Cell::Null, _) => "null".into(),
            (Cell::Bool(b), _) => b.to_string(),
            (Cell::Int(n), _) => n.to_string(),
            (Cell::Float(f), _) => f.to_string(),
            (Cell::Text(s), _) => s.clone(),
        }
    }
}

/// The kind of a present value: the non-null branch of a `[null, T]` union.
fn plain(kind: &Kind) -> &Kind {
    match kind {
        Kind::Union(b) if b.len() == 2 && b.iter().any(|k| matches!(k, Kind::Null)) => {
            b.iter().find(|k| !matches!(k, Kind::Null)).unwrap_or(kind)
        }
        k => k,
    }
}

/// Units per second of a timestamp column.
pub fn timestamp_unit(kind: &Kind) -> Option<i64> {
    match plain(kind) {
        Kind::Timestamp { per_second } => Some(*per_second),
        _ => None,
    }
}

/// A short type name: `long`, `decimal(14,2)`, `timestamp-micros`, `string?` (nullable).
pub fn type_name(kind: &Kind) -> String {
    let nullable = !std::ptr::eq(plain(kind), kind);
    let base = match plain(kind) {
        Kind::Null => "null".into(),
        Kind::Boolean => "boolean".into(),
        Kind::Int => "int".into(),
        Kind::Long => "long".into(),
        Kind::Float => "float".into(),
        Kind::Double => "double".into(),
        Kind::Bytes => "bytes".into(),
        Kind::String => "string".into(),
        Kind::Uuid => "uuid".into(),
        Kind::Fixed(n) => format!("fixed({n})"),
        Kind::Date => "date".into(),
        Kind::Timestamp { per_second: 1_000 } => "timestamp-millis".into(),
        Kind::Timestamp { .. } => "timestamp-micros".into(),
        Kind::Decimal { precision, scale, .. } => format!("decimal({precision},{scale})"),
        Kind::Enum(_) => "enum".into(),
        Kind::Array(_) => "array".into(),
        Kind::Map(_) => "map".into(),
        Kind::Union(_) => "union".into(),
        Kind::Record(_) => "record".into(),
    };
    if nullable { format!("{base}?") } else { base }
}

/// An exact decimal text (`-12.30`) as an unscaled integer at `scale`.
fn unscaled(text: &str, scale: u32) -> Option<i128> {
    let (neg, body) = text.strip_prefix('-').map(|b| (true, b)).unwrap_or((false, text));
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if frac.len() > scale as usize {
        return None;
    }
    let v: i128 = format!("{int}{frac:0<width$}", width = scale as usize).parse().ok()?;
    Some(if neg { -v } else { v })
}

/// A value as CSV or JSONL text shows it (`csv`: an empty field is null).
pub fn from_text(kind: &Kind, text: &str, csv: bool) -> Cell {
    // CSV writes null as an empty field: in a nullable column that is null (an empty
    // string reads back as null too; CSV cannot tell them apart).
    let nullable = !std::ptr::eq(plain(kind), kind);
    if csv && text.is_empty() && (nullable || !matches!(kind, Kind::String | Kind::Uuid | Kind::Enum(_))) {
        return Cell::Null;
    }
    let parsed = match plain(kind) {
        Kind::Boolean => text.parse().ok().map(Cell::Bool),
        Kind::Int | Kind::Long => text.parse::<i64>().ok().map(|n| Cell::Int(n.into())),
        Kind::Float | Kind::Double => text.parse().ok().map(Cell::Float),
        Kind::Decimal { scale, .. } => unscaled(text, *scale).map(Cell::Int),
        Kind::Timestamp { per_second } => chrono::DateTime::parse_from_rfc3339(text).ok().map(|t| {
            let micros = t.timestamp_micros() as i128;
            Cell::Int(micros * *per_second as i128 / 1_000_000)
        }),
        Kind::Date => chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .ok()
            .map(|d| Cell::Int((d - chrono::NaiveDate::default()).num_days().into())),
        _ => None,
    };
    parsed.unwrap_or_else(|| Cell::Text(text.to_string()))
}

/// A JSONL value.
pub fn from_json(kind: &Kind, v: serde_json::Value) -> Cell {
    use serde_json::Value as J;
    match v {
        J::Null => Cell::Null,
        J::Bool(b) => Cell::Bool(b),
        J::Number(n) => n.as_i64().map(|n| Cell::Int(n.into())).or_else(|| n.as_f64().map(Cell::Float)).unwrap_or(Cell::Null),
        J::String(s) => from_text(kind, &s, false),
        other => Cell::Text(other.to_string()),
    }
}

/// A field of an Avro record.
fn avro_cell(v: Avro) -> Cell {
    match v {
        Avro::Null => Cell::Null,
        Avro::Boolean(b) => Cell::Bool(b),
        Avro::Int(n) | Avro::Date(n) | Avro::TimeMillis(n) => Cell::Int(n.into()),
        Avro::Long(n)
        | Avro::TimestampMicros(n)
        | Avro::TimestampMillis(n)
        | Avro::TimestampNanos(n)
        | Avro::TimeMicros(n)
        | Avro::LocalTimestampMicros(n)
        | Avro::LocalTimestampMillis(n)
        | Avro::LocalTimestampNanos(n) => Cell::Int(n.into()),
        Avro::Float(f) => Cell::Float(f.into()),
        Avro::Double(f) => Cell::Float(f),
        Avro::String(s) | Avro::Enum(_, s) => Cell::Text(s),
        Avro::Uuid(u) => Cell::Text(u.to_string()),
        Avro::Bytes(b) | Avro::Fixed(_, b) => Cell::Text(hex::encode(b)),
        Avro::Decimal(d) => Vec::<u8>::try_from(d)
            .ok()
            .map(|be| {
                let mut v: i128 = if be.first().is_some_and(|b| b & 0x80 != 0) { -1 } else { 0 };
                for b in be {
                    v = (v << 8) | b as i128;
                }
                Cell::Int(v)
            })
            .unwrap_or(Cell::Null),
        Avro::Union(_, inner) => avro_cell(*inner),
        other => Cell::Text(format!("{other:?}")),
    }
}

/// The fields of an Avro record, in schema order.
pub fn from_avro(fields: &[(String, Kind)], record: Avro) -> Result<Vec<Cell>, String> {
    let Avro::Record(values) = record else { return Err("an Avro datum is not a record".into()) };
    if values.len() != fields.len() {
        return Err(format!("a record has {} fields, the schema {}", values.len(), fields.len()));
    }
    Ok(values.into_iter().map(|(_, v)| avro_cell(v)).collect())
}

/// A field of a Parquet row.
pub fn from_parquet(kind: &Kind, f: &Field) -> Cell {
    match f {
        Field::Null => Cell::Null,
        Field::Bool(b) => Cell::Bool(*b),
        Field::Byte(n) => Cell::Int((*n).into()),
        Field::Short(n) => Cell::Int((*n).into()),
        Field::Int(n) => Cell::Int((*n).into()),
        Field::Long(n) => Cell::Int((*n).into()),
        Field::Date(n) => Cell::Int((*n).into()),
        Field::TimestampMicros(n) => Cell::Int(match timestamp_unit(kind) {
            Some(1_000) => (*n / 1_000).into(),
            _ => (*n).into(),
        }),
        Field::TimestampMillis(n) => Cell::Int((*n).into()),
        Field::Float(x) => Cell::Float((*x).into()),
        Field::Double(x) => Cell::Float(*x),
        Field::Decimal(d) => {
            let be = d.data();
            let mut v: i128 = if be.first().is_some_and(|b| b & 0x80 != 0) { -1 } else { 0 };
            for b in be {
                v = (v << 8) | *b as i128;
            }
            Cell::Int(v)
        }
        Field::Str(s) => Cell::Text(s.clone()),
        Field::Bytes(b) => Cell::Text(hex::encode(b.data())),
        other => Cell::Text(other.to_string()),
    }
}
