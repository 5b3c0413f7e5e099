//! Checks a record batch (Avro binary datums, see `wit/ferry.wit`) against the schema
//! without building values: a walk over the bytes that fails on the first thing an Avro
//! reader would choke on or misread.

use super::schema::{Kind, RecordSchema};

/// Why a batch was refused: which record, which field, what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("record {record} of the batch, field `{field}`: {reason}")]
pub struct BatchError {
    /// 0-based index of the record within the batch.
    pub record: u32,
    pub field: String,
    pub reason: String,
}

/// First and last instants of years 1..=9999, in seconds, the range every reader decodes.
pub(super) const MIN_SECONDS: i64 = -62_135_596_800;
pub(super) const MAX_SECONDS: i64 = 253_402_300_799;

type Check<T> = Result<T, String>;

/// Checks that `data` holds exactly `count` records of `schema`, and returns where each
/// record ends (so files can be split between records without decoding again).
pub fn validate_batch(schema: &RecordSchema, count: u32, data: &[u8]) -> Result<Vec<u32>, BatchError> {
    let mut pos = 0;
    // Every record takes at least a byte (the schema check sees to it), so a claimed
    // count beyond the data's size is a lie that must not size an allocation: u32::MAX
    // asked for 16 GiB up front (found writing the fuzz targets).
    let mut ends = Vec::with_capacity((count as usize).min(data.len()));
    for record in 0..count {
        for (name, kind) in &schema.fields {
            pos = value(kind, data, pos).map_err(|reason| BatchError { record, field: name.clone(), reason })?;
        }
        ends.push(pos as u32);
    }
    if pos != data.len() {
        return Err(BatchError {
            record: count,
            field: String::new(),
            reason: format!("the batch claims {count} records but {} bytes follow the last one", data.len() - pos),
        });
    }
    Ok(ends)
}

fn long(data: &[u8], mut pos: usize) -> Check<(i64, usize)> {
    let mut z: u64 = 0;
    for shift in (0..64).step_by(7) {
        let b = *data.get(pos).ok_or("the batch ends inside a number (is the record count right?)")?;
        pos += 1;
        if shift == 63 && b > 1 {
            return Err("a number is longer than 64 bits".into());
        }
        z |= ((b & 0x7f) as u64) << shift;
        if b & 0x80 == 0 {
            return Ok((((z >> 1) as i64) ^ -((z & 1) as i64), pos));
        }
    }
    Err("a number is longer than 64 bits".into())
}

fn take(data: &[u8], pos: usize, len: usize) -> Check<(&[u8], usize)> {
    let end = pos.checked_add(len).filter(|&e| e <= data.len()).ok_or_else(|| {
        format!("a value needs {len} bytes but the batch has {} left (is the record count right?)", data.len() - pos.min(data.len()))
    })?;
    Ok((&data[pos..end], end))
}

fn length(data: &[u8], pos: usize) -> Check<(usize, usize)> {
    let (len, pos) = long(data, pos)?;
    let len = usize::try_from(len).map_err(|_| format!("negative length {len}"))?;
    Ok((len, pos))
}

