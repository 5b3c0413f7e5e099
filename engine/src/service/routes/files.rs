//! A snapshot's files: the list (with download URLs) and the download itself, streamed
//! from disk or, for a delivered snapshot, from S3, with one `Range` honoured.

use std::path::PathBuf;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use futures_util::StreamExt as _;
use sha2::{Digest, Sha256};

use super::snapshots::{check_id, lookup};
use super::views::{FileList, FileView};
use crate::catalog::{Catalog, SnapshotStatus};
use crate::package::{DELIVERY_RECORD, DeliveryRecord};
use crate::service::error::{ApiError, ErrorBody};
use crate::service::extract::{ApiPath, Caller};
use crate::service::state::AppState;

/// Bytes read from disk per chunk of a download.
const CHUNK: usize = 256 * 1024;

/// Where a snapshot's files are.
enum Stored {
    Disk(PathBuf),
    /// Delivered: parts and files in the bucket, the manifest still in `dir`.
    S3 {
        job: String,
        url: crate::s3::S3Url,
        dir: PathBuf,
    },
}

/// The files of a completed, present snapshot: parts, loose files and the manifest.
fn downloadable(c: &Catalog, id: &str) -> Result<(Vec<FileView>, Stored), ApiError> {
    let (r, s) = lookup(c, id)?;
    let Some(s) = s else {
        return Err(match r.deleted_at {
            Some(at) => ApiError::Gone(format!("snapshot {id} was deleted at {at}")),
            None if r.state == crate::catalog::RequestState::Finished => {
                ApiError::Conflict(format!("snapshot {id} failed; it has no files"))
            }
            None => ApiError::Conflict(format!("snapshot {id} is not completed yet (pending); poll /api/v1/snapshots/{id}")),
        });
    };
    if let Some(at) = &s.deleted_at {
        return Err(ApiError::Gone(format!("snapshot {id} was deleted at {at}")));
    }
    if s.status != SnapshotStatus::Completed {
        return Err(ApiError::Conflict(format!(
            "snapshot {id} is {}, not completed; its files can be downloaded once it is",
            s.status.as_str()
        )));
    }
    if chrono::DateTime::parse_from_rfc3339(&s.expires_at).is_ok_and(|t| t <= chrono::Utc::now()) {
        return Err(ApiError::Gone(format!("snapshot {id} expired at {} and is due to be purged", s.expires_at)));
    }
    let dir = s.path.clone();
    let delivered = std::fs::read(dir.join(DELIVERY_RECORD)).ok().and_then(|t| serde_json::from_slice::<DeliveryRecord>(&t).ok());
    let url = |name: &str| format!("/api/v1/snapshots/{id}/files/{name}");
    let mut files: Vec<FileView> = c
        .files(&s.id)?
        .into_iter()
        .filter(|f| f.kind == "part" || f.archive.is_none())
        .map(|f| FileView { url: url(&f.name), kind: f.kind, resource: f.resource, bytes: f.bytes, sha256: f.sha256, name: f.name })
        .collect();
    let manifest = std::fs::read(dir.join("manifest.json"))
        .map_err(|e| ApiError::Gone(format!("snapshot {id}'s manifest is gone from disk ({e})")))?;
    files.push(FileView {
        name: "manifest.json".into(),
        kind: "manifest".into(),
        resource: None,
        bytes: manifest.len() as u64,
        sha256: hex::encode(Sha256::digest(&manifest)),
        url: url("manifest.json"),
    });
    let stored = match delivered.as_ref().and_then(|d| crate::s3::S3Url::parse(&d.url)).and_then(Result::ok) {
        Some(u) => Stored::S3 { job: r.job.clone(), url: u, dir },
        None if delivered.is_some() => return Err(ApiError::Internal(format!("snapshot {id}'s {DELIVERY_RECORD} names no s3:// URL"))),
        None => Stored::Disk(dir),
    };
    Ok((files, stored))
}

