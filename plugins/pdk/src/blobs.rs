//! The blob store, for resources that export attachments (`ferry:plugin/blobs`).
//!
//! A plugin never touches the bytes: it names the attachment, version and blob, and the
//! host streams the blob into the snapshot, checking its size and sha256, and says where
//! it put it. Using this module is what makes a plugin an attachments plugin: its
//! records become the index of the archived files.

use crate::bindings::ferry::plugin::blobs;
use crate::{Result, host};

pub use blobs::{AttachmentVersion, Stored};

/// Streams one version's blob into the snapshot; a missing blob or a size or sha256
/// mismatch fails the export (the host reports it, naming the uid and sid).
pub fn copy(version: &AttachmentVersion) -> Result<Stored> {
    host::blob_copy(version)
}

/// Writes an attachment's version list (a JSON document) beside its files.
pub fn write_versions(uid: &str, file_name: &str, json: &[u8]) -> Result<Stored> {
    host::write_versions(uid, file_name, json)
}
