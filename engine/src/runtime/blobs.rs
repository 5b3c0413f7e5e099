//! The host side of `ferry:plugin/blobs`: a plugin names which blob goes where, the
//! [`AttachmentSink`] the caller provides streams it into the snapshot. The runtime only
//! checks the call and turns failures into faults: it knows nothing of files or tar.

use super::bindings::Error;
use super::bindings::ferry::plugin::blobs;
use super::state::{Fault, HostState};

/// One version of one attachment, as the plugin names it.
#[derive(Debug, Clone)]
pub struct AttachmentVersion {
    pub uid: String,
    pub file_name: String,
    pub sid: String,
    pub version: i64,
    pub blob_key: String,
    pub size: u64,
    pub sha256: String,
}

/// A file written into the snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// Why an attachment could not be stored. Every kind fails the export: a plugin cannot
/// skip a missing or corrupt blob by ignoring the error it gets.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AttachmentFailure {
    /// The blob is not in the store.
    #[error("{0}")]
    Missing(String),
    /// The bytes are not what the version record says (size or sha256).
    #[error("{0}")]
    Mismatch(String),
    /// The plugin asked for something the layout forbids (a version twice, bad JSON).
    #[error("{0}")]
    Refused(String),
    /// Writing the snapshot failed (disk full, say): the host's problem, not the plugin's.
    #[error("{0}")]
    Output(String),
}

/// Where a plugin's attachments go; the run module provides it.
pub trait AttachmentSink: Send {
    fn copy(&mut self, version: &AttachmentVersion) -> Result<Stored, AttachmentFailure>;
    fn write_versions(&mut self, uid: &str, file_name: &str, json: &[u8]) -> Result<Stored, AttachmentFailure>;
}

/// The largest versions JSON a plugin may hand over.
const VERSIONS_JSON_BYTES: usize = 1 << 20;

impl HostState {
    fn attachment_result(&mut self, result: Result<Stored, AttachmentFailure>) -> wasmtime::Result<Result<blobs::Stored, Error>> {
        match result {
            Ok(s) => Ok(Ok(blobs::Stored { path: s.path, size: s.size, sha256: s.sha256 })),
            Err(AttachmentFailure::Output(reason)) => {
                self.fault = Some(Fault::Sink(reason.clone()));
                Err(wasmtime::format_err!("attachment output failed: {reason}"))
            }
            Err(failure) => {
                let message = failure.to_string();
                let error = match &failure {
                    AttachmentFailure::Missing(m) => Error::NotFound(m.clone()),
                    AttachmentFailure::Mismatch(m) => Error::BadData(m.clone()),
                    _ => Error::InvalidArgument(message.clone()),
                };
                // The first failure is the one reported, whatever the plugin does next.
                if self.fault.is_none() {
                    self.fault = Some(Fault::Attachment(message));
                }
                Ok(Err(error))
            }
        }
    }

    fn attachments_or_refuse(&mut self, what: &str) -> wasmtime::Result<Result<(), Error>> {
        self.outside_export(what)?;
        if self.attachments.is_none() {
            return Ok(Err(Error::Denied(format!(
                "{what}: resource `{}` has no blob store; set `[source] blobs` in the job",
                self.resource
            ))));
        }
        if let Some(fault) = &self.fault {
            return Ok(Err(Error::Other(format!("an earlier call failed ({fault:?}); the export has failed"))));
        }
        Ok(Ok(()))
    }
}

impl blobs::Host for HostState {
    fn copy(&mut self, v: blobs::AttachmentVersion) -> wasmtime::Result<Result<blobs::Stored, Error>> {
        if let Err(e) = self.attachments_or_refuse(&format!("copied the blob of attachment {} version {}", v.uid, v.sid))? {
            return Ok(Err(e));
        }
        let version = AttachmentVersion {
            uid: v.uid,
            file_name: v.file_name,
            sid: v.sid,
            version: v.version,
            blob_key: v.blob_key,
            size: v.size,
            sha256: v.sha256,
        };
        let started = std::time::Instant::now();
        let result = self.attachments.as_mut().expect("checked above").copy(&version);
        self.timings.output_wait += started.elapsed();
        self.attachment_result(result)
    }

    fn write_versions(&mut self, uid: String, file_name: String, json: Vec<u8>) -> wasmtime::Result<Result<blobs::Stored, Error>> {
        if let Err(e) = self.attachments_or_refuse(&format!("wrote the versions of attachment {uid}"))? {
            return Ok(Err(e));
        }
        if json.len() > VERSIONS_JSON_BYTES {
            return Ok(Err(Error::LimitExceeded(format!(
                "the versions JSON of attachment {uid} is {} bytes, over the limit of {VERSIONS_JSON_BYTES}",
                json.len()
            ))));
        }
        let result = self.attachments.as_mut().expect("checked above").write_versions(&uid, &file_name, &json);
        self.attachment_result(result)
    }
}
