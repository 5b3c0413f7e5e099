//! Delivering a snapshot to `s3://bucket/prefix/<snapshot-id>/` while it is produced.
//!
//! Tar parts stream straight into multipart uploads (8 MiB parts, four in flight) as the
//! packer fills them, so no part is ever written to local disk; the staged table files
//! each part packs are removed as they go in. Loose files (a job without tar parts) go up
//! one by one, each removed locally once its upload completed, then `manifest.json` last,
//! in one PUT. S3 makes an object visible only when its upload completes, so a delivery
//! killed at any point leaves either no manifest under the snapshot's prefix or a
//! manifest whose every file is there. A rerun is a new snapshot with a new id; the dead
//! one's objects are removed by [`remove_snapshot`] once the catalog has settled it.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use object_store::{ObjectStoreExt, WriteMultipart};
use sha2::{Digest, Sha256};

use super::{S3, S3Error};
use crate::package::ConfinedDir;
use crate::package::archive::PartSink;

/// Bytes per uploaded part (S3's minimum for all but the last is 5 MiB).
const PART: usize = 8 << 20;
/// Parts in flight per upload.
const IN_FLIGHT: usize = 4;
/// Bytes handed over between two waits for upload capacity.
const BACKPRESSURE_EVERY: u64 = 1 << 20;
pub use crate::package::MANIFEST;

/// What a delivery uploaded.
#[derive(Debug, Clone)]
pub struct Delivered {
    /// `s3://bucket/prefix/<id>/`.
    pub url: String,
    pub objects: usize,
    pub bytes: u64,
    /// From the first upload's start to the manifest's (uploads overlap the export, so
    /// this is the delivery's own time only when the last resource finished first).
    pub elapsed: Duration,
}

/// One snapshot's delivery: a [`PartSink`] for the packer, then loose files, then the
/// manifest.
pub struct Delivery {
    s3: S3,
    id: String,
    /// When the first upload started.
    started: Option<Instant>,
    objects: usize,
    /// Bytes handed to uploads so far, over all objects (for the fault injection).
    sent: Arc<AtomicU64>,
    abort_after: Option<u64>,
    /// Why an upload's write failed: `Write` returns only an `io::Error`, so the upload
    /// leaves its [`S3Error`] here for [`PartSink::write_failed`] to take back.
    failure: Arc<Mutex<Option<S3Error>>>,
}

