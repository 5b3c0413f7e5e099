//! Sharded snapshots in a bucket (`ferry run --shard i/N` with `[output] dir =
//! "s3://..."`, then `ferry assemble s3://.../<id>`). Each shard uploads its parts and
//! loose files under the snapshot's prefix `<prefix>/<id>/` as a delivery does (names
//! carry the shard's tag, so shards never write the same object), and its shard
//! manifest last, under `<id>/shards/`. A rerun of a shard first withdraws its earlier
//! manifest (its uploads overwrite the same names as they stream), and once its new
//! objects are up removes its earlier ones that the new attempt did not overwrite.
//! `assemble` reads the shard manifests through [`S3Shards`] and puts `manifest.json`.
//! [`download_snapshot`] fetches a delivered snapshot for `ferry verify`.

use std::collections::{BTreeSet, HashMap};
use std::path::{Component, Path};
use std::sync::OnceLock;

use super::{S3, S3Error};
use crate::package::layout::{SHARDS_DIR, Shard};
use crate::package::shards::{ShardStore, StoreError};
use crate::package::{MANIFEST, Manifest};

/// A sharded snapshot's objects: `<prefix>/<id>/` in the bucket `s3` is connected to.
pub struct S3Shards {
    s3: S3,
    id: String,
    /// Every object under `<id>/` (shard manifests aside) with its size, listed once.
    sizes: OnceLock<HashMap<String, u64>>,
}

impl S3Shards {
    /// The snapshot `id` under the prefix `s3` is connected to.
    pub fn new(s3: &S3, id: &str) -> S3Shards {
        S3Shards { s3: s3.clone(), id: id.into(), sizes: OnceLock::new() }
    }

    /// Names under `<id>/<folder>` relative to it, with their sizes.
    fn objects(&self, folder: &str) -> Result<Vec<(String, u64)>, S3Error> {
        let under = if folder.is_empty() { self.id.clone() } else { format!("{}/{folder}", self.id) };
        let objects = self.s3.list(&under)?;
        Ok(objects
            .iter()
            .filter_map(|o| Some((self.s3.relative(&o.location)?.strip_prefix(&under)?.strip_prefix('/')?.to_string(), o.size)))
            .collect())
    }
}

fn remote(e: S3Error) -> StoreError {
    StoreError::Remote(Box::new(e))
}

impl ShardStore for S3Shards {
    fn place(&self) -> String {
        format!("{}/{}", self.s3.url().to_string().trim_end_matches('/'), self.id)
    }

    fn snapshot_id(&self) -> String {
        self.id.clone()
    }

    fn shard_names(&self) -> Result<Option<Vec<String>>, StoreError> {
        let names: Vec<String> = self.objects(SHARDS_DIR).map_err(remote)?.into_iter().map(|(name, _)| name).collect();
        Ok(if names.is_empty() { None } else { Some(names) })
    }

    fn read_shard(&self, name: &str) -> Result<Vec<u8>, StoreError> {
        self.s3.get(&format!("{}/{SHARDS_DIR}/{name}", self.id)).map_err(remote)
    }

    fn size(&self, name: &str) -> Result<Option<u64>, StoreError> {
        if self.sizes.get().is_none() {
            let listed = self.objects("").map_err(remote)?;
            let _ = self.sizes.set(listed.into_iter().collect());
        }
        Ok(self.sizes.get().and_then(|sizes| sizes.get(name).copied()))
    }

    fn write_manifest(&self, bytes: &[u8]) -> Result<(), StoreError> {
        self.s3.put(&format!("{}/{MANIFEST}", self.id), bytes.to_vec()).map_err(remote)
    }
}

/// Removes shard `shard`'s manifests of earlier attempts from `<id>/shards/`, before its
/// rerun overwrites their objects: from then on `assemble` finds the shard missing, not
/// a manifest whose parts are being replaced. Returns how many went.
pub(crate) fn withdraw_shard(s3: &S3, id: &str, shard: Shard) -> Result<usize, S3Error> {
    let shards = S3Shards::new(s3, id);
    let own = format!("{}.", shard.name());
    let mut removed = 0;
    for (name, _) in shards.objects(SHARDS_DIR)?.into_iter().filter(|(name, _)| name.starts_with(&own)) {
        s3.delete(&format!("{id}/{SHARDS_DIR}/{name}"))?;
        removed += 1;
    }
    Ok(removed)
}

/// Removes the objects of `<id>/` that carry the shard's `tag` in their name but are not
/// among `keep` (this attempt's): an earlier attempt's parts or files this one did not
/// overwrite. Shard manifests and other shards' objects are left alone.
pub(crate) fn remove_shard_leftovers(s3: &S3, id: &str, tag: &str, keep: &BTreeSet<String>) -> Result<usize, S3Error> {
    let shards = S3Shards::new(s3, id);
    let mut removed = 0;
    for (name, _) in shards.objects("")? {
        if !name.starts_with(&format!("{SHARDS_DIR}/")) && name.contains(tag) && !keep.contains(&name) {
            s3.delete(&format!("{id}/{name}"))?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Why a delivered snapshot could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error(transparent)]
    S3(#[from] S3Error),
    #[error("the manifest at {url} is not a ferry manifest ({source}); is this a snapshot's prefix (`s3://bucket/prefix/<snapshot-id>`)?")]
    Manifest { url: String, source: serde_json::Error },
    #[error("the manifest at {url} names the file {name:?}, which would land outside the snapshot; the manifest is not to be trusted")]
    BadName { url: String, name: String },
}

/// Downloads snapshot `id` (its manifest, signature if any, every part and loose file
/// the manifest lists) into the directory `to`, so it can be checked as a recipient
/// would. Names come from the manifest and must stay inside `to`.
pub fn download_snapshot(s3: &S3, id: &str, to: &Path) -> Result<(), DownloadError> {
    let url = format!("{}/{id}", s3.url().to_string().trim_end_matches('/'));
    let text = s3.get(&format!("{id}/{MANIFEST}"))?;
    let manifest: Manifest = serde_json::from_slice(&text).map_err(|source| DownloadError::Manifest { url: url.clone(), source })?;
    let local = |path: &Path| {
        let path = path.to_path_buf();
        move |source| S3Error::Local { path, source }
    };
    std::fs::create_dir_all(to).map_err(local(to))?;
    std::fs::write(to.join(MANIFEST), &text).map_err(local(&to.join(MANIFEST)))?;
    let signature = crate::package::sign::SIGNATURE_FILE;
    if s3.list(&format!("{id}/{signature}"))?.iter().any(|o| o.location.as_ref().ends_with(signature)) {
        s3.download(&format!("{id}/{signature}"), &to.join(signature))?;
    }
    let parts = manifest.archives.iter().map(|a| a.name.as_str());
    let loose = manifest.resources.iter().flat_map(|r| &r.files).filter(|f| f.archive.is_none()).map(|f| f.path.as_str());
    for name in parts.chain(loose) {
        let relative = Path::new(name);
        if name.is_empty() || !relative.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(DownloadError::BadName { url, name: name.into() });
        }
        let path = to.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(local(parent))?;
        }
        s3.download(&format!("{id}/{name}"), &path)?;
    }
    Ok(())
}
