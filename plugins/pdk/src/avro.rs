//! Avro binary encoding of one record (Avro 1.11 spec, "Binary encoding").
//!
//! Only what ferry's field types need; the host re-checks every byte against the schema.

/// Appends the fields of one record, in schema order.
pub struct RecordWriter<'a> {
    pub(crate) buf: &'a mut Vec<u8>,
}

impl RecordWriter<'_> {
    pub fn long(&mut self, v: i64) {
        write_long(self.buf, v)
    }

    pub fn int(&mut self, v: i32) {
        write_long(self.buf, v as i64)
    }

    pub fn boolean(&mut self, v: bool) {
        self.buf.push(v as u8)
    }

    pub fn double(&mut self, v: f64) {
        self.buf.extend_from_slice(&v.to_le_bytes())
    }

    pub fn string(&mut self, v: &str) {
        self.bytes(v.as_bytes())
    }

    pub fn bytes(&mut self, v: &[u8]) {
        write_long(self.buf, v.len() as i64);
        self.buf.extend_from_slice(v)
    }

    /// An exact decimal as its unscaled integer (`12.34` at scale 2 is `1234`).
    pub fn decimal(&mut self, unscaled: i128) {
        let be = unscaled.to_be_bytes();
        // Minimal two's-complement: drop leading bytes that only repeat the sign.
        let mut start = 0;
        while start < 15 {
            let (b, next) = (be[start], be[start + 1]);
            let redundant = (b == 0x00 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0);
            if !redundant {
                break;
            }
            start += 1;
        }
        self.bytes(&be[start..])
    }

    /// The `null` branch of a nullable field (`["null", T]`).
    pub fn null(&mut self) {
        self.buf.push(0)
    }

    /// Announces the value branch of a nullable field; the value follows.
    pub fn some(&mut self) {
        self.buf.push(2)
    }
}

pub(crate) fn write_long(buf: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        buf.push((z as u8) | 0x80);
        z >>= 7;
    }
    buf.push(z as u8);
}
