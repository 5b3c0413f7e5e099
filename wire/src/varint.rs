//! Avro's `long` encoding (Avro 1.11 spec, "Binary encoding"): zig-zag, so small
//! negative numbers stay short, then base-128 varint, least significant group first.

use std::fmt;

/// Why a `long` could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LongError {
    /// The bytes end before the varint does.
    Truncated,
    /// The varint goes on past 64 bits.
    TooLong,
}

impl fmt::Display for LongError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LongError::Truncated => "the bytes end inside a number",
            LongError::TooLong => "a number is longer than 64 bits",
        })
    }
}

impl std::error::Error for LongError {}

/// Maps signed to unsigned so that small magnitudes of either sign stay small:
/// 0, -1, 1, -2, ... become 0, 1, 2, 3, ...
#[inline]
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// The inverse of [`zigzag`].
#[inline]
pub fn unzigzag(z: u64) -> i64 {
    ((z >> 1) as i64) ^ -((z & 1) as i64)
}

/// Appends `v` as an Avro `long` (1 to 10 bytes).
#[inline]
pub fn write_long(buf: &mut Vec<u8>, v: i64) {
    let mut z = zigzag(v);
    while z >= 0x80 {
        buf.push((z as u8) | 0x80);
        z >>= 7;
    }
    buf.push(z as u8);
}

/// Reads a `long` at `data[pos..]`: the value and where the next byte is.
#[inline(always)]
pub fn read_long(data: &[u8], pos: usize) -> Result<(i64, usize), LongError> {
    // Most values (lengths, small integers, union branches) take one byte.
    match data.get(pos) {
        Some(&b) if b < 0x80 => Ok((unzigzag(b as u64), pos + 1)),
        Some(_) => read_long_multi(data, pos),
        None => Err(LongError::Truncated),
    }
}

#[inline(never)]
fn read_long_multi(data: &[u8], mut pos: usize) -> Result<(i64, usize), LongError> {
    let mut z: u64 = 0;
    for shift in (0..64).step_by(7) {
        let b = *data.get(pos).ok_or(LongError::Truncated)?;
        pos += 1;
        // The tenth byte holds bit 63 alone.
        if shift == 63 && b > 1 {
            return Err(LongError::TooLong);
        }
        z |= ((b & 0x7f) as u64) << shift;
        if b & 0x80 == 0 {
            return Ok((unzigzag(z), pos));
        }
    }
    Err(LongError::TooLong)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encoded(v: i64) -> Vec<u8> {
        let mut buf = Vec::new();
        write_long(&mut buf, v);
        buf
    }

    #[test]
    fn spec_examples_and_edges() {
        // The Avro spec's table.
        for (v, bytes) in [(0, &[0x00][..]), (-1, &[0x01]), (1, &[0x02]), (-2, &[0x03]), (2, &[0x04]), (-64, &[0x7f]), (64, &[0x80, 0x01])]
        {
            assert_eq!(encoded(v), bytes, "{v}");
            assert_eq!(read_long(bytes, 0), Ok((v, bytes.len())));
        }
        assert_eq!(zigzag(i64::MAX), u64::MAX - 1);
        assert_eq!(zigzag(i64::MIN), u64::MAX);
        assert_eq!(encoded(i64::MIN), [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        assert_eq!(encoded(i64::MAX), [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        for v in [i64::MIN, i64::MAX, i64::MIN + 1, i64::MAX - 1] {
            assert_eq!(read_long(&encoded(v), 0), Ok((v, 10)));
        }
    }

    #[test]
    fn malformed_longs_are_refused() {
        assert_eq!(read_long(&[], 0), Err(LongError::Truncated));
        assert_eq!(read_long(&[0x00], 1), Err(LongError::Truncated));
        assert_eq!(read_long(&[0x80, 0x80], 0), Err(LongError::Truncated));
        // A tenth byte above 1 would set bits past 63.
        assert_eq!(read_long(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02], 0), Err(LongError::TooLong));
        // An eleventh byte.
        assert_eq!(read_long(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x81, 0x00], 0), Err(LongError::TooLong));
        // Non-minimal encodings still read (Avro readers accept them).
        assert_eq!(read_long(&[0x82, 0x00], 0), Ok((1, 2)));
    }

    proptest! {
        #[test]
        fn longs_round_trip(v: i64, prefix in proptest::collection::vec(any::<u8>(), 0..4)) {
            prop_assert_eq!(unzigzag(zigzag(v)), v);
            let mut buf = prefix.clone();
            write_long(&mut buf, v);
            prop_assert!(buf.len() - prefix.len() <= 10);
            prop_assert_eq!(read_long(&buf, prefix.len()), Ok((v, buf.len())));
            // Every cut-short encoding is refused, not misread.
            for cut in prefix.len()..buf.len() {
                prop_assert_eq!(read_long(&buf[..cut], prefix.len()), Err(LongError::Truncated));
            }
        }

        #[test]
        fn any_bytes_read_without_panic(data in proptest::collection::vec(any::<u8>(), 0..16), pos in 0usize..20) {
            if let Ok((v, end)) = read_long(&data, pos) {
                prop_assert!(end > pos && end <= data.len());
                // A value read back encodes to at most the bytes it came from.
                prop_assert!(encoded(v).len() <= end - pos);
            }
        }
    }
}
