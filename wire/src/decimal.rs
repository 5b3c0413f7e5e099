//! Exact decimals as Avro carries them: an unscaled integer (`12.34` at scale 2 is
//! 1234) in big-endian two's complement, in a `bytes` value. Never a float.

use crate::avro::write_bytes;

/// Parses `-123.45` exactly into its unscaled value at `scale`; `None` when it is not a
/// plain decimal (optional sign, digits, at most one point, at least one digit), has
/// more fractional digits than `scale`, or more digits than `precision` at `scale`.
/// `.5`, `7.` and `+1` are decimals; `1e3`, ` 1` and `.` are not.
#[inline]
pub fn parse(text: &[u8], precision: u32, scale: u32) -> Option<i128> {
    let (neg, body) = match text.first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    // 18 digits always fit 64 bits, so the common case never needs 128-bit arithmetic.
    let mut small: u64 = 0;
    let mut wide: i128 = 0;
    let mut digits = 0u32;
    let mut point: Option<u32> = None;
    for &b in body {
        let d = b.wrapping_sub(b'0');
        if d < 10 {
            if digits < 18 {
                small = small * 10 + d as u64;
            } else {
                if digits == 18 {
                    wide = small as i128;
                }
                wide = wide.checked_mul(10)?.checked_add(d as i128)?;
            }
            digits += 1;
        } else if b == b'.' && point.is_none() {
            point = Some(digits);
        } else {
            return None;
        }
    }
    if digits == 0 {
        return None;
    }
    let v = if digits > 18 { wide } else { small as i128 };
    let frac = digits - point.unwrap_or(digits);
    if frac > scale {
        return None;
    }
    let v = rescale(v, frac, precision, scale)?;
    Some(if neg { -v } else { v })
}

/// An integer as its unscaled value at `scale`; `None` when it has more than
/// `precision` digits there.
#[inline]
pub fn from_integer(n: i64, precision: u32, scale: u32) -> Option<i128> {
    rescale(n as i128, 0, precision, scale)
}

fn rescale(v: i128, from_scale: u32, precision: u32, scale: u32) -> Option<i128> {
    let v = v.checked_mul(10i128.checked_pow(scale - from_scale)?)?;
    fits(v, precision).then_some(v)
}

/// Whether an unscaled value has at most `precision` digits (is below 10^precision).
#[inline]
pub fn fits(unscaled: i128, precision: u32) -> bool {
    10i128.checked_pow(precision).is_some_and(|limit| unscaled.unsigned_abs() < limit as u128)
}

/// How many bytes the fewest-byte two's complement of `unscaled` takes (1 to 16).
#[inline]
pub fn fewest_bytes(unscaled: i128) -> usize {
    let sign_bits = if unscaled < 0 { unscaled.leading_ones() } else { unscaled.leading_zeros() };
    ((128 - sign_bits) as usize + 1).div_ceil(8)
}

/// Appends an Avro `bytes` decimal: big-endian two's complement in the fewest bytes.
#[inline]
pub fn write(buf: &mut Vec<u8>, unscaled: i128) {
    write_bytes(buf, &unscaled.to_be_bytes()[16 - fewest_bytes(unscaled)..]);
}

/// The value of big-endian two's-complement bytes (empty is 0); `None` when it does not
/// fit 128 bits.
pub fn from_twos_complement(be: &[u8]) -> Option<i128> {
    let mut v: i128 = if be.first().is_some_and(|b| b & 0x80 != 0) { -1 } else { 0 };
    for &b in be {
        v = v.checked_mul(256)? | b as i128;
    }
    Some(v)
}

