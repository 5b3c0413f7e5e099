//! The platform's blobs in a bucket: `[source] blobs = "s3://bucket/prefix"`.
//!
//! `open` asks for the object's size (HEAD) and hands out a reader that fetches it in
//! ranged GETs of [`CHUNK`] bytes as it is read, so a blob of any size costs one chunk
//! of memory, and a blob read halfway costs half the transfer.

use std::io::Read;
use std::ops::Range;

use object_store::ObjectStoreExt;

use super::S3;
use crate::source::{BlobError, BlobStore};

/// Bytes fetched per ranged GET.
const CHUNK: u64 = 8 << 20;

#[derive(Debug, Clone)]
pub struct S3BlobStore {
    s3: S3,
}

impl S3BlobStore {
    pub fn new(s3: S3) -> Self {
        S3BlobStore { s3 }
    }

    /// Bytes `range` of the blob at `key`: one ranged GET.
    pub fn read_range(&self, key: &str, range: Range<u64>) -> Result<Vec<u8>, BlobError> {
        check_key(key)?;
        read_range(&self.s3, key, range)
    }
}

/// The same rule as the directory store: a plain relative key, so a hostile row can
/// never name an object outside the store's prefix.
fn check_key(key: &str) -> Result<(), BlobError> {
    let plain = !key.is_empty() && !key.contains(['\\', '\0']) && key.split('/').all(|p| !p.is_empty() && p != "." && p != "..");
    if plain { Ok(()) } else { Err(BlobError::BadKey { key: key.into() }) }
}

fn io_err(s3: &S3, key: &str, e: object_store::Error) -> BlobError {
    match e {
        object_store::Error::NotFound { .. } => BlobError::Missing { key: key.into(), store: s3.url.to_string() },
        e => BlobError::Io { key: key.into(), store: s3.url.to_string(), source: std::io::Error::other(e) },
    }
}

fn read_range(s3: &S3, key: &str, range: Range<u64>) -> Result<Vec<u8>, BlobError> {
    let path = s3.path(key);
    s3.rt.block_on(s3.store.get_range(&path, range)).map(|b| b.to_vec()).map_err(|e| io_err(s3, key, e))
}

impl BlobStore for S3BlobStore {
    fn open(&self, key: &str) -> Result<(Box<dyn Read + Send>, Option<u64>), BlobError> {
        check_key(key)?;
        let path = self.s3.path(key);
        let meta = self.s3.rt.block_on(self.s3.store.head(&path)).map_err(|e| io_err(&self.s3, key, e))?;
        let reader = RangeReader { s3: self.s3.clone(), key: key.into(), size: meta.size, next: 0, buf: Vec::new(), pos: 0 };
        Ok((Box::new(reader), Some(meta.size)))
    }

    fn describe(&self) -> String {
        self.s3.url.to_string()
    }
}

/// Streams an object chunk by chunk.
struct RangeReader {
    s3: S3,
    key: String,
    size: u64,
    /// Offset of the next chunk to fetch.
    next: u64,
    buf: Vec<u8>,
    pos: usize,
}

impl Read for RangeReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos == self.buf.len() {
            if self.next >= self.size {
                return Ok(0);
            }
            let end = (self.next + CHUNK).min(self.size);
            self.buf = read_range(&self.s3, &self.key, self.next..end).map_err(std::io::Error::other)?;
            if self.buf.len() as u64 != end - self.next {
                // The object changed under us: a short read must not pass for the blob.
                return Err(std::io::Error::other(format!("blob `{}` changed while it was read", self.key)));
            }
            self.next = end;
            self.pos = 0;
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