/// Why a part could not be delivered: its upload failed, or reading a staged file that
/// goes into it did.
#[derive(Debug, thiserror::Error)]
pub enum PartError {
    #[error(transparent)]
    Upload(#[from] S3Error),
    #[error(transparent)]
    Staging(#[from] io::Error),
}

impl Delivery {
    pub fn new(s3: &S3, id: &str) -> Delivery {
        Delivery {
            s3: s3.clone(),
            id: id.into(),
            started: None,
            objects: 0,
            sent: Arc::default(),
            abort_after: fault_injection(),
            failure: Arc::default(),
        }
    }

    /// The upload failure a write left behind, if any.
    fn take_failure(&self) -> Option<S3Error> {
        self.failure.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    fn name(&self, name: &str) -> String {
        format!("{}/{name}", self.id)
    }

    /// Starts one object's multipart upload.
    pub fn upload(&mut self, name: &str) -> Result<Upload, S3Error> {
        self.started.get_or_insert_with(Instant::now);
        let key = self.name(name);
        let location = self.s3.path(&key);
        let upload = self.s3.rt.block_on(self.s3.store.put_multipart(&location)).map_err(self.s3.err("multipart upload", &key))?;
        Ok(Upload {
            writer: Some(WriteMultipart::new_with_chunk_size(upload, PART)),
            s3: self.s3.clone(),
            key,
            hasher: Sha256::new(),
            bytes: 0,
            unwaited: 0,
            sent: self.sent.clone(),
            abort_after: self.abort_after,
            failure: self.failure.clone(),
        })
    }

    /// Uploads the file `name` of `dir` (a loose one, outside any part) as `name`, and
    /// removes it.
    pub fn upload_file(&mut self, dir: &ConfinedDir, name: &str) -> Result<(), S3Error> {
        let local = |source| S3Error::Local { path: dir.display(name), source };
        let mut file = dir.open_file(name).map_err(local)?;
        let mut upload = self.upload(name)?;
        if let Err(e) = io::copy(&mut file, &mut upload) {
            return Err(self.take_failure().unwrap_or_else(|| local(e)));
        }
        self.complete(upload)?;
        dir.remove_file(name).map_err(local)
    }

    fn complete(&mut self, mut upload: Upload) -> Result<(u64, String), S3Error> {
        let writer = upload.writer.take().expect("an upload completes once");
        upload.s3.rt.block_on(writer.finish()).map_err(upload.s3.err("complete multipart upload", &upload.key))?;
        self.objects += 1;
        Ok((upload.bytes, hex::encode(std::mem::take(&mut upload.hasher).finalize())))
    }

    /// Puts a small object in one PUT (the manifest's signature, before the manifest).
    pub fn put(&mut self, name: &str, bytes: Vec<u8>) -> Result<(), S3Error> {
        self.started.get_or_insert_with(Instant::now);
        self.sent.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        self.s3.put(&self.name(name), bytes)?;
        self.objects += 1;
        Ok(())
    }

    /// Puts the manifest, last: from here on the snapshot is delivered.
    pub fn finish(self, manifest: Vec<u8>) -> Result<Delivered, S3Error> {
        self.finish_as(MANIFEST, manifest)
    }

    /// Puts the object that completes the delivery, last: the manifest, or a shard's
    /// manifest (`shards/shard-0002-of-0004.<attempt>.json`).
    pub fn finish_as(mut self, name: &str, manifest: Vec<u8>) -> Result<Delivered, S3Error> {
        let started = *self.started.get_or_insert_with(Instant::now);
        let bytes = self.sent.load(Ordering::Relaxed) + manifest.len() as u64;
        self.s3.put(&self.name(name), manifest)?;
        self.objects += 1;
        Ok(Delivered {
            url: format!("{}/{}/", self.s3.url.to_string().trim_end_matches('/'), self.id),
            objects: self.objects,
            bytes,
            elapsed: started.elapsed(),
        })
    }
}

impl PartSink for Delivery {
    type Writer = Upload;
    type Error = PartError;

    fn create(&mut self, name: &str) -> Result<Upload, PartError> {
        Ok(self.upload(name)?)
    }

    fn finish(&mut self, upload: Upload) -> Result<(u64, String), PartError> {
        Ok(self.complete(upload)?)
    }

    fn write_failed(&mut self, e: io::Error) -> PartError {
        self.take_failure().map_or(PartError::Staging(e), PartError::Upload)
    }
}

/// One object being uploaded, as a blocking `Write`; hashes what it sends. Dropped
/// before it completed, it aborts its upload (S3 then discards the parts).
pub struct Upload {
    writer: Option<WriteMultipart>,
    s3: S3,
    key: String,
    hasher: Sha256,
    bytes: u64,
    unwaited: u64,
    sent: Arc<AtomicU64>,
    abort_after: Option<u64>,
    /// The delivery's slot for why a write failed.
    failure: Arc<Mutex<Option<S3Error>>>,
}

impl Write for Upload {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let writer = self.writer.as_mut().expect("written before completion");
        if self.unwaited >= BACKPRESSURE_EVERY {
            // Also where a failed part upload surfaces.
            if let Err(e) = self.s3.rt.block_on(writer.wait_for_capacity(IN_FLIGHT)) {
                let error = self.s3.err("upload part", &self.key)(e);
                let message = error.to_string();
                *self.failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(error);
                return Err(io::Error::other(message));
            }
            self.unwaited = 0;
        }
        // A full chunk starts its part upload on the runtime.
        let _runtime = self.s3.rt.enter();
        writer.write(buf);
        self.hasher.update(buf);
        self.bytes += buf.len() as u64;
        self.unwaited += buf.len() as u64;
        let sent = self.sent.fetch_add(buf.len() as u64, Ordering::Relaxed) + buf.len() as u64;
        if self.abort_after.is_some_and(|limit| sent >= limit) {
            // Simulates a crash mid-upload (tests only): no cleanup, no unwinding.
            std::process::abort();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if let Some(writer) = self.writer.take() {
            let _ = self.s3.rt.block_on(writer.abort());
        }
    }
}

/// `FERRY_FAULT_S3_ABORT_AFTER_BYTES`: abort the process once that many bytes of a
/// delivery were handed to uploads. Lets the tests kill a delivery at a known point
/// instead of racing a timer. Only in builds with the `test-hooks` feature (the test
/// suite's): a production binary never reads it.
#[cfg(feature = "test-hooks")]
fn fault_injection() -> Option<u64> {
    std::env::var("FERRY_FAULT_S3_ABORT_AFTER_BYTES").ok()?.parse().ok()
}

#[cfg(not(feature = "test-hooks"))]
fn fault_injection() -> Option<u64> {
    None
}

/// Removes what a failed or dead delivery left under `<id>/`: the manifest first (so a
/// half-removed snapshot never looks whole), then the rest. Returns how many objects
/// went. Uploads a killed process left in flight are invisible to listing; a bucket
/// lifecycle rule (`AbortIncompleteMultipartUpload`) reclaims them.
pub fn remove_snapshot(s3: &S3, id: &str) -> Result<usize, S3Error> {
    let mut objects = s3.list(id)?;
    objects.sort_by_key(|o| !o.location.as_ref().ends_with(&format!("/{MANIFEST}")));
    for o in &objects {
        s3.delete_key(&o.location)?;
    }
    Ok(objects.len())
}
