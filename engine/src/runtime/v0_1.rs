//! Components built against `ferry:plugin@0.1.0` (`wit/v0.1.0/ferry.wit`): their imports
//! are the 0.2.0 host's, reached through conversions of identical shapes, and what they
//! declare is read as 0.2.0 with 0.1.0's conventions spelled out (the first table is the
//! main one; `records.copy` fills fields by position; no creation column, key or
//! references, so such a resource is exported whole).

use wasmtime::component::Resource;

use super::bindings::ferry::plugin as v2;
use super::bindings::v0_1::ferry::plugin::{blobs, log, progress, records, source, types};
use super::bindings::{ExportRequest, ResourceInfo};
use super::state::{Cursor, HostState};

fn error(e: v2::types::Error) -> types::Error {
    use v2::types::Error as E;
    match e {
        E::Denied(m) => types::Error::Denied(m),
        E::NotFound(m) => types::Error::NotFound(m),
        E::InvalidArgument(m) => types::Error::InvalidArgument(m),
        E::BadData(m) => types::Error::BadData(m),
        E::LimitExceeded(m) => types::Error::LimitExceeded(m),
        E::Other(m) => types::Error::Other(m),
    }
}

pub(crate) fn wit_error(e: &types::Error) -> v2::types::Error {
    use v2::types::Error as E;
    match e.clone() {
        types::Error::Denied(m) => E::Denied(m),
        types::Error::NotFound(m) => E::NotFound(m),
        types::Error::InvalidArgument(m) => E::InvalidArgument(m),
        types::Error::BadData(m) => E::BadData(m),
        types::Error::LimitExceeded(m) => E::LimitExceeded(m),
        types::Error::Other(m) => E::Other(m),
    }
}

fn range(r: types::Range) -> v2::types::Range {
    v2::types::Range { column: r.column, start: r.start, end: r.end }
}

fn request(r: source::TableRequest) -> v2::source::TableRequest {
    v2::source::TableRequest { table: r.table, columns: r.columns, range: r.range.map(range), order_by: r.order_by }
}

fn result<T, U>(r: wasmtime::Result<Result<T, v2::types::Error>>, f: impl FnOnce(T) -> U) -> wasmtime::Result<Result<U, types::Error>> {
    Ok(r?.map(f).map_err(error))
}

/// What a 0.1.0 plugin declared, as 0.2.0 says it.
pub(crate) fn resource_info(info: types::ResourceInfo) -> ResourceInfo {
    let main_table = info.tables.first().map(|t| t.table.clone()).unwrap_or_default();
    ResourceInfo {
        name: info.name,
        version: info.version,
        description: info.description,
        schema: info.schema,
        tables: info.tables.into_iter().map(|t| v2::types::TableGrant { table: t.table, columns: t.columns }).collect(),
        window_column: info.window_column,
        main_table,
        created_column: None,
        key: None,
        references: Vec::new(),
        copied: Vec::new(),
    }
}

pub(crate) fn export_request(r: &ExportRequest) -> types::ExportRequest {
    types::ExportRequest {
        as_of: r.as_of,
        window: r.window.clone().map(|w| types::Range { column: w.column, start: w.start, end: w.end }),
        options: r.options.clone(),
    }
}

impl types::Host for HostState {}

impl source::Host for HostState {
    fn open(&mut self, req: source::TableRequest) -> wasmtime::Result<Result<Resource<Cursor>, types::Error>> {
        result(v2::source::Host::open(self, request(req)), |c| c)
    }

    fn count(&mut self, req: source::TableRequest) -> wasmtime::Result<Result<u64, types::Error>> {
        result(v2::source::Host::count(self, request(req)), |n| n)
    }
}

impl source::HostCursor for HostState {
    fn next(&mut self, cursor: Resource<Cursor>) -> wasmtime::Result<Result<Option<source::RowBatch>, types::Error>> {
        result(v2::source::HostCursor::next(self, cursor), |b| b.map(|b| source::RowBatch { rows: b.rows, data: b.data }))
    }

    fn drop(&mut self, cursor: Resource<Cursor>) -> wasmtime::Result<()> {
        v2::source::HostCursor::drop(self, cursor)
    }
}

impl records::Host for HostState {
    fn emit(&mut self, count: u32, data: Vec<u8>) -> wasmtime::Result<Result<(), types::Error>> {
        result(v2::records::Host::emit(self, count, data), |()| ())
    }

    fn copy(&mut self, req: source::TableRequest, key: Option<String>) -> wasmtime::Result<Result<u64, types::Error>> {
        result(v2::records::Host::copy(self, request(req), key), |n| n)
    }
}

impl log::Host for HostState {
    fn log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        let level = match level {
            log::Level::Debug => v2::log::Level::Debug,
            log::Level::Info => v2::log::Level::Info,
            log::Level::Warn => v2::log::Level::Warn,
            log::Level::Error => v2::log::Level::Error,
        };
        v2::log::Host::log(self, level, message)
    }
}

impl progress::Host for HostState {
    fn report(&mut self, done: u64, total: Option<u64>) -> wasmtime::Result<()> {
        v2::progress::Host::report(self, done, total)
    }
}

fn stored(s: v2::blobs::Stored) -> blobs::Stored {
    blobs::Stored { path: s.path, size: s.size, sha256: s.sha256 }
}

impl blobs::Host for HostState {
    fn copy(&mut self, v: blobs::AttachmentVersion) -> wasmtime::Result<Result<blobs::Stored, types::Error>> {
        let v = v2::blobs::AttachmentVersion {
            uid: v.uid,
            file_name: v.file_name,
            sid: v.sid,
            version: v.version,
            blob_key: v.blob_key,
            size: v.size,
            sha256: v.sha256,
        };
        result(v2::blobs::Host::copy(self, v), stored)
    }

    fn write_versions(&mut self, uid: String, file_name: String, json: Vec<u8>) -> wasmtime::Result<Result<blobs::Stored, types::Error>> {
        result(v2::blobs::Host::write_versions(self, uid, file_name, json), stored)
    }
}
