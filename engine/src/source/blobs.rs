//! The platform's blob store (the bytes behind attachments), behind a trait so an S3
//! store can follow the directory one. A store only opens blobs for reading, by key;
//! it never lists, writes or resolves a key outside itself.
//!
//! A directory store is a capability (cap-std's `Dir`): every open resolves the key
//! beneath the store's directory handle, link by link (`openat2` with
//! `RESOLVE_BENEATH` on Linux), so no `..`, absolute link or symbolic link swapped in
//! between a check and the open can lead outside it. There is no separate check.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::Dir;

/// Where attachment bytes come from. `open` hands out a reader that the caller
/// streams in chunks: a store must never load a blob whole.
pub trait BlobStore: Send + Sync {
    /// Opens the blob at `key` for reading; its length, when the store knows it.
    fn open(&self, key: &str) -> Result<(Box<dyn Read + Send>, Option<u64>), BlobError>;
    /// How messages name the store (a directory, a bucket).
    fn describe(&self) -> String;
}

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("the blob store {store} cannot be opened ({source}); check `[source] blobs` in the job")]
    Store { store: String, source: std::io::Error },
    #[error("blob `{key}` is missing from the blob store {store}; check `[source] blobs` points at the platform's blob store")]
    Missing { key: String, store: String },
    #[error(
        "blob key {key:?} is not a plain relative path inside the store (no `..`, absolute paths, backslashes or NUL); the source row is corrupt or hostile"
    )]
    BadKey { key: String },
    #[error("blob `{key}` resolves outside the blob store {store} (a symbolic link?); remove the link from the store")]
    Escapes { key: String, store: String },
    #[error("cannot read blob `{key}` in {store}: {source}")]
    Io { key: String, store: String, source: std::io::Error },
}

/// A blob store that is a directory: `<root>/<key>`, opened once as a capability.
#[derive(Debug, Clone)]
pub struct DirBlobStore {
    root: PathBuf,
    dir: std::sync::Arc<Dir>,
}

impl DirBlobStore {
    pub fn open(root: &Path) -> Result<Self, BlobError> {
        let dir = Dir::open_ambient_dir(root, ambient_authority())
            .map_err(|source| BlobError::Store { store: root.display().to_string(), source })?;
        Ok(DirBlobStore { root: root.to_path_buf(), dir: std::sync::Arc::new(dir) })
    }
}

/// Whether `key` is a plain relative path (a clear error for a hostile row; the open
/// beneath the store's handle would refuse it anyway).
fn plain_key(key: &str) -> bool {
    !key.is_empty() && !key.contains(['\\', '\0']) && Path::new(key).components().all(|c| matches!(c, Component::Normal(_)))
}

impl BlobStore for DirBlobStore {
    fn open(&self, key: &str) -> Result<(Box<dyn Read + Send>, Option<u64>), BlobError> {
        if !plain_key(key) {
            return Err(BlobError::BadKey { key: key.into() });
        }
        let io = |source| BlobError::Io { key: key.into(), store: self.describe(), source };
        let file = match self.dir.open(key) {
            Ok(file) => file.into_std(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(BlobError::Missing { key: key.into(), store: self.describe() });
            }
            // cap-std's word for a path that would lead out (EXDEV from RESOLVE_BENEATH, or
            // its own check where openat2 is missing).
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied && e.to_string().contains("outside") => {
                return Err(BlobError::Escapes { key: key.into(), store: self.describe() });
            }
            Err(e) => return Err(io(e)),
        };
        let meta = file.metadata().map_err(io)?;
        if !meta.is_file() {
            return Err(BlobError::Missing { key: key.into(), store: self.describe() });
        }
        Ok((Box::new(file), Some(meta.len())))
    }

    fn describe(&self) -> String {
        self.root.display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_stay_inside_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("blobs");
        std::fs::create_dir_all(root.join("ab")).unwrap();
        std::fs::write(root.join("ab/cd"), b"hello").unwrap();
        std::fs::write(dir.path().join("secret"), b"no").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), root.join("link")).unwrap();
        let store = DirBlobStore::open(&root).unwrap();

        let (mut r, len) = store.open("ab/cd").unwrap();
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!((s.as_str(), len), ("hello", Some(5)));
        for bad in ["../secret", "/etc/passwd", "ab/../../secret", "ab\\cd", "", "a\0b", "./ab/cd"] {
            assert!(matches!(store.open(bad), Err(BlobError::BadKey { .. })), "{bad:?} was accepted");
        }
        assert!(matches!(store.open("link"), Err(BlobError::Escapes { .. })));
        assert!(matches!(store.open("ab/missing"), Err(BlobError::Missing { .. })));
        assert!(matches!(store.open("ab"), Err(BlobError::Missing { .. })));
    }

    /// A directory of the store swapped for a symbolic link to outside while blobs are
    /// opened (the check-then-open race of a resolve-then-open store): every open reads
    /// the store's bytes or fails; none ever reads the outside file.
    #[test]
    fn a_link_swapped_in_during_opens_never_leads_outside() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("blobs");
        std::fs::create_dir_all(root.join("ab")).unwrap();
        std::fs::write(root.join("ab/cd"), b"inside").unwrap();
        std::fs::create_dir_all(dir.path().join("outside")).unwrap();
        std::fs::write(dir.path().join("outside/cd"), b"SECRET").unwrap();
        let store = DirBlobStore::open(&root).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let swapper = {
            let (root, outside, stop) = (root.clone(), dir.path().join("outside"), stop.clone());
            std::thread::spawn(move || {
                let mut swaps = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    // ab: a real directory <-> a link to outside, swapped atomically by rename.
                    std::os::unix::fs::symlink(&outside, root.join("ab.link")).unwrap();
                    std::fs::rename(root.join("ab"), root.join("ab.real")).unwrap();
                    std::fs::rename(root.join("ab.link"), root.join("ab")).unwrap();
                    std::fs::remove_file(root.join("ab")).unwrap();
                    std::fs::rename(root.join("ab.real"), root.join("ab")).unwrap();
                    swaps += 1;
                }
                swaps
            })
        };
        let (mut inside, mut refused) = (0, 0);
        for _ in 0..20_000 {
            match store.open("ab/cd") {
                Ok((mut r, _)) => {
                    let mut s = String::new();
                    r.read_to_string(&mut s).unwrap();
                    assert_eq!(s, "inside", "a read left the store");
                    inside += 1;
                }
                Err(BlobError::Escapes { .. } | BlobError::Missing { .. }) => refused += 1,
                Err(e) => panic!("unexpected error: {e}"),
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let swaps = swapper.join().unwrap();
        assert!(swaps > 100 && inside > 0, "the race was not exercised: {swaps} swaps, {inside} reads inside, {refused} refused");
        // Left as a link, it is refused outright.
        std::fs::rename(root.join("ab"), root.join("ab.real")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("outside"), root.join("ab")).unwrap();
        assert!(matches!(store.open("ab/cd"), Err(BlobError::Escapes { .. })));
    }
}
