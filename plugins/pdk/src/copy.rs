//! The hot loop of [`Export::copy_table`](crate::Export::copy_table): one row of a row
//! batch straight into one Avro datum, without decoding what need not be decoded.
//!
//! The row-batch encoding and Avro share their integer and string encodings (zig-zag
//! varint `long`s; a `long` length then the bytes), so a text cell bound for a string
//! field, or an integer cell bound for a `long`, `int` or timestamp, is copied as it
//! stands once its bounds (and, for `int` and timestamps, its range) are checked.
//! Decimal text is parsed with 64-bit arithmetic when `precision <= 18`. Anything else,
//! and every value that does not fit, takes the general path ([`write_field`]), which
//! converts or says why not; both paths write the same bytes.
//!
//! Text is copied without a UTF-8 check here: the host encodes text cells from UTF-8
//! strings, and it checks every string of every record batch again anyway.

use crate::avro::RecordWriter;
use crate::describe::{Field, Type};
use crate::export::write_field;
use crate::rows::{decode_cell, read_long};

/// What one field needs from its cell, taken from the [`Field`] once per export.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Step {
    ty: Type,
    nullable: bool,
}

impl Step {
    pub(crate) fn of(field: &Field) -> Self {
        Step { ty: field.ty, nullable: field.nullable }
    }
}

/// Why a row could not be copied.
#[derive(Debug, PartialEq)]
pub(crate) enum RowFault {
    /// The batch's bytes do not hold a well-formed cell here.
    Corrupt,
    /// Field `field`'s value does not fit it; `why` says how.
    Misfit { field: usize, why: String },
}

/// Years 1 to 9999 in microseconds since 1970, the range every reader decodes.
pub(crate) const TIMESTAMPS: core::ops::RangeInclusive<i64> = -62_135_596_800_000_000..=253_402_300_799_999_999;

/// Appends one record made of the row at `data[pos..]` (the first `steps.len()` of its
/// `columns` cells are the fields, in order; the rest are skipped) and returns where
/// the next row starts. On a fault, `out` may hold part of the record.
#[inline(never)]
pub(crate) fn copy_row(steps: &[Step], fields: &[Field], columns: usize, data: &[u8], mut pos: usize, out: &mut Vec<u8>) -> Result<usize, RowFault> {
    for (i, step) in steps.iter().enumerate() {
        let Some(&tag) = data.get(pos) else { return Err(RowFault::Corrupt) };
        if tag == 0 && step.nullable {
            out.push(0);
            pos += 1;
            continue;
        }
        let copied = match (step.ty, tag) {
            (Type::String, 3) => {
                let (len, at) = read_long(data, pos + 1).ok_or(RowFault::Corrupt)?;
                let end = usize::try_from(len).ok().and_then(|l| at.checked_add(l)).filter(|&e| e <= data.len()).ok_or(RowFault::Corrupt)?;
                branch(out, step.nullable);
                put(out, &data[pos + 1..end]);
                Some(end)
            }
            (Type::Long | Type::TimestampMicros | Type::Int, 1) => {
                let (v, end) = read_long(data, pos + 1).ok_or(RowFault::Corrupt)?;
                let fits = match step.ty {
                    Type::Long => true,
                    Type::Int => i32::try_from(v).is_ok(),
                    _ => TIMESTAMPS.contains(&v),
                };
                fits.then(|| {
                    branch(out, step.nullable);
                    put(out, &data[pos + 1..end]);
                    end
                })
            }
            (Type::Boolean, 1) => match data.get(pos + 1) {
                // The varints of 0 and 1.
                Some(&b @ (0 | 2)) => {
                    branch(out, step.nullable);
                    out.push(b >> 1);
                    Some(pos + 2)
                }
                _ => None,
            },
            (Type::Double, 2) => {
                let bytes = data.get(pos + 1..pos + 9).ok_or(RowFault::Corrupt)?;
                branch(out, step.nullable);
                put(out, bytes);
                Some(pos + 9)
            }
            (Type::Decimal { precision, scale }, 3) => {
                let (len, at) = read_long(data, pos + 1).ok_or(RowFault::Corrupt)?;
                let end = usize::try_from(len).ok().and_then(|l| at.checked_add(l)).filter(|&e| e <= data.len()).ok_or(RowFault::Corrupt)?;
                parse_decimal_small(&data[at..end], precision, scale).map(|v| {
                    branch(out, step.nullable);
                    write_decimal_small(out, v);
                    end
                })
            }
            _ => None,
        };
        pos = match copied {
            Some(next) => next,
            // The general path: converts what it can, and says why the rest does not fit.
            None => {
                let (cell, next) = decode_cell(data, pos).ok_or(RowFault::Corrupt)?;
                write_field(&mut RecordWriter { buf: out }, &fields[i], cell).map_err(|why| RowFault::Misfit { field: i, why })?;
                next
            }
        };
    }
    for _ in steps.len()..columns {
        pos = decode_cell(data, pos).ok_or(RowFault::Corrupt)?.1;
    }
    Ok(pos)
}

