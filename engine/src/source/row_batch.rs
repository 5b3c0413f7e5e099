//! Row batch encoding, host side (the format is documented in `wit/ferry.wit`; the
//! cells are `ferry_wire::cell`'s, the kit decodes them with the same code).

use ferry_wire::cell::{Cell, encode};

/// Encoded rows, ready to hand to a plugin.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RowBatch {
    pub rows: u32,
    pub data: Vec<u8>,
}

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
    fn fresh(&self) -> Self {
        RowBatchBuilder::with_capacity(BATCH_BYTES + 4096)
    }
}

impl RowBatchBuilder {
    pub fn with_capacity(bytes: usize) -> Self {
        RowBatchBuilder { batch: RowBatch { rows: 0, data: Vec::with_capacity(bytes) } }
    }

    pub fn null(&mut self) {
        encode(&mut self.batch.data, Cell::Null);
    }

    pub fn integer(&mut self, v: i64) {
        encode(&mut self.batch.data, Cell::Integer(v));
    }

    pub fn real(&mut self, v: f64) {
        encode(&mut self.batch.data, Cell::Real(v));
    }

    pub fn text(&mut self, v: &str) {
        encode(&mut self.batch.data, Cell::Text(v));
    }

    pub fn blob(&mut self, v: &[u8]) {
        encode(&mut self.batch.data, Cell::Blob(v));
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
}
