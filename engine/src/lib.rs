//! ferry: a data-export engine. Sandboxed WebAssembly plugins turn a platform's tables
//! into resource records; the host validates them and writes a verifiable snapshot.
//!
//! The data flows one way (see `Architecture` in the README):
//! job ─▶ [`job::Job`] ─▶ [`run::run`]: [`source`] ─▶ [`runtime`] (plugin) ─▶ [`records`]
//! (validation) ─▶ [`formats`] ─▶ [`package`] (gzip, manifest, atomic publish). A plugin
//! that copies columns as they stand skips the middle: the source's reader writes
//! records itself ([`records::RecordEncoder`], `records.copy`).

pub mod attachments;
pub mod catalog;
pub mod formats;
pub mod job;
pub mod package;
pub mod plan;
pub mod progress;
pub mod records;
pub mod run;
pub mod runtime;
pub mod s3;
pub mod service;
pub mod source;
pub mod window;
mod varint;
