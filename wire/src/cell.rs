//! Row batches (host -> plugin, `cursor.next` in `wit/ferry.wit`): a row is one cell per
//! requested column; a cell is a tag byte naming the value's storage class in the
//! source, then its payload.

use crate::avro::{read_bytes, write_bytes};
use crate::decimal;
use crate::varint::{read_long, write_long};

/// No payload.
pub const TAG_NULL: u8 = 0;
/// A `long`.
pub const TAG_INTEGER: u8 = 1;
/// 8 bytes, IEEE 754 binary64, little-endian.
pub const TAG_REAL: u8 = 2;
/// A `long` length, then that many bytes of UTF-8.
pub const TAG_TEXT: u8 = 3;
/// A `long` length, then that many bytes.
pub const TAG_BLOB: u8 = 4;

/// One source value; the variant is the source's storage class.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell<'a> {
    Null,
    Integer(i64),
    Real(f64),
    Text(&'a str),
    Blob(&'a [u8]),
}

impl<'a> Cell<'a> {
    /// The text, if the value is text.
    pub fn text(&self) -> Option<&'a str> {
        match self {
            Cell::Text(t) => Some(t),
            _ => None,
        }
    }

    /// The integer, if the value is one.
    pub fn integer(&self) -> Option<i64> {
        match self {
            Cell::Integer(n) => Some(*n),
            _ => None,
        }
    }

    /// An exact decimal as its unscaled value at `scale` (`"12.3"` at scale 2 is 1230),
    /// from decimal text or an integer; `None` if it does not fit `precision` digits.
    /// The same rule as `records.copy`'s (`wit/ferry.wit`).
    pub fn decimal(&self, precision: u8, scale: u8) -> Option<i128> {
        match self {
            Cell::Text(t) => decimal::parse(t.as_bytes(), precision.into(), scale.into()),
            Cell::Integer(n) => decimal::from_integer(*n, precision.into(), scale.into()),
            _ => None,
        }
    }

    /// How the value reads in an error message (long text cut at 40 bytes).
    pub fn describe(&self) -> String {
        match self {
            Cell::Null => "NULL".into(),
            Cell::Integer(i) => format!("integer {i}"),
            Cell::Real(r) => format!("real {r}"),
            Cell::Text(t) if t.len() > 40 => format!("text {:?}...", &t[..t.floor_char_boundary(40)]),
            Cell::Text(t) => format!("text {t:?}"),
            Cell::Blob(b) => format!("blob of {} bytes", b.len()),
        }
    }
}

/// Appends one cell.
#[inline]
pub fn encode(buf: &mut Vec<u8>, cell: Cell) {
    match cell {
        Cell::Null => buf.push(TAG_NULL),
        Cell::Integer(v) => {
            buf.push(TAG_INTEGER);
            write_long(buf, v);
        }
        Cell::Real(v) => {
            buf.push(TAG_REAL);
            buf.extend_from_slice(&v.to_le_bytes());
        }
        Cell::Text(v) => {
            buf.push(TAG_TEXT);
            write_bytes(buf, v.as_bytes());
        }
        Cell::Blob(v) => {
            buf.push(TAG_BLOB);
            write_bytes(buf, v);
        }
    }
}

