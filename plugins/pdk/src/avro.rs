//! Avro binary encoding of one record (Avro 1.11 spec, "Binary encoding").
//!
//! Only what ferry's field types need; the host re-checks every byte against the schema.
//! The encodings are `ferry_wire`'s, the same code the host writes and reads them with.

use ferry_wire::avro::{self, NULL_BRANCH, VALUE_BRANCH};
use ferry_wire::{decimal, varint};

/// Appends the fields of one record, in schema order.
pub struct RecordWriter<'a> {
    pub(crate) buf: &'a mut Vec<u8>,
}

impl RecordWriter<'_> {
    pub fn long(&mut self, v: i64) {
        varint::write_long(self.buf, v)
    }

    pub fn int(&mut self, v: i32) {
        avro::write_int(self.buf, v)
    }

    pub fn boolean(&mut self, v: bool) {
        self.buf.push(v as u8)
    }

    pub fn double(&mut self, v: f64) {
        self.buf.extend_from_slice(&v.to_le_bytes())
    }

    pub fn string(&mut self, v: &str) {
        avro::write_string(self.buf, v)
    }

    pub fn bytes(&mut self, v: &[u8]) {
        avro::write_bytes(self.buf, v)
    }

    /// An exact decimal as its unscaled integer (`12.34` at scale 2 is `1234`).
    pub fn decimal(&mut self, unscaled: i128) {
        decimal::write(self.buf, unscaled)
    }

    /// The `null` branch of a nullable field (`["null", T]`).
    pub fn null(&mut self) {
        self.buf.push(NULL_BRANCH)
    }

    /// Announces the value branch of a nullable field; the value follows.
    pub fn some(&mut self) {
        self.buf.push(VALUE_BRANCH)
    }
}

#[cfg(test)]
mod tests {
    use super::RecordWriter;
    use ferry_wire::avro::read_bytes;
    use ferry_wire::decimal;
    use ferry_wire::varint::read_long;

    /// A record as a plugin writes it reads back with the decoders the host shares.
    #[test]
    fn records_read_back_with_the_shared_decoders() {
        let mut buf = Vec::new();
        let mut w = RecordWriter { buf: &mut buf };
        w.long(i64::MIN);
        w.int(-7);
        w.string("é");
        w.null();
        w.some();
        w.decimal(-5);
        w.boolean(true);
        let (v, p) = read_long(&buf, 0).unwrap();
        assert_eq!(v, i64::MIN);
        let (v, p) = read_long(&buf, p).unwrap();
        assert_eq!(v, -7);
        let (s, p) = read_bytes(&buf, p).unwrap();
        assert_eq!(s, "é".as_bytes());
        assert_eq!((read_long(&buf, p).unwrap().0, read_long(&buf, p + 1).unwrap().0), (0, 1));
        let (be, p) = read_bytes(&buf, p + 2).unwrap();
        assert_eq!(be, [0xfb]);
        assert_eq!(decimal::from_twos_complement(be), Some(-5));
        assert_eq!(&buf[p..], [1]);
    }
}
