//! One output file: optional gzip, then a sha256 and byte count of what hits the disk.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, sync_channel};

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

/// The file itself, behind the buffer: counts what reaches it and hands a copy of each
/// buffer-sized write to a thread that hashes it, so a part's sha256 is computed on the
/// other core while the next bytes are read and written (measured: a 1 GiB attachment
/// ran at 0.77 of `sha256sum`'s speed with the hash on the packing thread).
struct Hashed {
    file: File,
    bytes: u64,
    to_hasher: Option<SyncSender<Vec<u8>>>,
    hasher: Option<std::thread::JoinHandle<Sha256>>,
}

/// Buffers in flight to the hasher: bounded, so a slow hash holds the writer back
/// instead of letting copies pile up.
const HASH_QUEUE: usize = 4;

impl Hashed {
    fn new(file: File) -> io::Result<Self> {
        let (tx, rx) = sync_channel::<Vec<u8>>(HASH_QUEUE);
        let hasher = std::thread::Builder::new().name("ferry-sha256".into()).spawn(move || {
            let mut hasher = Sha256::new();
            for chunk in rx {
                hasher.update(&chunk);
            }
            hasher
        })?;
        Ok(Hashed { file, bytes: 0, to_hasher: Some(tx), hasher: Some(hasher) })
    }

    /// The file and the sha256 of everything written to it.
    fn finish(mut self) -> io::Result<(File, u64, String)> {
        drop(self.to_hasher.take());
        let hasher = self.hasher.take().expect("joined once").join().map_err(|_| io::Error::other("the sha256 thread panicked"))?;
        Ok((self.file, self.bytes, hex::encode(hasher.finalize())))
    }
}

impl Write for Hashed {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        let sent = self.to_hasher.as_ref().is_some_and(|tx| tx.send(buf[..n].to_vec()).is_ok());
        if !sent {
            return Err(io::Error::other("the sha256 thread stopped"));
        }
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

enum Chain {
    Plain(BufWriter<Hashed>),
    // gzip's header carries no name and mtime 0, and chunks are cut at fixed offsets, so
    // equal input gives equal bytes.
    Gzip(ParGzip<BufWriter<Hashed>>),
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
        let hashed = BufWriter::with_capacity(256 * 1024, Hashed::new(file)?);
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
        let (file, bytes, sha256) = hashed.into_inner().map_err(|e| e.into_error())?.finish()?;
        file.sync_all()?;
        Ok(FileStats { path: self.path, bytes, uncompressed_bytes: self.uncompressed, sha256 })
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
