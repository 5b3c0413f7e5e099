//! The files of one resource: one file, or numbered files split by record count and
//! size (`transactions-00001.avro.gz`, ...). Every file is complete on its own (its own
//! Avro header or CSV header), and a file is cut only between records.
//!
//! The size cut counts the bytes the format wrote, before gzip: that count is the same
//! on every run, where the compressed size at a given record depends on which gzip
//! members the worker threads have finished (issue 22: 12, 11 and 12 files from three
//! runs of one job).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::layout::FileNames;
use super::{ConfinedDir, FileStats, OutputFile};
use crate::formats::{DatumWriter, FileFormat, FormatError};

/// How a resource is split into several files; no limit = one file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Split {
    pub max_records: Option<u64>,
    pub max_bytes: Option<u64>,
}

impl Split {
    pub fn is_split(&self) -> bool {
        self.max_records.is_some() || self.max_bytes.is_some()
    }
}

/// A finished file: its name in the snapshot, its records, its stats.
#[derive(Debug, Clone)]
pub struct WrittenFile {
    pub name: String,
    pub records: u64,
    pub stats: FileStats,
}

struct Current {
    name: String,
    writer: Box<dyn DatumWriter<OutputFile>>,
    records: u64,
    /// Bytes the format handed to the file, before gzip.
    encoded: Arc<AtomicU64>,
}

/// How many datum bytes go to a file between two checks of its size.
const SLICE_BYTES: usize = 64 * 1024;

type OnClose = Box<dyn FnMut(&str) + Send>;

pub struct ResourceFiles {
    dir: ConfinedDir,
    resource: String,
    gzip: bool,
    format: FileFormat,
    split: Split,
    current: Option<Current>,
    done: Vec<WrittenFile>,
    finished: bool,
    /// Told each file's name as soon as it is whole (the packer may take it from there).
    on_close: Option<OnClose>,
}

impl ResourceFiles {
    pub fn new(dir: &ConfinedDir, resource: &str, gzip: bool, format: FileFormat, split: Split) -> Self {
        ResourceFiles {
            dir: dir.clone(),
            resource: resource.into(),
            gzip,
            format,
            split,
            current: None,
            done: Vec::new(),
            finished: false,
            on_close: None,
        }
    }

    /// Calls `on_close` with each file's name once the file is whole.
    pub fn on_close(mut self, on_close: impl FnMut(&str) + Send + 'static) -> Self {
        self.on_close = Some(Box::new(on_close));
        self
    }

    fn open(&mut self) -> Result<&mut Current, FormatError> {
        if self.current.is_none() {
            let names = FileNames::new(&self.resource, self.format.format.extension(), self.gzip);
            let name = if self.split.is_split() { names.numbered(self.done.len() + 1) } else { names.whole() };
            let file = OutputFile::create(&self.dir, &name, self.gzip)?;
            let encoded = file.encoded();
            let writer = self.format.start(file)?;
            self.current = Some(Current { name, writer, records: 0, encoded });
        }
        Ok(self.current.as_mut().expect("just opened"))
    }

    fn close(&mut self) -> Result<(), FormatError> {
        if let Some(cur) = self.current.take() {
            let stats = cur.writer.finish()?.finish()?;
            if let Some(on_close) = &mut self.on_close {
                on_close(&cur.name);
            }
            self.done.push(WrittenFile { name: cur.name, records: cur.records, stats });
        }
        Ok(())
    }

    /// Appends `count` datums; `ends[i]` is where datum `i` ends in `datums`.
    pub fn append(&mut self, count: u32, datums: &[u8], ends: &[u32]) -> Result<(), FormatError> {
        let (max_records, max_bytes) = (self.split.max_records.unwrap_or(u64::MAX), self.split.max_bytes.unwrap_or(u64::MAX));
        let mut first = 0u32;
        while first < count {
            let cur = self.open()?;
            let room = max_records - cur.records;
            let mut take = room.min((count - first) as u64) as u32;
            let start = if first == 0 { 0 } else { ends[first as usize - 1] as usize };
            if max_bytes != u64::MAX {
                // Checked at least every SLICE_BYTES of datums, so a large batch cannot
                // carry a file far past its cap.
                let slice_end = ends[first as usize..(first + take) as usize].partition_point(|&e| (e as usize) - start <= SLICE_BYTES);
                take = (slice_end as u32).max(1);
            }
            let end = ends[(first + take) as usize - 1] as usize;
            cur.writer.append(&datums[start..end], &ends[first as usize..(first + take) as usize], start)?;
            cur.records += take as u64;
            first += take;
            if cur.records >= max_records || cur.encoded.load(Ordering::Relaxed) >= max_bytes {
                self.close()?;
            }
        }
        Ok(())
    }

    /// Finishes the last file. A resource with no records still gets one (empty) file,
    /// with its header, as MX delivers an empty day.
    pub fn finish(mut self) -> Result<Vec<WrittenFile>, FormatError> {
        if self.done.is_empty() {
            self.open()?;
        }
        self.close()?;
        self.finished = true;
        Ok(std::mem::take(&mut self.done))
    }
}

impl Drop for ResourceFiles {
    /// A resource whose files could not be finished leaves none behind: every file in a
    /// snapshot is whole and in the manifest.
    fn drop(&mut self) {
        if !self.finished {
            let names = self.done.iter().map(|f| f.name.clone()).chain(self.current.take().map(|c| c.name));
            for name in names.collect::<Vec<_>>() {
                let _ = self.dir.remove_file(&name);
            }
        }
    }
}