#[inline(always)]
fn branch(out: &mut Vec<u8>, nullable: bool) {
    if nullable {
        out.push(2);
    }
}

/// `out.extend_from_slice(src)` for the short copies a row is made of (ids, numbers),
/// with a few overlapping word moves: a `memcpy` compiles to `memory.copy`, which the
/// runtime implements as a call into the host, dearer than these short copies.
#[inline(always)]
fn put(out: &mut Vec<u8>, src: &[u8]) {
    let n = src.len();
    if n > 64 {
        out.extend_from_slice(src);
        return;
    }
    out.reserve(n);
    // SAFETY: `reserve` made room for `n` bytes past `len`; each move below reads
    // within `src` and writes within those `n` bytes (the moves overlap instead of
    // running past either end), and together they cover every byte, so `n` more bytes
    // are initialised before `set_len`.
    unsafe {
        let s = src.as_ptr();
        let d = out.as_mut_ptr().add(out.len());
        let w8 = |at: usize| d.add(at).cast::<u64>().write_unaligned(s.add(at).cast::<u64>().read_unaligned());
        let w4 = |at: usize| d.add(at).cast::<u32>().write_unaligned(s.add(at).cast::<u32>().read_unaligned());
        if n >= 8 {
            if n > 32 {
                w8(16);
                w8(24);
                w8(n - 32);
                w8(n - 24);
            }
            if n > 16 {
                w8(8);
                w8(n - 16);
            }
            w8(0);
            w8(n - 8);
        } else if n >= 4 {
            w4(0);
            w4(n - 4);
        } else if n > 0 {
            *d = *s;
            *d.add(n / 2) = *s.add(n / 2);
            *d.add(n - 1) = *s.add(n - 1);
        }
        out.set_len(out.len() + n);
    }
}

