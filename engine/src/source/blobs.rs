//! The platform's blob store (the bytes behind attachments), behind a trait so an S3
//! store can follow the directory one. A store only opens blobs for reading, by key;
//! it never lists, writes or resolves a key outside itself.

use std::fs::File;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

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
    #[error("blob key {key:?} is not a plain relative path inside the store (no `..`, absolute paths, backslashes or NUL); the source row is corrupt or hostile")]
    BadKey { key: String },
    #[error("blob `{key}` resolves outside the blob store {store} (a symbolic link?); remove the link from the store")]
    Escapes { key: String, store: String },
    #[error("cannot read blob `{key}` in {store}: {source}")]
    Io { key: String, store: String, source: std::io::Error },
}

/// A blob store that is a directory: `<root>/<key>`.
#[derive(Debug, Clone)]
pub struct DirBlobStore {
    root: PathBuf,
    /// `root` with links resolved, to check that a key's file really lies inside.
    canonical: PathBuf,
}

impl DirBlobStore {
    pub fn open(root: &Path) -> Result<Self, BlobError> {
        let canonical = root.canonicalize().map_err(|source| BlobError::Store { store: root.display().to_string(), source })?;
        Ok(DirBlobStore { root: root.to_path_buf(), canonical })
    }

    /// The file behind `key`, checked to be a plain relative path that stays inside.
    fn resolve(&self, key: &str) -> Result<PathBuf, BlobError> {
        let plain = !key.is_empty()
            && !key.contains(['\\', '\0'])
            && Path::new(key).components().all(|c| matches!(c, Component::Normal(_)));
        if !plain {
            return Err(BlobError::BadKey { key: key.into() });
        }
        let path = self.root.join(key);
        let real = match path.canonicalize() {
            Ok(p) => p,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(BlobError::Missing { key: key.into(), store: self.describe() });
            }
            Err(source) => return Err(BlobError::Io { key: key.into(), store: self.describe(), source }),
        };
        // Components were all normal, so only a symbolic link can lead out.
        if !real.starts_with(&self.canonical) {
            return Err(BlobError::Escapes { key: key.into(), store: self.describe() });
        }
        Ok(real)
    }
}

impl BlobStore for DirBlobStore {
    fn open(&self, key: &str) -> Result<(Box<dyn Read + Send>, Option<u64>), BlobError> {
        let path = self.resolve(key)?;
        let io = |source| BlobError::Io { key: key.into(), store: self.describe(), source };
        let file = File::open(&path).map_err(io)?;
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
}