/// Every file of a completed snapshot (tar parts, loose files, the manifest) with its
/// size, sha256 and download URL.
#[utoipa::path(get, path = "/api/v1/snapshots/{id}/files", params(("id" = String, Path, description = "the snapshot's id")),
    responses((status = 200, body = FileList), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "not completed", body = ErrorBody), (status = 410, description = "deleted or expired", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(State(state): State<AppState>, _caller: Caller, ApiPath(id): ApiPath<String>) -> Result<Json<FileList>, ApiError> {
    check_id(&id)?;
    let list = state
        .db(move |c| {
            let (files, stored) = downloadable(c, &id)?;
            let stored = match stored {
                Stored::Disk(_) => "disk".to_string(),
                Stored::S3 { url, .. } => url.to_string(),
            };
            Ok(FileList { id, stored, files })
        })
        .await?;
    Ok(Json(list))
}

/// A file name as it may appear in a URL: one plain path segment.
fn check_name(name: &str) -> Result<(), ApiError> {
    let plain = !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && !name.contains("..")
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if plain {
        Ok(())
    } else {
        Err(ApiError::field(
            "name",
            format!(
                "{:?} is not a file name of a snapshot; `GET /api/v1/snapshots/{{id}}/files` lists them",
                name.chars().take(80).collect::<String>()
            ),
        ))
    }
}

/// The one range asked for, inclusive, or why it cannot be served.
#[derive(Debug, PartialEq, Eq)]
enum Wanted {
    Whole,
    Part(u64, u64),
}

fn wanted(headers: &HeaderMap, len: u64, etag: &str) -> Result<Wanted, ApiError> {
    let Some(range) = headers.get(header::RANGE) else { return Ok(Wanted::Whole) };
    // If-Range with another validator: the file changed, so the whole file is sent.
    if let Some(v) = headers.get(header::IF_RANGE)
        && v.as_bytes() != etag.as_bytes()
    {
        return Ok(Wanted::Whole);
    }
    let unsatisfiable = |message: String| ApiError::RangeNotSatisfiable { message, length: Some(len) };
    let text = range.to_str().map_err(|_| unsatisfiable("the Range header is not ASCII".into()))?;
    let Some(spec) = text.trim().strip_prefix("bytes=") else {
        // Another unit: ignored, as RFC 9110 says.
        return Ok(Wanted::Whole);
    };
    if spec.contains(',') {
        return Err(unsatisfiable(format!("{text:?} asks for several ranges; ask for one range at a time")));
    }
    let (a, b) = spec.trim().split_once('-').ok_or_else(|| unsatisfiable(format!("{text:?} is not a byte range such as bytes=0-1023")))?;
    let num = |s: &str| s.trim().parse::<u64>().map_err(|_| unsatisfiable(format!("{text:?} is not a byte range such as bytes=0-1023")));
    let (start, end) = match (a.trim().is_empty(), b.trim().is_empty()) {
        (true, true) => return Err(unsatisfiable(format!("{text:?} names no bytes"))),
        (true, false) => {
            let n = num(b)?;
            if n == 0 || len == 0 {
                return Err(unsatisfiable(format!("{text:?} asks for no bytes of a {len}-byte file")));
            }
            (len.saturating_sub(n), len - 1)
        }
        (false, open) => {
            let start = num(a)?;
            let end = if open { len.saturating_sub(1) } else { num(b)?.min(len.saturating_sub(1)) };
            if !open && num(b)? < start {
                return Err(unsatisfiable(format!("{text:?} ends before it starts")));
            }
            if start >= len {
                return Err(unsatisfiable(format!("{text:?} starts past the end of the {len}-byte file")));
            }
            (start, end)
        }
    };
    Ok(if start == 0 && end + 1 == len { Wanted::Whole } else { Wanted::Part(start, end) })
}

/// Downloads one file: `Content-Length`, `ETag` (its sha256), `Accept-Ranges: bytes`;
/// one `Range` gives 206, a range past the end 416.
#[utoipa::path(get, path = "/api/v1/snapshots/{id}/files/{name}",
    params(("id" = String, Path, description = "the snapshot's id"), ("name" = String, Path, description = "a name from the file list")),
    responses((status = 200, description = "the file", content_type = "application/octet-stream"),
        (status = 206, description = "the range asked for", content_type = "application/octet-stream"),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 410, body = ErrorBody), (status = 416, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn download(
    State(state): State<AppState>,
    _caller: Caller,
    ApiPath((id, name)): ApiPath<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_id(&id)?;
    check_name(&name)?;
    let (id2, name2) = (id.clone(), name.clone());
    let (file, stored) = state
        .db(move |c| {
            let (files, stored) = downloadable(c, &id2)?;
            let file = files
                .into_iter()
                .find(|f| f.name == name2)
                .ok_or_else(|| ApiError::NotFound(format!("snapshot {id2} has no file {name2:?}")))?;
            Ok((file, stored))
        })
        .await?;
    let etag = format!("\"{}\"", file.sha256);
    let range = wanted(&headers, file.bytes, &etag)?;
    let (start, end) = match range {
        Wanted::Whole => (0, file.bytes.saturating_sub(1)),
        Wanted::Part(s, e) => (s, e),
    };
    let len = if file.bytes == 0 { 0 } else { end - start + 1 };
    let body = match &stored {
        Stored::S3 { job, url, .. } if file.kind != "manifest" && len > 0 => s3_body(&state, job, url, &name, start..end + 1).await?,
        Stored::S3 { dir, .. } | Stored::Disk(dir) => disk_body(&state, dir.join(&name), start, len).await?,
    };
    let mut response = Response::new(body);
    let h = response.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::ETAG, HeaderValue::from_str(&etag).map_err(|e| ApiError::Internal(e.to_string()))?);
    let content_type = if file.kind == "manifest" {
        "application/json"
    } else if name.ends_with(".tar") {
        "application/x-tar"
    } else {
        "application/octet-stream"
    };
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Wanted::Part(s, e) = range {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        let v = HeaderValue::from_str(&format!("bytes {s}-{e}/{}", file.bytes)).map_err(|e| ApiError::Internal(e.to_string()))?;
        response.headers_mut().insert(header::CONTENT_RANGE, v);
    }
    Ok(response)
}

/// `len` bytes of a file from `start`, read in chunks as the client takes them. One
/// blocking reader per download hands chunks through a channel two deep: a read per chunk
/// through `tokio::fs` would hop to the blocking pool every time (0.65 of nginx's speed
/// on one 1 GiB part), and the channel bounds memory per download to three chunks.
async fn disk_body(state: &AppState, path: PathBuf, start: u64, len: u64) -> Result<Body, ApiError> {
    use std::io::{Read as _, Seek as _};
    let gone =
        |e: std::io::Error| ApiError::Gone(format!("{} is gone from disk ({e})", path.file_name().unwrap_or_default().to_string_lossy()));
    let mut f = std::fs::File::open(&path).map_err(gone)?;
    f.seek(std::io::SeekFrom::Start(start)).map_err(|e| ApiError::Internal(format!("seeking {}: {e}", path.display())))?;
    let (chunks, received) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(2);
    tokio::task::spawn_blocking(move || {
        let mut rest = f.take(len);
        loop {
            let mut buf = vec![0u8; CHUNK];
            let chunk = match rest.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    buf.truncate(n);
                    Ok(bytes::Bytes::from(buf))
                }
                Err(e) => Err(e),
            };
            let failed = chunk.is_err();
            // A client that hung up drops the receiver: the reader stops.
            if chunks.blocking_send(chunk).is_err() || failed {
                return;
            }
        }
    });
    let st = state.clone();
    let stream = tokio_stream_from(received);
    Ok(Body::from_stream(stream.map(move |chunk| {
        if let Ok(c) = &chunk {
            st.metrics.served(c.len() as u64);
        }
        chunk
    })))
}

