//! Records: the declared schema, the check every plugin batch passes before a byte of
//! it reaches an output file, and the host's own copy of rows into records.

mod cells;
mod copy;
mod fingerprint;
mod schema;
mod validate;

pub use cells::Cells;
pub use copy::{CopyPlan, PlanError, RecordBatch, RecordEncoder};
pub use fingerprint::SchemaFingerprint;
pub use schema::{Kind, RecordSchema, SchemaError};
pub use validate::{BatchError, validate_batch};

/// Batch generators shared with the formats' tests (which sit a layer above).
#[cfg(test)]
pub(crate) mod proptests;
