//! Record batches from plugins: the declared schema, and the check every batch passes
//! before a byte of it reaches an output file.

mod schema;
mod validate;

pub use schema::{Kind, RecordSchema, SchemaError};
pub use validate::{BatchError, validate_batch};

#[cfg(test)]
mod proptests;