fn value(kind: &Kind, data: &[u8], pos: usize) -> Check<usize> {
    Ok(match kind {
        Kind::Null => pos,
        Kind::Boolean => match data.get(pos) {
            Some(0 | 1) => pos + 1,
            Some(b) => return Err(format!("boolean byte is {b}, not 0 or 1")),
            None => return Err("the batch ends inside a boolean".into()),
        },
        Kind::Int => {
            let (v, p) = long(data, pos)?;
            i32::try_from(v).map_err(|_| format!("{v} does not fit a 32-bit int"))?;
            p
        }
        Kind::Long => long(data, pos)?.1,
        Kind::Float => take(data, pos, 4)?.1,
        Kind::Double => take(data, pos, 8)?.1,
        Kind::Fixed(n) => take(data, pos, *n)?.1,
        Kind::Bytes => {
            let (len, p) = length(data, pos)?;
            take(data, p, len)?.1
        }
        Kind::String => {
            let (len, p) = length(data, pos)?;
            let (bytes, end) = take(data, p, len)?;
            std::str::from_utf8(bytes).map_err(|e| format!("string is not UTF-8 ({e})"))?;
            end
        }
        // Readers parse these (apache-avro refuses the datum otherwise); found by the
        // property tests, which decode every accepted batch with apache-avro.
        Kind::Uuid => {
            let (len, p) = length(data, pos)?;
            let (bytes, end) = take(data, p, len)?;
            let text = std::str::from_utf8(bytes).map_err(|e| format!("uuid is not UTF-8 ({e})"))?;
            uuid::Uuid::parse_str(text).map_err(|e| format!("{text:?} is not a UUID ({e})"))?;
            end
        }
        Kind::Date => {
            let (days, p) = long(data, pos)?;
            if !(MIN_SECONDS / 86_400..=MAX_SECONDS / 86_400).contains(&days) {
                return Err(format!("date {days} days from 1970 is outside years 1 to 9999"));
            }
            p
        }
        Kind::Timestamp { per_second } => {
            let (v, p) = long(data, pos)?;
            let secs = v.div_euclid(*per_second);
            if !(MIN_SECONDS..=MAX_SECONDS).contains(&secs) {
                return Err(format!("timestamp {v} is outside years 1 to 9999"));
            }
            p
        }
        Kind::Decimal { precision, fixed, .. } => {
            let (bytes, end) = match fixed {
                Some(n) => take(data, pos, *n)?,
                None => {
                    let (len, p) = length(data, pos)?;
                    take(data, p, len)?
                }
            };
            check_decimal(bytes, *precision)?;
            end
        }
        Kind::Enum(symbols) => {
            let (i, p) = long(data, pos)?;
            if i < 0 || i as u64 >= symbols.len() as u64 {
                return Err(format!("enum index {i} is not one of the {} symbols", symbols.len()));
            }
            p
        }
        Kind::Union(branches) => {
            let (i, p) = long(data, pos)?;
            let branch = usize::try_from(i).ok().and_then(|i| branches.get(i)).ok_or_else(|| {
                format!("union branch {i} does not exist (the field has {} branches)", branches.len())
            })?;
            value(branch, data, p)?
        }
        Kind::Record(fields) => {
            let mut p = pos;
            for (name, kind) in fields {
                p = value(kind, data, p).map_err(|e| format!("in `{name}`: {e}"))?;
            }
            p
        }
        Kind::Array(item) => blocks(data, pos, |p| value(item, data, p))?,
        Kind::Map(item) => blocks(data, pos, |p| {
            let (len, p) = length(data, p)?;
            let (key, p) = take(data, p, len)?;
            std::str::from_utf8(key).map_err(|e| format!("map key is not UTF-8 ({e})"))?;
            value(item, data, p)
        })?,
    })
}

/// Arrays and maps: blocks of items, each block a count (negative = count then byte
/// size), ending with a zero count.
fn blocks(data: &[u8], mut pos: usize, mut item: impl FnMut(usize) -> Check<usize>) -> Check<usize> {
    loop {
        let (count, p) = long(data, pos)?;
        pos = p;
        if count == 0 {
            return Ok(pos);
        }
        let count = if count < 0 {
            let (size, p) = long(data, pos)?;
            let start = p;
            let mut q = p;
            for _ in 0..count.unsigned_abs() {
                q = item(q)?;
            }
            if q - start != size as usize {
                return Err(format!("a block says it is {size} bytes but its items take {}", q - start));
            }
            pos = q;
            continue;
        } else {
            count
        };
        for _ in 0..count {
            pos = item(pos)?;
        }
    }
}

