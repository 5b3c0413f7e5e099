//! An external sort of byte strings: keys are buffered up to a byte budget, each full
//! buffer is sorted and written as a run file, and the runs are merged (at most
//! [`FAN_IN`] at a time) into one ascending stream. Memory is the budget plus one read
//! buffer per merged run, however many keys there are; nothing is approximated (a Bloom
//! filter would let a dangling reference through).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// Runs merged at once: bounds open files and read buffers.
const FAN_IN: usize = 64;
/// Read and write buffer per run file.
const IO_BUFFER: usize = 64 * 1024;

/// Collects keys, then hands them back sorted.
pub(crate) struct Sorter {
    dir: PathBuf,
    budget: usize,
    arena: Vec<u8>,
    /// (offset, length) of each buffered key in `arena`.
    keys: Vec<(usize, u32)>,
    runs: Vec<PathBuf>,
    next_run: usize,
    /// Keys pushed in all.
    pub(crate) pushed: u64,
}

impl Sorter {
    /// Spills a run whenever the buffered keys pass `budget` bytes; runs go in `dir`.
    pub(crate) fn new(dir: &Path, budget: usize) -> Self {
        Sorter { dir: dir.into(), budget, arena: Vec::new(), keys: Vec::new(), runs: Vec::new(), next_run: 0, pushed: 0 }
    }

    pub(crate) fn push(&mut self, key: &[u8]) -> io::Result<()> {
        let len = u32::try_from(key.len()).map_err(|_| io::Error::other(format!("a key of {} bytes is too long to sort", key.len())))?;
        self.keys.push((self.arena.len(), len));
        self.arena.extend_from_slice(key);
        self.pushed += 1;
        // Each key also costs its index entry.
        if self.arena.len() + self.keys.len() * 16 >= self.budget {
            self.spill()?;
        }
        Ok(())
    }

    fn run_path(&mut self) -> PathBuf {
        self.next_run += 1;
        self.dir.join(format!("run-{:06}", self.next_run))
    }

    fn spill(&mut self) -> io::Result<()> {
        if self.keys.is_empty() {
            return Ok(());
        }
        let path = self.run_path();
        let arena = &self.arena;
        let key = |&(at, len): &(usize, u32)| &arena[at..at + len as usize];
        self.keys.sort_unstable_by(|a, b| key(a).cmp(key(b)));
        let mut out = BufWriter::with_capacity(IO_BUFFER, File::create(&path)?);
        for k in &self.keys {
            write_key(&mut out, key(k))?;
        }
        out.into_inner().map_err(|e| e.into_error())?.sync_data().ok();
        self.runs.push(path);
        self.keys.clear();
        self.arena.clear();
        Ok(())
    }

    /// How many run files were written so far.
    #[cfg(test)]
    pub(crate) fn runs(&self) -> usize {
        self.next_run
    }

    /// Every key pushed, ascending (duplicates kept).
    pub(crate) fn finish(mut self) -> io::Result<Merged> {
        self.spill()?;
        // Merge down to at most FAN_IN runs, writing the intermediate merges as runs.
        while self.runs.len() > FAN_IN {
            let batch: Vec<PathBuf> = self.runs.drain(..FAN_IN).collect();
            let path = self.run_path();
            let mut out = BufWriter::with_capacity(IO_BUFFER, File::create(&path)?);
            let mut merged = Merged::open(&batch)?;
            while let Some(k) = merged.next_key()? {
                write_key(&mut out, &k)?;
            }
            out.flush()?;
            drop(merged);
            for p in batch {
                let _ = std::fs::remove_file(p);
            }
            self.runs.push(path);
        }
        Merged::open(&self.runs)
    }
}

fn write_key(out: &mut impl Write, key: &[u8]) -> io::Result<()> {
    out.write_all(&(key.len() as u32).to_le_bytes())?;
    out.write_all(key)
}

fn read_key(input: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match input.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut key = vec![0u8; u32::from_le_bytes(len) as usize];
    input.read_exact(&mut key)?;
    Ok(Some(key))
}

/// A k-way merge of sorted run files.
pub(crate) struct Merged {
    runs: Vec<BufReader<File>>,
    heap: BinaryHeap<Reverse<(Vec<u8>, usize)>>,
}

impl Merged {
    fn open(paths: &[PathBuf]) -> io::Result<Self> {
        let mut runs = Vec::with_capacity(paths.len());
        let mut heap = BinaryHeap::with_capacity(paths.len());
        for (i, p) in paths.iter().enumerate() {
            let mut r = BufReader::with_capacity(IO_BUFFER, File::open(p)?);
            if let Some(k) = read_key(&mut r)? {
                heap.push(Reverse((k, i)));
            }
            runs.push(r);
        }
        Ok(Merged { runs, heap })
    }

    /// The next key, ascending; duplicates come one after another.
    pub(crate) fn next_key(&mut self) -> io::Result<Option<Vec<u8>>> {
        let Some(Reverse((key, i))) = self.heap.pop() else { return Ok(None) };
        if let Some(k) = read_key(&mut self.runs[i])? {
            self.heap.push(Reverse((k, i)));
        }
        Ok(Some(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Many runs (more than FAN_IN, so an intermediate merge) give back every key in order.
    #[test]
    fn keys_come_back_sorted_through_many_runs() {
        let dir = tempfile::tempdir().unwrap();
        let mut sorter = Sorter::new(dir.path(), 4096);
        let n = 60_000u64;
        // A permutation of 0..n (n is coprime with the step), each key twice.
        for i in 0..n {
            let k = format!("k{:08}", (i * 7_919) % n);
            sorter.push(k.as_bytes()).unwrap();
            sorter.push(k.as_bytes()).unwrap();
        }
        assert!(sorter.runs() > FAN_IN, "{} runs", sorter.runs());
        let mut merged = sorter.finish().unwrap();
        for i in 0..n {
            let want = format!("k{i:08}").into_bytes();
            assert_eq!(merged.next_key().unwrap().unwrap(), want);
            assert_eq!(merged.next_key().unwrap().unwrap(), want);
        }
        assert!(merged.next_key().unwrap().is_none());
    }

    /// `cargo test --release --lib ten_million -- --ignored --nocapture`: sorts 10M
    /// guid-sized keys with the budget `verify --relations` uses and prints the time and
    /// the process's peak memory (VmHWM), which stays near the budget, not the data size.
    #[test]
    #[ignore]
    fn ten_million_keys_sort_in_bounded_memory() {
        let dir = tempfile::tempdir().unwrap();
        let started = std::time::Instant::now();
        let mut sorter = Sorter::new(dir.path(), 32 << 20);
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..10_000_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            sorter.push(format!("USR-{x:016x}-{:016x}", x.rotate_left(29)).as_bytes()).unwrap();
        }
        let runs = sorter.runs();
        let mut merged = sorter.finish().unwrap();
        let (mut n, mut last) = (0u64, Vec::new());
        while let Some(k) = merged.next_key().unwrap() {
            assert!(k >= last);
            last = k;
            n += 1;
        }
        assert_eq!(n, 10_000_000);
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let hwm = status.lines().find(|l| l.starts_with("VmHWM")).unwrap_or("VmHWM: ?");
        eprintln!("10M keys (~370 MB of key bytes) in {runs} runs: {:.1}s, peak {hwm}", started.elapsed().as_secs_f64());
    }
}
