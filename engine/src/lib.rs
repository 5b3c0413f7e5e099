//! ferry: a data-export engine. Sandboxed WebAssembly plugins turn a platform's tables
//! into resource records; the host validates them and writes a verifiable snapshot.
//!
//! The data flows one way (see `Architecture` in the README):
//! job ─▶ [`job::Job`] ─▶ [`run::run`]: [`source`] ─▶ [`runtime`] (plugin) ─▶ [`records`]
//! (validation) ─▶ [`formats`] ─▶ [`package`] (gzip, tar parts, manifest, atomic publish).
//! A plugin that copies columns as they stand skips the middle: the source's reader
//! writes records itself ([`records::RecordEncoder`], `records.copy`).
//!
//! # Layers
//!
//! Each module imports only from the layers below it (and its own), never from above;
//! there is no module cycle. Bottom to top:
//!
//! 1. the row-batch and Avro primitives shared with the plugin kit: the `ferry_wire`
//!    crate (`wire/`, no dependencies), which the kit uses too;
//! 2. [`window`] (the one calendar rule) and [`records`] (schemas, validation, the copy
//!    encoder, the [`records::Cells`] seam), then [`formats`] (one file per format) and
//!    [`source`] (SQLite, PostgreSQL, blob stores, the demo platform), which use them;
//! 3. [`runtime`] (wasmtime: plugins in their stores, loading, limits), [`package`]
//!    (files, gzip, tar parts, manifest, names and liveness, staging, verify), [`s3`]
//!    (a part sink and a blob store), [`attachments`] (blobs copied into the snapshot, a
//!    sink of the runtime), [`progress`] (counting records as they leave the runtime)
//!    and [`inspect`] (statistics read from a snapshot's files, beside `verify`);
//! 4. [`job`] (the job file into runtime objects) and [`catalog`] (the snapshot history);
//! 5. [`run`] (the export pipeline) and [`plan`] (what a run would do, nothing run);
//! 6. [`service`] (`ferry serve`: the HTTP API; it runs `ferry run` children and reads
//!    the catalog);
//! 7. the command line (`main.rs`, `cli/`): the only place that prints for people.

pub(crate) mod attachments;
pub mod catalog;
pub mod formats;
pub mod inspect;
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
