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
