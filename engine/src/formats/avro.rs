//! Avro object container files (Avro 1.11 spec, "Object Container Files").
//!
//! apache-avro writes the header (schema, codec, sync marker) and compresses blocks;
//! the blocks themselves are the plugin's datums, already checked by the validator,
//! copied without decoding and re-encoding them. The sync marker is derived from the
//! caller's seed, so the same input gives the same bytes.

use std::io::Write;

use super::{DatumWriter, FormatError};

use apache_avro::{Codec, Schema, Writer};

/// Datums are gathered into blocks of about this size before compression.
pub const BLOCK_BYTES: usize = 256 * 1024;

/// Writes an Avro container file of already validated datums.
pub struct AvroFileWriter<W: Write> {
    inner: W,
    codec: Codec,
    marker: [u8; 16],
    block: Vec<u8>,
    block_records: u64,
    scratch: Vec<u8>,
}

impl<W: Write> AvroFileWriter<W> {
    pub fn new(schema: &Schema, codec: Codec, marker: [u8; 16], mut inner: W) -> Result<Self, FormatError> {
        let mut header = Vec::new();
        {
            let mut w = Writer::builder().schema(schema).writer(&mut header).codec(codec).marker(marker).build()?;
            w.flush()?; // with no records, this writes just the header
        }
        inner.write_all(&header)?;
        Ok(AvroFileWriter { inner, codec, marker, block: Vec::with_capacity(BLOCK_BYTES * 2), block_records: 0, scratch: Vec::new() })
    }

    /// Appends datums (validated against this file's schema; `ends` as
    /// [`DatumWriter::append`] takes them), writing a block at the first datum's end
    /// where the block reaches [`BLOCK_BYTES`]: the blocks one datum at a time would give.
    pub fn append_datums(&mut self, datums: &[u8], ends: &[u32], base: usize) -> Result<(), FormatError> {
        let (mut from, mut taken) = (0usize, 0usize);
        while taken < ends.len() {
            let need = BLOCK_BYTES.saturating_sub(self.block.len()).max(1);
            let cut = taken + ends[taken..].partition_point(|&e| (e as usize - base) - from < need);
            let last = cut.min(ends.len() - 1);
            let to = ends[last] as usize - base;
            self.block.extend_from_slice(&datums[from..to]);
            self.block_records += (last + 1 - taken) as u64;
            if cut < ends.len() {
                self.write_block()?;
            }
            (from, taken) = (to, last + 1);
        }
        Ok(())
    }

    fn write_block(&mut self) -> Result<(), FormatError> {
        if self.block_records == 0 {
            return Ok(());
        }
        let data = if self.codec == Codec::Null {
            &self.block
        } else {
            self.scratch.clear();
            self.scratch.extend_from_slice(&self.block);
            self.codec.compress(&mut self.scratch)?;
            &self.scratch
        };
        let mut head = Vec::with_capacity(20);
        ferry_wire::varint::write_long(&mut head, self.block_records as i64);
        ferry_wire::varint::write_long(&mut head, data.len() as i64);
        self.inner.write_all(&head)?;
        self.inner.write_all(data)?;
        self.inner.write_all(&self.marker)?;
        self.block.clear();
        self.block_records = 0;
        Ok(())
    }
}

impl<W: Write + Send> DatumWriter<W> for AvroFileWriter<W> {
    fn append(&mut self, datums: &[u8], ends: &[u32], base: usize) -> Result<(), FormatError> {
        self.append_datums(datums, ends, base)
    }

    fn finish(mut self: Box<Self>) -> Result<W, FormatError> {
        self.write_block()?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 20,000 string datums of 0 to 96 characters (about 1 MiB), and where each ends.
    fn datums() -> (Vec<u8>, Vec<u32>) {
        let (mut data, mut ends) = (Vec::new(), Vec::new());
        for i in 0..20_000usize {
            let text = "x".repeat(i % 97);
            ferry_wire::varint::write_long(&mut data, text.len() as i64);
            data.extend_from_slice(text.as_bytes());
            ends.push(data.len() as u32);
        }
        (data, ends)
    }

    fn file(batches: &[usize]) -> Vec<u8> {
        let schema = Schema::parse_str(r#"{"type":"record","name":"r","fields":[{"name":"s","type":"string"}]}"#).unwrap();
        let (data, ends) = datums();
        let mut w = AvroFileWriter::new(&schema, Codec::Null, [7; 16], Vec::new()).unwrap();
        let mut first = 0;
        for &size in batches.iter().cycle() {
            if first == ends.len() {
                break;
            }
            let last = (first + size).min(ends.len());
            let base = if first == 0 { 0 } else { ends[first - 1] as usize };
            w.append_datums(&data[base..ends[last - 1] as usize], &ends[first..last], base).unwrap();
            first = last;
        }
        Box::new(w).finish().unwrap()
    }

    #[test]
    fn blocks_are_cut_at_the_same_datums_however_the_datums_were_batched() {
        let whole = file(&[usize::MAX]);
        for batches in [&[1][..], &[7, 333, 4096], &[2_500, 1]] {
            assert!(file(batches) == whole, "batches of {batches:?} gave other bytes");
        }
        let blocks = whole.windows(16).filter(|w| *w == [7; 16]).count() - 1; // the header holds the marker once
        assert!(blocks >= 4, "{blocks} blocks: the test must cross block boundaries");
        let read = apache_avro::Reader::new(&whole[..]).unwrap().count();
        assert_eq!(read, 20_000);
    }
}
