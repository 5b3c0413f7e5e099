//! Every call the kit makes to the host, in one place: the component's imports, or with
//! the `mock` feature the [`crate::mock`] host when a test installed one.

use crate::bindings::ferry::plugin::{blobs, log, progress, records, source};
use crate::{Error, Result};

pub(crate) use source::TableRequest;

/// An open read: the host's cursor, or a mock read's batches.
pub(crate) enum Cursor {
    Wit(source::Cursor),
    #[cfg(feature = "mock")]
    Mock(std::collections::VecDeque<source::RowBatch>),
}

impl Cursor {
    pub(crate) fn next(&mut self) -> Result<Option<source::RowBatch>> {
        match self {
            Cursor::Wit(c) => c.next().map_err(Error::from_wit),
            #[cfg(feature = "mock")]
            Cursor::Mock(batches) => Ok(batches.pop_front()),
        }
    }
}

/// Runs `$mock` against the installed mock host, if any; else falls through.
macro_rules! mocked {
    ($m:ident => $mock:expr) => {
        #[cfg(feature = "mock")]
        if let Some(r) = crate::mock::with(|$m| $mock) {
            return r;
        }
    };
}

pub(crate) fn open(request: &TableRequest) -> Result<Cursor> {
    mocked!(m => m.open(request).map(Cursor::Mock));
    source::open(request).map(Cursor::Wit).map_err(Error::from_wit)
}

pub(crate) fn count(request: &TableRequest) -> Result<u64> {
    mocked!(m => m.count(request));
    source::count(request).map_err(Error::from_wit)
}

pub(crate) fn emit(count: u32, data: &[u8]) -> Result<()> {
    mocked!(m => m.emit(count, data));
    records::emit(count, data).map_err(Error::from_wit)
}

pub(crate) fn copy(request: &TableRequest, key: Option<&str>) -> Result<u64> {
    mocked!(m => m.copy(request, key));
    records::copy(request, key).map_err(Error::from_wit)
}

pub(crate) fn report(done: u64, total: Option<u64>) {
    mocked!(m => m.progress(done, total));
    progress::report(done, total)
}

pub(crate) fn log(level: log::Level, message: &str) {
    mocked!(m => m.log(level, message));
    log::log(level, message)
}

pub(crate) fn blob_copy(version: &blobs::AttachmentVersion) -> Result<blobs::Stored> {
    mocked!(m => m.blob_copy(version));
    blobs::copy(version).map_err(Error::from_wit)
}

pub(crate) fn write_versions(uid: &str, file_name: &str, json: &[u8]) -> Result<blobs::Stored> {
    mocked!(m => m.write_versions(uid, file_name, json));
    blobs::write_versions(uid, file_name, json).map_err(Error::from_wit)
}
