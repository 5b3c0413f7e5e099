//! One output file: optional gzip, then a sha256 and byte count of what hits the disk.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use super::ConfinedDir;
use super::par_gzip::ParGzip;

/// What a finished file looks like, for the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStats {
    pub path: PathBuf,
    /// Bytes on disk.
    pub bytes: u64,
    /// Bytes before compression (equal to `bytes` when not gzipped).
    pub uncompressed_bytes: u64,
    pub sha256: String,
}

struct Hashed<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> Write for Hashed<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

enum Chain {
    Plain(Hashed<BufWriter<File>>),
    // gzip's header carries no name and mtime 0, and chunks are cut at fixed offsets, so
    // equal input gives equal bytes.
    Gzip(ParGzip<Hashed<BufWriter<File>>>),
}

/// A file being written; `finish` flushes, syncs and reports its stats.
pub struct OutputFile {
    path: PathBuf,
    chain: Chain,
    uncompressed: u64,
    /// `uncompressed`, shared: what a file splitter reads to cut files.
    encoded: Arc<AtomicU64>,
}

impl OutputFile {
    /// Creates `name` in `dir`.
    pub fn create(dir: &ConfinedDir, name: &str, gzip: bool) -> io::Result<Self> {
        let file = dir.create(name)?;
        let path = dir.display(name);
        let hashed = Hashed { inner: BufWriter::with_capacity(256 * 1024, file), hasher: Sha256::new(), bytes: 0 };
        let chain = if gzip { Chain::Gzip(ParGzip::new(hashed)) } else { Chain::Plain(hashed) };
        Ok(OutputFile { path, chain, uncompressed: 0, encoded: Arc::new(AtomicU64::new(0)) })
    }

    /// Bytes handed to the file so far, before gzip. Counted as they are written, on the
    /// writer's thread, so the same input gives the same count at every point; the
    /// compressed count depends on which gzip members the worker threads have finished.
    pub fn encoded(&self) -> Arc<AtomicU64> {
        self.encoded.clone()
    }

    pub fn finish(self) -> io::Result<FileStats> {
        let hashed = match self.chain {
            Chain::Plain(h) => h,
            Chain::Gzip(gz) => gz.finish()?,
        };
        let Hashed { inner, hasher, bytes, .. } = hashed;
        let file = inner.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(FileStats { path: self.path, bytes, uncompressed_bytes: self.uncompressed, sha256: hex::encode(hasher.finalize()) })
    }
}

impl Write for OutputFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = match &mut self.chain {
            Chain::Plain(h) => h.write(buf)?,
            Chain::Gzip(gz) => gz.write(buf)?,
        };
        self.uncompressed += n as u64;
        self.encoded.store(self.uncompressed, Ordering::Relaxed);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.chain {
            Chain::Plain(h) => h.flush(),
            Chain::Gzip(gz) => gz.flush(),
        }
    }
}
