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

    /// Appends `count` datums (validated against this file's schema).
    pub fn append_datums(&mut self, count: u32, datums: &[u8]) -> Result<(), FormatError> {
        self.block.extend_from_slice(datums);
        self.block_records += count as u64;
        if self.block.len() >= BLOCK_BYTES {
            self.write_block()?;
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
        crate::varint::write_long(&mut head, self.block_records as i64);
        crate::varint::write_long(&mut head, data.len() as i64);
        self.inner.write_all(&head)?;
        self.inner.write_all(data)?;
        self.inner.write_all(&self.marker)?;
        self.block.clear();
        self.block_records = 0;
        Ok(())
    }

}

impl<W: Write + Send> DatumWriter<W> for AvroFileWriter<W> {
    fn append(&mut self, count: u32, datums: &[u8]) -> Result<(), FormatError> {
        self.append_datums(count, datums)
    }

    fn finish(mut self: Box<Self>) -> Result<W, FormatError> {
        self.write_block()?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

