//! Avro's `long` encoding (zig-zag, then base-128 varint), shared by the row-batch
//! encoder and the Avro block writer.

pub(crate) fn write_long(buf: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        buf.push((z as u8) | 0x80);
        z >>= 7;
    }
    buf.push(z as u8);
}

/// Reads a `long` at `data[pos..]`: the value and where the next byte is, or `None`
/// when the bytes end first or the varint is longer than 64 bits.
#[inline]
pub(crate) fn read_long(data: &[u8], mut pos: usize) -> Option<(i64, usize)> {
    let mut z: u64 = 0;
    let mut shift = 0;
    loop {
        let b = *data.get(pos)?;
        pos += 1;
        if shift == 63 && b > 1 {
            return None;
        }
        z |= ((b & 0x7f) as u64) << shift;
        if b & 0x80 == 0 {
            return Some((((z >> 1) as i64) ^ -((z & 1) as i64), pos));
        }
        shift += 7;
    }
}
