//! Removing a delivered snapshot's copy from the bucket its delivery record names: what
//! `DELETE /api/v1/snapshots/{id}`, the service's retention purge and `ferry snapshots
//! delete|purge` do before they remove the local directory, so no object is left behind.

use std::path::Path;

use super::{S3, S3Error, S3Url, remove_snapshot};
use crate::package::{DELIVERY_RECORD, DeliveryRecord};

#[derive(Debug, thiserror::Error)]
pub enum RemovalError {
    #[error("snapshot {id}: {DELIVERY_RECORD} cannot be read ({reason}); remove its delivered objects by hand, then the snapshot")]
    Record { id: String, reason: String },
    #[error("snapshot {id} was delivered to {url}, which is not an s3:// URL; remove its objects by hand, then the snapshot")]
    Url { id: String, url: String },
    #[error(
        "cannot remove snapshot {id}'s delivered copy: {source}; the snapshot stays listed: check the bucket's credentials and try again"
    )]
    S3 { id: String, source: S3Error },
}

/// Where snapshot `id` (its local directory `dir`) was delivered: the bucket and the
/// prefix its `<id>/` is under; `None` when it was not delivered.
pub fn delivered_to(dir: &Path, id: &str) -> Result<Option<S3Url>, RemovalError> {
    let record = match std::fs::read(dir.join(DELIVERY_RECORD)) {
        Ok(text) => {
            serde_json::from_slice::<DeliveryRecord>(&text).map_err(|e| RemovalError::Record { id: id.into(), reason: e.to_string() })?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(RemovalError::Record { id: id.into(), reason: e.to_string() }),
    };
    let Some(Ok(url)) = S3Url::parse(&record.url) else {
        return Err(RemovalError::Url { id: id.into(), url: record.url });
    };
    // The record's URL ends with the snapshot's id: the objects are under `<prefix>/<id>/`.
    let prefix = url.prefix.strip_suffix(id).unwrap_or(&url.prefix).trim_end_matches('/').to_string();
    Ok(Some(S3Url { bucket: url.bucket, prefix }))
}

/// Removes every object of snapshot `id`'s delivered copy, connecting to its bucket with
/// `connect`: how many were removed (0 for a snapshot that was not delivered).
pub fn remove_delivered(dir: &Path, id: &str, connect: impl FnOnce(&S3Url) -> Result<S3, S3Error>) -> Result<usize, RemovalError> {
    let Some(base) = delivered_to(dir, id)? else { return Ok(0) };
    let s3 = connect(&base).map_err(|source| RemovalError::S3 { id: id.into(), source })?;
    remove_snapshot(&s3, id).map_err(|source| RemovalError::S3 { id: id.into(), source })
}