/// A decimal's unscaled two's-complement value must stay below 10^precision, or readers
/// would hand analysts a number the schema says cannot exist.
fn check_decimal(bytes: &[u8], precision: u32) -> Check<()> {
    if bytes.is_empty() {
        return Err("decimal has no bytes".into());
    }
    if bytes.len() > 17 {
        return Err(format!("decimal takes {} bytes, more than 38 digits", bytes.len()));
    }
    let negative = bytes[0] & 0x80 != 0;
    let mut v: i128 = if negative { -1 } else { 0 };
    for &b in bytes {
        v = v.checked_mul(256).map(|x| x | b as i128).ok_or("decimal is wider than 38 digits")?;
    }
    let limit = 10i128.pow(precision);
    if v.unsigned_abs() >= limit as u128 {
        return Err(format!("decimal unscaled value {v} has more than {precision} digits"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::SchemaError;

    fn schema() -> RecordSchema {
        RecordSchema::parse(
            r#"{"type":"record","name":"t","fields":[
                {"name":"id","type":"string"},
                {"name":"n","type":["null","long"]},
                {"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":4,"scale":2}}]}"#,
        )
        .unwrap()
    }

    #[test]
    fn accepts_exact_batches_and_refuses_lies() {
        let s = schema();
        // "ab", null, 12.34 (1234 = 0x04d2)
        let one = [4, b'a', b'b', 0, 4, 0x04, 0xd2];
        assert_eq!(validate_batch(&s, 1, &one), Ok(vec![7]));
        let two = [one, one].concat();
        assert_eq!(validate_batch(&s, 2, &two), Ok(vec![7, 14]));
        // Claims two records, holds one.
        assert!(validate_batch(&s, 2, &one).unwrap_err().reason.contains("is the record count right"));
        // Claims one, holds two.
        assert!(validate_batch(&s, 1, &two).unwrap_err().reason.contains("bytes follow"));
        // Claims four billion, holds one: refused without reserving room for the claim.
        let e = validate_batch(&s, u32::MAX, &one).unwrap_err();
        assert_eq!(e.record, 1);
        assert!(e.reason.contains("is the record count right"));
    }

    /// Regressions (found writing the fuzz targets): values that take no bytes would let a tiny batch claim
    /// 2^63 array items (a validator that never returns) or billions of records.
    #[test]
    fn schemas_whose_values_take_no_bytes_are_refused() {
        let refused = |fields: &str| RecordSchema::parse(&format!(r#"{{"type":"record","name":"t","fields":[{fields}]}}"#));
        for fields in [
            r#"{"name":"a","type":{"type":"array","items":"null"}}"#,
            r#"{"name":"a","type":{"type":"array","items":{"type":"fixed","name":"z","size":0}}}"#,
            r#"{"name":"a","type":{"type":"array","items":{"type":"record","name":"e","fields":[{"name":"n","type":"null"}]}}}"#,
            r#"{"name":"a","type":["null",{"type":"array","items":"null"}]}"#,
        ] {
            let e = refused(fields).unwrap_err();
            assert!(matches!(e, SchemaError::Unsupported { .. }), "{fields}: {e}");
            assert!(e.to_string().contains("take no bytes"), "{e}");
        }
        assert!(matches!(refused(""), Err(SchemaError::NoData)));
        assert!(matches!(refused(r#"{"name":"n","type":"null"}"#), Err(SchemaError::NoData)));
        // Zero-width values beside real data, and maps of them (each entry has a key), are fine.
        let ok = refused(r#"{"name":"n","type":"null"},{"name":"m","type":{"type":"map","values":"null"}},{"name":"i","type":"int"}"#).unwrap();
        // i64::MAX map entries in ten bytes: refused at the first missing key, at once.
        let huge = [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert!(validate_batch(&ok, 1, &huge).is_err());
        assert_eq!(validate_batch(&ok, 1, &[2, 2, b'k', 0, 4]), Ok(vec![5]));
    }

    #[test]
    fn uuid_strings_must_parse() {
        let s = RecordSchema::parse(r#"{"type":"record","name":"t","fields":[{"name":"u","type":{"type":"string","logicalType":"uuid"}}]}"#).unwrap();
        let datum = |text: &str| [&[(text.len() * 2) as u8][..], text.as_bytes()].concat();
        let good = datum("67e55044-10b1-426f-9247-bb680e5fe0c8");
        assert_eq!(validate_batch(&s, 1, &good), Ok(vec![good.len() as u32]));
        let e = validate_batch(&s, 1, &datum("not-a-uuid")).unwrap_err();
        assert!(e.reason.contains("is not a UUID"), "{e}");
    }

    #[test]
    fn refuses_bad_values_naming_the_field() {
        let s = schema();
        let bad_utf8 = [2, 0xff, 0, 4, 0x04, 0xd2];
        let e = validate_batch(&s, 1, &bad_utf8).unwrap_err();
        assert_eq!((e.record, e.field.as_str()), (0, "id"));
        let bad_branch = [2, b'a', 8, 4, 0x04, 0xd2];
        assert!(validate_batch(&s, 1, &bad_branch).unwrap_err().reason.contains("union branch 4"));
        // 10000 has five digits; precision is 4.
        let too_wide = [2, b'a', 0, 4, 0x27, 0x10];
        let e = validate_batch(&s, 1, &too_wide).unwrap_err();
        assert_eq!(e.field, "amount");
    }
}
