//! A resource's writer thread: validated record batches arrive over a bounded channel
//! (4 batches) and are encoded, compressed, hashed and written while the plugin works
//! on the next ones.
//!
//! ```text
//! plugin ──record batches──▶ validator ──channel(4)──▶ writer thread
//!                                              (avro blocks ▶ gzip ▶ sha256 ▶ file)
//! ```

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::formats::FormatError;
use crate::package::{ResourceFiles, WrittenFile};
use crate::runtime::RecordSink;

/// Batches in flight between the validator and the writer.
const DEPTH: usize = 4;

/// Why a resource's files could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Format(#[from] FormatError),
    #[error("cannot start a writer thread: {0}")]
    Spawn(std::io::Error),
    #[error("the writer thread panicked")]
    Panicked,
}

/// The files a writer finished and the time it was busy.
pub(super) type Written = (Vec<WrittenFile>, Duration);

type Batch = (u32, Vec<u8>, Vec<u32>);

/// A running writer thread.
pub(super) struct FileWriter {
    handle: JoinHandle<Result<Written, FormatError>>,
}

impl FileWriter {
    /// Starts the thread; the returned sink feeds it, and dropping the sink ends the
    /// last file.
    pub fn spawn(resource: &str, files: ResourceFiles, started: Instant) -> Result<(FileWriter, ChannelSink), WriteError> {
        let (tx, rx) = sync_channel::<Batch>(DEPTH);
        let handle = std::thread::Builder::new()
            .name(format!("ferry-write-{resource}"))
            .spawn(move || write_files(files, rx))
            .map_err(WriteError::Spawn)?;
        Ok((FileWriter { handle }, ChannelSink { tx, started, first: Arc::default() }))
    }

    /// Waits for the writer (its sink must be gone) and returns what it wrote.
    pub fn join(self) -> Result<Written, WriteError> {
        self.handle.join().map_err(|_| WriteError::Panicked)?.map_err(WriteError::from)
    }
}

/// The validator's end of the channel; it also notes when the first record arrived.
pub(super) struct ChannelSink {
    tx: SyncSender<Batch>,
    started: Instant,
    first: Arc<OnceLock<Duration>>,
}

impl ChannelSink {
    /// Filled with the time from the run's start to the first record, once one arrives.
    pub fn first_record(&self) -> Arc<OnceLock<Duration>> {
        self.first.clone()
    }
}

impl RecordSink for ChannelSink {
    fn write(&mut self, count: u32, datums: Vec<u8>, ends: Vec<u32>) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if count > 0 {
            self.first.get_or_init(|| self.started.elapsed());
        }
        self.tx.send((count, datums, ends)).map_err(|_| "the output writer stopped".into())
    }
}

fn write_files(mut files: ResourceFiles, rx: Receiver<Batch>) -> Result<Written, FormatError> {
    let mut busy = Duration::ZERO;
    for (count, datums, ends) in rx {
        let t = Instant::now();
        files.append(count, &datums, &ends)?;
        busy += t.elapsed();
    }
    let t = Instant::now();
    let written = files.finish()?;
    Ok((written, busy + t.elapsed()))
}
