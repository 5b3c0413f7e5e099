//! Decoding validated datums into the values CSV and JSONL print, with the value rules
//! both formats share: RFC 3339 UTC timestamps, ISO dates, exact decimals as text,
//! bytes as lowercase hex, null as null (an empty field in CSV).

use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat};
use ferry_wire::{avro, decimal, varint};

use crate::records::Kind;

/// One decoded value. Text-like values borrow from the batch.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
    /// Rendered text that must stay text (decimals, timestamps, dates, hex bytes).
    Text(String),
    /// Arrays, maps and records, as JSON.
    Json(serde_json::Value),
}

impl FieldValue<'_> {
    /// The value as a JSON value (JSONL, and nested values in CSV).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            FieldValue::Null => serde_json::Value::Null,
            FieldValue::Bool(b) => (*b).into(),
            FieldValue::Int(n) => (*n).into(),
            FieldValue::Float(f) => serde_json::Number::from_f64(*f).map(Into::into).unwrap_or_else(|| f.to_string().into()),
            FieldValue::Str(s) => (*s).into(),
            FieldValue::Text(s) => s.clone().into(),
            FieldValue::Json(v) => v.clone(),
        }
    }
}

// The datums were validated before they got here, so a malformed one is a bug in the
// validator: these panic on it (as indexing would) rather than print a wrong value.
pub(crate) fn long(data: &[u8], pos: usize) -> (i64, usize) {
    varint::read_long(data, pos).expect("a validated datum")
}

fn bytes(data: &[u8], pos: usize) -> (&[u8], usize) {
    avro::read_bytes(data, pos).expect("a validated datum")
}

fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

/// An unscaled two's-complement integer at `scale`, as exact decimal text.
pub fn decimal_text(be: &[u8], scale: u32) -> String {
    // At most 17 bytes and 38 digits after validation, so it fits.
    decimal::to_text(decimal::from_twos_complement(be).expect("a validated decimal"), scale)
}

fn timestamp(v: i64, per_second: i64) -> String {
    let (secs, sub) = (v.div_euclid(per_second), v.rem_euclid(per_second));
    let nanos = (sub * (1_000_000_000 / per_second)) as u32;
    let format = if per_second == 1_000 { SecondsFormat::Millis } else { SecondsFormat::Micros };
    // The validator keeps timestamps within years 1..=9999, so this always succeeds.
    DateTime::from_timestamp(secs, nanos).map(|t| t.to_rfc3339_opts(format, true)).unwrap_or_else(|| v.to_string())
}

