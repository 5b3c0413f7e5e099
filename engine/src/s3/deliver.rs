//! Delivering a published snapshot to `s3://bucket/prefix/<snapshot-id>/`.
//!
//! Every tar part and file goes up with a multipart upload (8 MiB parts, four in flight)
//! read straight from disk, and its local copy is deleted as soon as the upload is
//! complete; `manifest.json` goes up last, in one PUT. S3 makes an object visible only
//! when its upload completes, so a delivery killed at any point leaves either no
//! manifest under the snapshot's prefix (and a consumer that waits for the manifest
//! never sees the partial files as a snapshot) or a manifest whose every file is there.
//! A rerun is a new snapshot with a new id: it never reuses or overwrites the dead one.

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use object_store::{ObjectStoreExt, WriteMultipart};

use super::{S3, S3Error};

/// Bytes per uploaded part (S3's minimum for all but the last is 5 MiB).
const PART: usize = 8 << 20;
/// Parts in flight per file.
const IN_FLIGHT: usize = 4;
const MANIFEST: &str = "manifest.json";

/// What a delivery uploaded.
#[derive(Debug, Clone)]
pub struct Delivered {
    /// `s3://bucket/prefix/<id>/`.
    pub url: String,
    pub objects: usize,
    pub bytes: u64,
    pub elapsed: Duration,
}

/// Uploads the snapshot in `dir` under `<prefix>/<id>/`: every file but the manifest
/// (in name order), then the manifest. Local copies of the uploaded files are removed
/// one by one; the manifest stays as the local record of what was delivered.
pub fn deliver(s3: &S3, dir: &Path, id: &str) -> Result<Delivered, S3Error> {
    let started = Instant::now();
    let local = |path: &Path| {
        let path = path.to_path_buf();
        move |source| S3Error::Local { path, source }
    };
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(local(dir))?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()
        .map_err(local(dir))?;
    names.retain(|n| n != MANIFEST);
    names.sort();
    let abort_after = fault_injection();
    let mut bytes = 0u64;
    for name in &names {
        let path = dir.join(name);
        if !path.is_file() {
            continue;
        }
        bytes += upload_file(s3, &path, &format!("{id}/{name}"), &mut |sent| {
            if abort_after.is_some_and(|limit| bytes + sent >= limit) {
                // Simulates a crash mid-upload (tests only): no cleanup, no unwinding.
                std::process::abort();
            }
        })?;
        std::fs::remove_file(&path).map_err(local(&path))?;
    }
    let manifest = std::fs::read(dir.join(MANIFEST)).map_err(local(&dir.join(MANIFEST)))?;
    bytes += manifest.len() as u64;
    s3.put(&format!("{id}/{MANIFEST}"), manifest)?;
    Ok(Delivered { url: format!("{}/{id}/", s3.url.to_string().trim_end_matches('/')), objects: names.len() + 1, bytes, elapsed: started.elapsed() })
}

/// `FERRY_FAULT_S3_ABORT_AFTER_BYTES`: abort the process once that many bytes of a
/// delivery were handed to uploads. Lets the tests kill a delivery at a known point
/// instead of racing a timer.
fn fault_injection() -> Option<u64> {
    std::env::var("FERRY_FAULT_S3_ABORT_AFTER_BYTES").ok()?.parse().ok()
}

/// One multipart upload from a file; `progress` sees the bytes handed over so far.
fn upload_file(s3: &S3, path: &Path, name: &str, progress: &mut dyn FnMut(u64)) -> Result<u64, S3Error> {
    let location = s3.path(name);
    let local = |source| S3Error::Local { path: path.to_path_buf(), source };
    let mut file = std::fs::File::open(path).map_err(local)?;
    s3.rt.block_on(async {
        let upload = s3.store.put_multipart(&location).await.map_err(s3.err("multipart upload", name))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
        let mut buf = vec![0u8; 1 << 20];
        let mut sent = 0u64;
        loop {
            let n = match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(local(e));
                }
            };
            if let Err(e) = writer.wait_for_capacity(IN_FLIGHT).await {
                let _ = writer.abort().await;
                return Err(s3.err("upload part", name)(e));
            }
            writer.write(&buf[..n]);
            sent += n as u64;
            progress(sent);
        }
        writer.finish().await.map_err(s3.err("complete multipart upload", name))?;
        Ok(sent)
    })
}