/// The cell at `data[pos..]` and where the next one starts; `None` when the bytes end
/// first, the tag is unknown, a length is negative or text is not UTF-8.
#[inline]
pub fn decode(data: &[u8], pos: usize) -> Option<(Cell<'_>, usize)> {
    let tag = *data.get(pos)?;
    let pos = pos + 1;
    Some(match tag {
        TAG_NULL => (Cell::Null, pos),
        TAG_INTEGER => {
            let (v, end) = read_long(data, pos).ok()?;
            (Cell::Integer(v), end)
        }
        TAG_REAL => {
            let raw: [u8; 8] = data.get(pos..pos + 8)?.try_into().ok()?;
            (Cell::Real(f64::from_le_bytes(raw)), pos + 8)
        }
        TAG_TEXT => {
            let (bytes, end) = read_bytes(data, pos)?;
            (Cell::Text(std::str::from_utf8(bytes).ok()?), end)
        }
        TAG_BLOB => {
            let (bytes, end) = read_bytes(data, pos)?;
            (Cell::Blob(bytes), end)
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_wit_table() {
        let mut buf = Vec::new();
        for cell in [Cell::Null, Cell::Integer(-1), Cell::Real(1.5), Cell::Text("é"), Cell::Blob(&[7])] {
            encode(&mut buf, cell);
        }
        let real = 1.5f64.to_le_bytes();
        let expected = [&[0, 1, 0x01, 2][..], &real, &[3, 4, 0xc3, 0xa9, 4, 2, 7]].concat();
        assert_eq!(buf, expected);
    }

    #[test]
    fn malformed_cells_are_refused() {
        for bad in [
            &[][..],
            &[5],                                                             // unknown tag
            &[1],                                                             // integer cut short
            &[1, 0x80],                                                       // varint cut short
            &[2, 0, 0, 0, 0, 0, 0, 0],                                        // 7 of 8 bytes
            &[3, 4, b'a'],                                                    // text shorter than its length
            &[3, 1],                                                          // negative length
            &[3, 2, 0xff],                                                    // not UTF-8
            &[4, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], // i64::MAX bytes
        ] {
            assert_eq!(decode(bad, 0), None, "{bad:?}");
        }
        assert_eq!(decode(&[4, 0], 0), Some((Cell::Blob(&[]), 2)));
    }

    #[test]
    fn cells_read_for_people() {
        assert_eq!(Cell::Null.describe(), "NULL");
        assert_eq!(Cell::Integer(i64::MIN).describe(), "integer -9223372036854775808");
        assert_eq!(Cell::Blob(&[1, 2]).describe(), "blob of 2 bytes");
        let long = "é".repeat(30);
        assert_eq!(Cell::Text(&long).describe(), format!("text {:?}...", "é".repeat(20)));
        assert_eq!(Cell::Text("12.30").decimal(4, 2), Some(1230));
        assert_eq!(Cell::Integer(100).decimal(4, 2), None);
        assert_eq!(Cell::Real(1.0).decimal(4, 2), None);
    }

    type Drawn = (u8, i64, f64, String, Vec<u8>);

    fn as_cell((tag, i, r, t, b): &Drawn) -> Cell<'_> {
        match tag {
            0 => Cell::Null,
            1 => Cell::Integer(*i),
            2 => Cell::Real(*r),
            3 => Cell::Text(t),
            _ => Cell::Blob(b),
        }
    }

    fn cell() -> impl Strategy<Value = Drawn> {
        (0u8..5, any::<i64>(), any::<f64>(), any::<String>(), proptest::collection::vec(any::<u8>(), 0..40))
    }

    proptest! {
        #[test]
        fn rows_round_trip(cells in proptest::collection::vec(cell(), 0..20)) {
            let mut buf = Vec::new();
            for c in &cells {
                encode(&mut buf, as_cell(c));
            }
            let mut pos = 0;
            for c in &cells {
                let (got, next) = decode(&buf, pos).unwrap();
                match (got, as_cell(c)) {
                    // NaN != NaN: compare the bits.
                    (Cell::Real(a), Cell::Real(b)) => prop_assert_eq!(a.to_bits(), b.to_bits()),
                    (a, b) => prop_assert_eq!(a, b),
                }
                pos = next;
            }
            prop_assert_eq!(pos, buf.len());
        }

        #[test]
        fn any_bytes_decode_without_panic(data in proptest::collection::vec(any::<u8>(), 0..24)) {
            let mut pos = 0;
            while let Some((_, next)) = decode(&data, pos) {
                prop_assert!(next > pos && next <= data.len());
                pos = next;
            }
        }
    }
}