/// Decodes one value of `kind` at `pos`; returns it and the position after it.
pub fn decode<'a>(kind: &'a Kind, data: &'a [u8], pos: usize) -> (FieldValue<'a>, usize) {
    match kind {
        Kind::Null => (FieldValue::Null, pos),
        Kind::Boolean => (FieldValue::Bool(data[pos] == 1), pos + 1),
        Kind::Int | Kind::Long => {
            let (v, p) = long(data, pos);
            (FieldValue::Int(v), p)
        }
        Kind::Float => (FieldValue::Float(f32::from_le_bytes(data[pos..pos + 4].try_into().unwrap()) as f64), pos + 4),
        Kind::Double => (FieldValue::Float(f64::from_le_bytes(data[pos..pos + 8].try_into().unwrap())), pos + 8),
        Kind::Bytes => {
            let (b, p) = bytes(data, pos);
            (FieldValue::Text(hex(b)), p)
        }
        Kind::Fixed(n) => (FieldValue::Text(hex(&data[pos..pos + n])), pos + n),
        Kind::String | Kind::Uuid => {
            let (b, p) = bytes(data, pos);
            // Validated as UTF-8 before it got here.
            (FieldValue::Str(std::str::from_utf8(b).unwrap_or_default()), p)
        }
        Kind::Date => {
            let (days, p) = long(data, pos);
            let date = DateTime::from_timestamp(days * 86_400, 0).map(|t| t.format("%Y-%m-%d").to_string());
            (FieldValue::Text(date.unwrap_or_else(|| days.to_string())), p)
        }
        Kind::Timestamp { per_second } => {
            let (v, p) = long(data, pos);
            (FieldValue::Text(timestamp(v, *per_second)), p)
        }
        Kind::Decimal { scale, fixed, .. } => {
            let (b, p) = match fixed {
                Some(n) => (&data[pos..pos + n], pos + n),
                None => bytes(data, pos),
            };
            (FieldValue::Text(decimal_text(b, *scale)), p)
        }
        Kind::Enum(symbols) => {
            let (i, p) = long(data, pos);
            (FieldValue::Str(symbols.get(i as usize).map(String::as_str).unwrap_or_default()), p)
        }
        Kind::Union(branches) => {
            let (i, p) = long(data, pos);
            decode(&branches[i as usize], data, p)
        }
        Kind::Record(fields) => {
            let mut p = pos;
            let mut m = serde_json::Map::new();
            for (name, k) in fields {
                let (v, q) = decode(k, data, p);
                p = q;
                m.insert(name.rsplit('.').next().unwrap_or(name).to_string(), v.to_json());
            }
            (FieldValue::Json(m.into()), p)
        }
        Kind::Array(item) => {
            let mut out = Vec::new();
            let p = blocks(data, pos, |p| {
                let (v, q) = decode(item, data, p);
                out.push(v.to_json());
                q
            });
            (FieldValue::Json(out.into()), p)
        }
        Kind::Map(item) => {
            let mut out = serde_json::Map::new();
            let p = blocks(data, pos, |p| {
                let (k, p) = bytes(data, p);
                let (v, q) = decode(item, data, p);
                out.insert(String::from_utf8_lossy(k).into_owned(), v.to_json());
                q
            });
            (FieldValue::Json(out.into()), p)
        }
    }
}

fn blocks(data: &[u8], mut pos: usize, mut item: impl FnMut(usize) -> usize) -> usize {
    loop {
        let (count, p) = long(data, pos);
        pos = p;
        if count == 0 {
            return pos;
        }
        if count < 0 {
            pos = long(data, pos).1; // block byte size
        }
        for _ in 0..count.unsigned_abs() {
            pos = item(pos);
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::records::proptests::{SCHEMAS, damaged, mutation, schema};
    use crate::records::validate_batch;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

        /// Every batch the validator accepts (whole or damaged), this decoder reads to
        /// exactly the record ends the validator returned, without panicking.
        #[test]
        fn decodes_accepted_batches_to_the_validators_ends(
            which in 0..SCHEMAS.len(),
            count in 0..5usize,
            seed in any::<u64>(),
            mutations in proptest::collection::vec(mutation(), 0..3),
        ) {
            let schema = schema(which);
            let (claimed, data) = damaged(&schema, count, seed, &mutations);
            if let Ok(ends) = validate_batch(&schema, claimed, &data) {
                let mut start = 0;
                for (i, &end) in ends.iter().enumerate() {
                    let mut pos = start;
                    for (_, kind) in &schema.fields {
                        let (v, p) = decode(kind, &data, pos);
                        let _ = v.to_json();
                        pos = p;
                    }
                    prop_assert_eq!(pos, end as usize, "record {}: the decoder and the validator disagree on where it ends", i);
                    start = end as usize;
                }
            }
        }
    }

    #[test]
    fn decimals_and_timestamps_render_exactly() {
        assert_eq!(decimal_text(&[0x04, 0xd2], 2), "12.34");
        assert_eq!(decimal_text(&[0xfb], 2), "-0.05");
        assert_eq!(decimal_text(&[0x00], 6), "0.000000");
        assert_eq!(decimal_text(&[0x07], 0), "7");
        assert_eq!(timestamp(1_774_967_422_000_001, 1_000_000), "2026-03-31T14:30:22.000001Z");
        assert_eq!(timestamp(-1, 1_000_000), "1969-12-31T23:59:59.999999Z");
        assert_eq!(timestamp(1_500, 1_000), "1970-01-01T00:00:01.500Z");
    }
}