const POW10: [u64; 19] = {
    let mut t = [1u64; 19];
    let mut i = 1;
    while i < 19 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

/// `parse_decimal` for `precision <= 18` with 64-bit arithmetic: `Some` only when the
/// text is a plain decimal that fits; `None` leaves the verdict (and any error) to the
/// general parser.
#[inline]
pub(crate) fn parse_decimal_small(text: &[u8], precision: u8, scale: u8) -> Option<i64> {
    if precision > 18 || scale > precision {
        return None;
    }
    let (neg, body) = match text.first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    // At most 18 digits, so `v < 10^18` cannot overflow.
    let mut v: u64 = 0;
    let mut digits = 0usize;
    let mut point: Option<usize> = None;
    for &b in body {
        let d = b.wrapping_sub(b'0');
        if d < 10 {
            if digits == 18 {
                return None;
            }
            v = v * 10 + d as u64;
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
    let frac = (digits - point.unwrap_or(digits)) as u8;
    if frac > scale {
        return None;
    }
    let shift = (scale - frac) as usize;
    if v >= POW10[precision as usize - shift] {
        return None;
    }
    let v = (v * POW10[shift]) as i64;
    Some(if neg { -v } else { v })
}

/// An Avro decimal (`bytes`, big-endian two's complement, fewest bytes) of a value that
/// fits 64 bits.
#[inline]
pub(crate) fn write_decimal_small(out: &mut Vec<u8>, v: i64) {
    let sign_bits = if v < 0 { v.leading_ones() } else { v.leading_zeros() };
    let n = ((64 - sign_bits) as usize + 1).div_ceil(8);
    out.push((n as u8) << 1); // the length as a zig-zag varint: one byte, n <= 8
    put(out, &v.to_be_bytes()[8 - n..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::parse_decimal_wide;

    fn fields(specs: &[(Type, bool)]) -> Vec<Field> {
        specs.iter().enumerate().map(|(i, &(ty, nullable))| Field { name: format!("f{i}"), column: format!("c{i}"), ty, nullable }).collect()
    }

    fn long(buf: &mut Vec<u8>, v: i64) {
        crate::avro::write_long(buf, v)
    }

    /// The cells as the host encodes them.
    #[derive(Clone, Copy, Debug)]
    enum C<'a> {
        N,
        I(i64),
        R(f64),
        T(&'a str),
        B(&'a [u8]),
    }

    fn encode(cells: &[C]) -> Vec<u8> {
        let mut d = Vec::new();
        for c in cells {
            match *c {
                C::N => d.push(0),
                C::I(v) => {
                    d.push(1);
                    long(&mut d, v)
                }
                C::R(r) => {
                    d.push(2);
                    d.extend_from_slice(&r.to_le_bytes())
                }
                C::T(t) => {
                    d.push(3);
                    long(&mut d, t.len() as i64);
                    d.extend_from_slice(t.as_bytes())
                }
                C::B(b) => {
                    d.push(4);
                    long(&mut d, b.len() as i64);
                    d.extend_from_slice(b)
                }
            }
        }
        d
    }

    /// The general path alone, as `copy_table` wrote records before the fast path.
    fn general(fields: &[Field], columns: usize, data: &[u8]) -> Result<(Vec<u8>, usize), RowFault> {
        let mut out = Vec::new();
        let mut pos = 0;
        for (i, f) in fields.iter().enumerate() {
            let (cell, next) = decode_cell(data, pos).ok_or(RowFault::Corrupt)?;
            write_field(&mut RecordWriter { buf: &mut out }, f, cell).map_err(|why| RowFault::Misfit { field: i, why })?;
            pos = next;
        }
        for _ in fields.len()..columns {
            pos = decode_cell(data, pos).ok_or(RowFault::Corrupt)?.1;
        }
        Ok((out, pos))
    }

    fn same(specs: &[(Type, bool)], cells: &[C]) {
        let f = fields(specs);
        let steps: Vec<Step> = f.iter().map(Step::of).collect();
        let data = encode(cells);
        let mut out = Vec::new();
        let fast = copy_row(&steps, &f, cells.len(), &data, 0, &mut out).map(|p| (out, p));
        let slow = general(&f, cells.len(), &data);
        match (&fast, &slow) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{specs:?} {cells:?}"),
            (Err(a), Err(b)) => assert_eq!(a, b, "{specs:?} {cells:?}"),
            _ => panic!("{specs:?} {cells:?}: fast {fast:?}, general {slow:?}"),
        }
    }

    const D14: Type = Type::Decimal { precision: 14, scale: 2 };
    const D9: Type = Type::Decimal { precision: 9, scale: 6 };
    const D18: Type = Type::Decimal { precision: 18, scale: 0 };
    const D30: Type = Type::Decimal { precision: 30, scale: 4 };

    #[test]
    fn fast_path_writes_what_the_general_path_writes() {
        let types = [Type::String, Type::Long, Type::Int, Type::Boolean, Type::Double, Type::TimestampMicros, D14, D9, D18, D30];
        let texts = [
            "", "x", "héllo", "0", "-0", "+1", "12.3", "-12.34", "1.234", ".5", "5.", ".", "-", "+", "1.2.3", "1e3", " 1", "99999999999999.99",
            "999999999999.99", "-999999999999.99", "1000000000000.00", "0.000001", "-180.000000", "180.123456", "123.4567890",
            "999999999999999999", "1000000000000000000", "0000000000000000000001", "-9223372036854775808", "12345678901234567890.1234",
            "00000000000000000.5", "0.00000000000000000", "127", "128", "-128", "-129", "32767", "32768", "8388608", "-8388609",
        ];
        let mut cells: Vec<C> = vec![C::N, C::R(1.5), C::R(-0.0), C::B(b"\x00\xff"), C::B(b"")];
        for i in [0, 1, -1, 63, 64, -64, -65, 2, 127, 128, i32::MAX as i64, i32::MIN as i64, i32::MAX as i64 + 1, i64::MAX, i64::MIN] {
            cells.push(C::I(i));
        }
        cells.push(C::I(*TIMESTAMPS.start()));
        cells.push(C::I(*TIMESTAMPS.end()));
        cells.push(C::I(*TIMESTAMPS.end() + 1));
        cells.push(C::I(TIMESTAMPS.start() - 1));
        cells.extend(texts.iter().map(|t| C::T(t)));
        let text_long: String = "y".repeat(300);
        cells.push(C::T(&text_long));
        for ty in types {
            for nullable in [false, true] {
                for &c in &cells {
                    // The value alone, then between others, with a skipped extra column.
                    same(&[(ty, nullable)], &[c]);
                    same(&[(Type::String, false), (ty, nullable), (Type::Long, true)], &[C::T("a"), c, C::N, C::I(7)]);
                }
            }
        }
    }

    #[test]
    fn short_copies_are_exact() {
        let src: Vec<u8> = (1..=100).collect();
        for start in [0, 1, 3] {
            for n in 0..=(100 - start) {
                let mut out = vec![0xee; start];
                put(&mut out, &src[start..start + n]);
                assert_eq!(&out[..start], &vec![0xee; start][..]);
                assert_eq!(&out[start..], &src[start..start + n], "n {n}");
            }
        }
    }

    #[test]
    fn cut_short_cells_are_corrupt() {
        let f = fields(&[(Type::String, false), (Type::Long, false)]);
        let steps: Vec<Step> = f.iter().map(Step::of).collect();
        let data = encode(&[C::T("abc"), C::I(300)]);
        for cut in 0..data.len() {
            let mut out = Vec::new();
            assert_eq!(copy_row(&steps, &f, 2, &data[..cut], 0, &mut out), Err(RowFault::Corrupt), "cut at {cut}");
        }
        let mut out = Vec::new();
        assert_eq!(copy_row(&steps, &f, 2, &[9], 0, &mut out), Err(RowFault::Corrupt));
        // A length past the end, and a negative one.
        assert_eq!(copy_row(&steps, &f, 2, &[3, 0x7e, b'a'], 0, &mut out), Err(RowFault::Corrupt));
        assert_eq!(copy_row(&steps, &f, 2, &[3, 0x01, b'a'], 0, &mut out), Err(RowFault::Corrupt));
    }

    #[test]
    fn small_decimals_agree_with_the_general_parser() {
        for (p, s) in [(14u8, 2u8), (9, 6), (18, 0), (18, 18), (3, 1), (1, 0)] {
            for t in ["0", "1", "-1", "12.3", "12.345", "999", "-99.9", "9.99", "0.5", "00.50", "+7", "-", ".", "", "1.", ".1", "1..", "a"] {
                if let Some(v) = parse_decimal_small(t.as_bytes(), p, s) {
                    assert_eq!(Some(v as i128), parse_decimal_wide(t, p, s), "{t} ({p},{s})");
                }
            }
        }
        for v in [0i64, 1, -1, 127, 128, -128, -129, 255, 256, 32767, -32768, i64::MAX, i64::MIN, 99_999_999_999_999] {
            let mut a = Vec::new();
            write_decimal_small(&mut a, v);
            let mut b = Vec::new();
            RecordWriter { buf: &mut b }.decimal(v as i128);
            assert_eq!(a, b, "{v}");
        }
    }
}
