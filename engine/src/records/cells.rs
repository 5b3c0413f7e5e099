//! The seam between a source's reader and what it fills: a reader writes each row's
//! cells into a [`Cells`] sink, a row batch for a plugin or records (`records.copy`).
//! It lives here, below `source`, so the record encoder is a sink without `records`
//! knowing any source.

/// What a reader writes each row's cells into: a row batch for a plugin, or records
/// (`records.copy`). Readers are generic over it, so copied rows become records on the
/// reader's thread with no row batch in between.
pub trait Cells: Send + 'static {
    type Batch: Send + 'static;
    fn null(&mut self);
    fn integer(&mut self, v: i64);
    fn real(&mut self, v: f64);
    fn text(&mut self, v: &str);
    /// Bytes, or source text that is not UTF-8 (the plugin or the copy then names the
    /// row and column instead of ferry guessing at the characters).
    fn blob(&mut self, v: &[u8]);
    /// Source text that is not UTF-8. A plugin gets it as a blob; a copy refuses it,
    /// naming it for what it is.
    fn bad_text(&mut self, v: &[u8]) {
        self.blob(v);
    }
    /// Ends a row; a record encoder refuses one holding a value that does not fit its
    /// field, with a message naming the row, column and field.
    fn end_row(&mut self) -> Result<(), String>;
    /// The batch is big enough to send.
    fn full(&self) -> bool;
    fn rows(&self) -> u32;
    /// The batch so far, leaving an empty one.
    fn take(&mut self) -> Self::Batch;
    /// An empty sink like this one, for another reader of the same read.
    fn fresh(&self) -> Self
    where
        Self: Sized;
}
