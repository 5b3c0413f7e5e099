//! The Avro binary primitives record batches are made of, beyond `long`
//! ([`crate::varint`]): `int`, `bytes`, `string`, nullable unions, timestamps.

use crate::varint::{read_long, write_long};

/// The branch byte of a `["null", T]` union's null: branch 0, a zig-zag `long`.
pub const NULL_BRANCH: u8 = 0;
/// The branch byte of a `["null", T]` union's value: branch 1, a zig-zag `long`; the
/// value follows.
pub const VALUE_BRANCH: u8 = 2;

/// First and last instants of years 1 to 9999, in seconds since 1970: the range every
/// Avro reader decodes timestamps and dates in.
pub const MIN_SECONDS: i64 = -62_135_596_800;
pub const MAX_SECONDS: i64 = 253_402_300_799;

/// The timestamps of `per_second` units a second within years 1 to 9999, inclusive.
pub fn timestamp_range(per_second: i64) -> (i64, i64) {
    (MIN_SECONDS * per_second, MAX_SECONDS * per_second + (per_second - 1))
}

/// Appends an Avro `int` (the same encoding as `long`, for 32-bit values).
#[inline]
pub fn write_int(buf: &mut Vec<u8>, v: i32) {
    write_long(buf, v as i64);
}

/// Appends Avro `bytes`: the length as a `long`, then the bytes.
#[inline]
pub fn write_bytes(buf: &mut Vec<u8>, v: &[u8]) {
    write_long(buf, v.len() as i64);
    buf.extend_from_slice(v);
}

/// Appends an Avro `string`: the same as `bytes`, of UTF-8.
#[inline]
pub fn write_string(buf: &mut Vec<u8>, v: &str) {
    write_bytes(buf, v.as_bytes());
}

/// Reads Avro `bytes` at `data[pos..]`: the bytes and where the next value starts;
/// `None` when the length is malformed or negative, or runs past the data.
#[inline]
pub fn read_bytes(data: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let (len, at) = read_long(data, pos).ok()?;
    let end = at.checked_add(usize::try_from(len).ok()?)?;
    Some((data.get(at..end)?, end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn unions_and_ranges() {
        let mut buf = Vec::new();
        write_long(&mut buf, 0);
        write_long(&mut buf, 1);
        assert_eq!(buf, [NULL_BRANCH, VALUE_BRANCH]);
        assert_eq!(timestamp_range(1_000_000), (-62_135_596_800_000_000, 253_402_300_799_999_999));
        assert_eq!(timestamp_range(1), (MIN_SECONDS, MAX_SECONDS));
    }

    #[test]
    fn bad_bytes_are_refused() {
        assert_eq!(read_bytes(&[], 0), None);
        // Length 2, one byte.
        assert_eq!(read_bytes(&[4, b'a'], 0), None);
        // Length -1.
        assert_eq!(read_bytes(&[1, b'a'], 0), None);
        // Length i64::MAX.
        assert_eq!(read_bytes(&[0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], 0), None);
        assert_eq!(read_bytes(&[0, 9], 0), Some((&[][..], 1)));
    }

    proptest! {
        #[test]
        fn strings_and_bytes_round_trip(s: String, b: Vec<u8>, i: i32) {
            let mut buf = Vec::new();
            write_string(&mut buf, &s);
            let mid = buf.len();
            write_bytes(&mut buf, &b);
            let ints = buf.len();
            write_int(&mut buf, i);
            prop_assert_eq!(read_bytes(&buf, 0), Some((s.as_bytes(), mid)));
            prop_assert_eq!(read_bytes(&buf, mid), Some((&b[..], ints)));
            prop_assert_eq!(read_long(&buf, ints), Ok((i as i64, buf.len())));
        }
    }
}
