//! The encodings of `wit/ferry.wit`, written once for the ferry host and its plugin kit,
//! so the two sides of the boundary cannot drift apart.
//!
//! - [`varint`]: Avro's `long` (zig-zag, then base-128 varint), both ways.
//! - [`avro`]: the other Avro binary primitives the batches use (`int`, `bytes`,
//!   `string`, the branches of a `["null", T]` union, the timestamp range readers decode).
//! - [`decimal`]: exact decimals: text to unscaled integer (the `records.copy` table),
//!   unscaled integer to text, and Avro's fewest-byte two's complement.
//! - [`cell`]: the row batch's cells: the tags, encoding and decoding.
//!
//! Decoders take untrusted bytes: they return `None` (or an error) on anything malformed
//! and never panic or read out of bounds.

pub mod avro;
pub mod cell;
pub mod decimal;
pub mod varint;
