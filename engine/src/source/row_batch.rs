//! Row batch encoding, host side (the format is documented in `wit/ferry.wit`).

use crate::varint::write_long;

/// Encoded rows, ready to hand to a plugin.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RowBatch {
    pub rows: u32,
    pub data: Vec<u8>,
}

/// Each cell's first byte: the value's storage class (`wit/ferry.wit`, "Row batch").
pub(crate) const TAG_NULL: u8 = 0;
pub(crate) const TAG_INTEGER: u8 = 1;
pub(crate) const TAG_REAL: u8 = 2;
pub(crate) const TAG_TEXT: u8 = 3;
pub(crate) const TAG_BLOB: u8 = 4;

/// Rows are cut into batches of about this size.
pub(crate) const BATCH_BYTES: usize = 64 * 1024;

/// Builds one batch, cell by cell.
#[derive(Debug, Default)]
pub struct RowBatchBuilder {
    batch: RowBatch,
}

impl super::Cells for RowBatchBuilder {
    type Batch = RowBatch;

    fn null(&mut self) {
        RowBatchBuilder::null(self);
    }
    fn integer(&mut self, v: i64) {
        RowBatchBuilder::integer(self, v);
    }
    fn real(&mut self, v: f64) {
        RowBatchBuilder::real(self, v);
    }
    fn text(&mut self, v: &str) {
        RowBatchBuilder::text(self, v);
    }
    fn blob(&mut self, v: &[u8]) {
        RowBatchBuilder::blob(self, v);
    }
    fn end_row(&mut self) -> Result<(), String> {
        RowBatchBuilder::end_row(self);
        Ok(())
    }
    fn full(&self) -> bool {
        self.bytes() >= BATCH_BYTES
    }
    fn rows(&self) -> u32 {
        self.batch.rows
    }
    fn take(&mut self) -> RowBatch {
        std::mem::replace(self, RowBatchBuilder::with_capacity(BATCH_BYTES + 4096)).finish()
    }
}

impl RowBatchBuilder {
    pub fn with_capacity(bytes: usize) -> Self {
        RowBatchBuilder { batch: RowBatch { rows: 0, data: Vec::with_capacity(bytes) } }
    }

    pub fn null(&mut self) {
        self.batch.data.push(TAG_NULL);
    }

    pub fn integer(&mut self, v: i64) {
        self.batch.data.push(TAG_INTEGER);
        write_long(&mut self.batch.data, v);
    }

    pub fn real(&mut self, v: f64) {
        self.batch.data.push(TAG_REAL);
        self.batch.data.extend_from_slice(&v.to_le_bytes());
    }

    pub fn text(&mut self, v: &str) {
        self.tagged_bytes(TAG_TEXT, v.as_bytes());
    }

    pub fn blob(&mut self, v: &[u8]) {
        self.tagged_bytes(TAG_BLOB, v);
    }

    /// Marks the end of a row.
    pub fn end_row(&mut self) {
        self.batch.rows += 1;
    }

    pub fn bytes(&self) -> usize {
        self.batch.data.len()
    }

    pub fn rows(&self) -> u32 {
        self.batch.rows
    }

    pub fn finish(self) -> RowBatch {
        self.batch
    }

    fn tagged_bytes(&mut self, tag: u8, v: &[u8]) {
        self.batch.data.push(tag);
        write_long(&mut self.batch.data, v.len() as i64);
        self.batch.data.extend_from_slice(v);
    }
}