/// A receiver as a stream of its messages.
fn tokio_stream_from<T: Send + 'static>(received: tokio::sync::mpsc::Receiver<T>) -> impl futures_util::Stream<Item = T> {
    futures_util::stream::unfold(received, |mut r| async move { r.recv().await.map(|item| (item, r)) })
}

/// Bytes `range` of a delivered file, streamed from its bucket.
async fn s3_body(state: &AppState, job: &str, url: &crate::s3::S3Url, name: &str, range: std::ops::Range<u64>) -> Result<Body, ApiError> {
    let key = format!("{job}|{}", url.bucket);
    let s3 = {
        let cached = state.s3.lock().unwrap_or_else(|p| p.into_inner()).get(&key).cloned();
        match cached {
            Some(s3) => s3,
            None => {
                let settings = state.jobs.get(job).map(|j| j.job.s3.clone()).unwrap_or_default();
                let bucket = crate::s3::S3Url { bucket: url.bucket.clone(), prefix: String::new() };
                let s3 = tokio::task::spawn_blocking(move || crate::s3::S3::connect(&bucket, &settings))
                    .await
                    .map_err(|e| ApiError::Internal(e.to_string()))?
                    .map_err(|e| ApiError::Unavailable(e.to_string()))?;
                state.s3.lock().unwrap_or_else(|p| p.into_inner()).insert(key, s3.clone());
                s3
            }
        }
    };
    let object = url.key(name);
    let stream =
        s3.get_range_stream(&object, range).await.map_err(|e| ApiError::Unavailable(format!("the delivered copy cannot be read: {e}")))?;
    let st = state.clone();
    Ok(Body::from_stream(stream.map(move |chunk| {
        if let Ok(c) = &chunk {
            st.metrics.served(c.len() as u64);
        }
        chunk.map_err(std::io::Error::other)
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(v: &str, len: u64) -> Result<Wanted, u16> {
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, HeaderValue::from_str(v).unwrap());
        wanted(&h, len, "\"x\"").map_err(|_| 416)
    }

    #[test]
    fn one_range_is_served_and_others_refused() {
        assert_eq!(range("bytes=0-9", 100), Ok(Wanted::Part(0, 9)));
        assert_eq!(range("bytes=90-", 100), Ok(Wanted::Part(90, 99)));
        assert_eq!(range("bytes=-10", 100), Ok(Wanted::Part(90, 99)));
        assert_eq!(range("bytes=50-500", 100), Ok(Wanted::Part(50, 99)));
        assert_eq!(range("bytes=0-99", 100), Ok(Wanted::Whole));
        assert_eq!(range("bytes=-500", 100), Ok(Wanted::Whole));
        assert_eq!(range("items=0-1", 100), Ok(Wanted::Whole));
        assert_eq!(range("bytes=100-", 100), Err(416));
        assert_eq!(range("bytes=0-1,5-6", 100), Err(416));
        assert_eq!(range("bytes=9-3", 100), Err(416));
        assert_eq!(range("bytes=-0", 100), Err(416));
        assert_eq!(range("bytes=x-", 100), Err(416));
        assert!(check_name("..").is_err());
        assert!(check_name("a/b").is_err() && check_name("a\0b").is_err() && check_name(".hidden").is_err());
        assert!(check_name("snapshot_tables_part1_2026-03-31-143022.tar").is_ok());
    }
}