/// An unscaled value at `scale` as exact decimal text: `-0.05`, `12.34`, `7`.
pub fn to_text(unscaled: i128, scale: u32) -> String {
    let digits = format!("{:0>width$}", unscaled.unsigned_abs(), width = scale as usize + 1);
    let (int, frac) = digits.split_at(digits.len() - scale as usize);
    let sign = if unscaled < 0 { "-" } else { "" };
    if scale == 0 { format!("{sign}{int}") } else { format!("{sign}{int}.{frac}") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::avro::read_bytes;
    use proptest::prelude::*;

    fn p(text: &str, precision: u32, scale: u32) -> Option<i128> {
        parse(text.as_bytes(), precision, scale)
    }

    #[test]
    fn text_shapes() {
        assert_eq!(p("12.3", 14, 2), Some(1230));
        assert_eq!(p("-0.05", 14, 2), Some(-5));
        assert_eq!(p("+7", 3, 1), Some(70));
        assert_eq!(p(".5", 3, 1), Some(5));
        assert_eq!(p("7.", 3, 1), Some(70));
        assert_eq!(p("-0", 3, 1), Some(0));
        assert_eq!(p("99999999999999.99", 16, 2), Some(9_999_999_999_999_999));
        assert_eq!(p("000000000000000000000000001.5", 2, 1), Some(15));
        // 38 nines: the widest decimal; 39 digits are refused.
        let nines = "9".repeat(38);
        assert_eq!(p(&nines, 38, 0), Some(10i128.pow(38) - 1));
        assert_eq!(p(&format!("-{nines}"), 38, 0), Some(1 - 10i128.pow(38)));
        assert_eq!(p(&"9".repeat(39), 38, 0), None);
        assert_eq!(p(&"9".repeat(60), 38, 0), None);
        for refused in ["1.234", "1e3", " 1", "1 ", ".", "", "-", "+", "--1", "1.2.3", "١", "0x1"] {
            assert_eq!(p(refused, 14, 2), None, "{refused:?}");
        }
        // Precision counts digits at the scale: 100.0 has four.
        assert_eq!(p("100", 3, 1), None);
        assert_eq!(p("99.9", 3, 1), Some(999));
        assert_eq!(p("1", 39, 0), None, "no precision above 38");
    }

    #[test]
    fn integers_scale_exactly() {
        assert_eq!(from_integer(12, 14, 2), Some(1200));
        assert_eq!(from_integer(-5, 3, 2), Some(-500));
        assert_eq!(from_integer(-10, 3, 2), None);
        assert_eq!(from_integer(i64::MIN, 19, 0), Some(i64::MIN as i128));
        assert_eq!(from_integer(i64::MAX, 38, 18), Some(i64::MAX as i128 * 10i128.pow(18)));
        assert_eq!(from_integer(i64::MAX, 38, 20), None);
        assert_eq!(from_integer(0, 1, 0), Some(0));
    }

    #[test]
    fn fewest_bytes_two_complement() {
        for (v, be) in [
            (0, &[0x00][..]),
            (-1, &[0xff]),
            (127, &[0x7f]),
            (128, &[0x00, 0x80]),
            (-128, &[0x80]),
            (-129, &[0xff, 0x7f]),
            (1234, &[0x04, 0xd2]),
            (-5, &[0xfb]),
        ] {
            let mut buf = Vec::new();
            write(&mut buf, v);
            assert_eq!(read_bytes(&buf, 0), Some((be, buf.len())), "{v}");
            assert_eq!(from_twos_complement(be), Some(v));
        }
        assert_eq!(fewest_bytes(i128::MIN), 16);
        assert_eq!(fewest_bytes(i128::MAX), 16);
        assert_eq!(from_twos_complement(&[]), Some(0));
        assert_eq!(from_twos_complement(&[0x00; 17]), Some(0));
        assert_eq!(from_twos_complement(&[&[0x01][..], &[0x00; 16]].concat()), None);
    }

    #[test]
    fn text_renders_exactly() {
        assert_eq!(to_text(1234, 2), "12.34");
        assert_eq!(to_text(-5, 2), "-0.05");
        assert_eq!(to_text(0, 6), "0.000000");
        assert_eq!(to_text(7, 0), "7");
        assert_eq!(to_text(-7, 0), "-7");
        assert_eq!(to_text(1 - 10i128.pow(38), 38), format!("-0.{}", "9".repeat(38)));
    }

    /// The kit's former encoder: drops leading bytes that only repeat the sign.
    fn stripped(unscaled: i128) -> Vec<u8> {
        let be = unscaled.to_be_bytes();
        let mut start = 0;
        while start < 15 {
            let (b, next) = (be[start], be[start + 1]);
            if !((b == 0x00 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0)) {
                break;
            }
            start += 1;
        }
        be[start..].to_vec()
    }

    proptest! {
        #[test]
        fn unscaled_round_trips(v: i128) {
            let n = fewest_bytes(v);
            let be = &v.to_be_bytes()[16 - n..];
            prop_assert_eq!(be, &stripped(v)[..]);
            prop_assert_eq!(from_twos_complement(be), Some(v));
            // One byte fewer would not do.
            if n > 1 {
                prop_assert_ne!(from_twos_complement(&be[1..]), Some(v));
            }
        }

        #[test]
        fn text_round_trips(v in -(10i128.pow(38) - 1)..10i128.pow(38), scale in 0u32..=38) {
            let text = to_text(v, scale);
            prop_assert_eq!(parse(text.as_bytes(), 38, scale), Some(v));
        }

        #[test]
        fn parse_agrees_with_integers(n: i64, scale in 0u32..=19, precision in 1u32..=38) {
            prop_assert_eq!(parse(n.to_string().as_bytes(), precision, scale), from_integer(n, precision, scale));
        }

        #[test]
        fn any_text_parses_without_panic(text in "[-+0-9.]{0,45}", precision in 0u32..=40, scale in 0u32..=40) {
            if let Some(v) = parse(text.as_bytes(), precision, scale.min(precision)) {
                prop_assert!(fits(v, precision));
            }
        }
    }
}
