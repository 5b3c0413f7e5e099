//! Gzip on every core: input is cut into 256 KiB chunks, each compressed on a shared pool
//! of threads into its own gzip member, and the members are written in order. A gzip
//! file may hold any number of members (RFC 1952 §2.2); `gzip -t`, zcat, Python and
//! every warehouse loader read them as one stream.
//!
//! Memory stays small and flat, however many files are written at once and however large
//! they grow (issue 5: peak RSS was 39 MiB at 1M transactions and 60 MiB at 5M, because
//! the small resources exported beside `transactions` fill their buffers only at the
//! larger scale, and each added its own):
//! - at most two chunks per core wait for or are in compression, counted across every
//!   file, not per file (resources export in parallel);
//! - a file writes each member as soon as it and those before it are compressed, and
//!   never keeps more than two per core waiting;
//! - chunk and member buffers are recycled through the pool instead of being freed on
//!   one thread and allocated on another, which left them in glibc's per-thread arenas;
//! - chunks are 256 KiB: each file holds one while filling it.
//!
//! Why not one member: deflate's window is 32 KiB, so chunks cost little ratio (measured
//! on 64 MiB of transactions Avro at level 6: one stream 24.88% of the input, 1 MiB
//! members 24.93%, 256 KiB members 25.07%), and a single-member parallel encoder
//! (pigz-style) needs the previous chunk's tail as a dictionary, which flate2 does not
//! expose for gzip output.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use libdeflater::{CompressionLvl, Compressor};

const CHUNK: usize = 256 << 10;
/// gzip's default level, as `gzip -6`.
const LEVEL: i32 = 6;
/// Member buffers smaller than this (the last, short member of a file) are not kept.
const MEMBER_MIN: usize = CHUNK / 8;

type Job = (Vec<u8>, SyncSender<io::Result<Vec<u8>>>);

struct Pool {
    tx: SyncSender<Job>,
    threads: usize,
    /// Chunks handed to the pool and not yet compressed, across every file.
    queued: Mutex<usize>,
    freed: Condvar,
    /// Spare chunk buffers (capacity `CHUNK`) and member buffers, for reuse.
    spare_chunks: Mutex<Vec<Vec<u8>>>,
    spare_members: Mutex<Vec<Vec<u8>>>,
}

impl Pool {
    /// The most chunks queued or in compression at once: two per core keep every core busy.
    fn max_queued(&self) -> usize {
        self.threads * 2
    }

    /// Waits for room to queue one more chunk. Room always comes: a queued chunk is
    /// compressed without waiting on anything else.
    fn acquire(&self) {
        let mut queued = self.queued.lock().unwrap_or_else(|e| e.into_inner());
        while *queued >= self.max_queued() {
            queued = self.freed.wait(queued).unwrap_or_else(|e| e.into_inner());
        }
        *queued += 1;
    }

    fn release(&self) {
        let mut queued = self.queued.lock().unwrap_or_else(|e| e.into_inner());
        *queued -= 1;
        drop(queued);
        self.freed.notify_one();
    }

    fn take(list: &Mutex<Vec<Vec<u8>>>, capacity: usize) -> Vec<u8> {
        list.lock().unwrap_or_else(|e| e.into_inner()).pop().unwrap_or_else(|| Vec::with_capacity(capacity))
    }

    /// Keeps a buffer of at least `min` bytes for reuse; no more are kept than can be
    /// in use at once.
    fn give(&self, list: &Mutex<Vec<Vec<u8>>>, mut buf: Vec<u8>, min: usize) {
        if buf.capacity() < min {
            return;
        }
        buf.clear();
        let mut list = list.lock().unwrap_or_else(|e| e.into_inner());
        if list.len() < self.max_queued() + 2 {
            list.push(buf);
        }
    }
}

/// Compression runs a little below the threads that feed it (nice +5 for this thread).
/// A source's reader is one thread: with as many gzip workers as cores, the scheduler
/// gave it two thirds of a core and the whole pipeline waited on it; with the workers
/// below it, it runs whenever it has work and the workers take every other moment.
/// Memory stays bounded: a reader ahead of compression still blocks on the full queue.
fn yield_to_readers() {
    if std::env::var_os("FERRY_GZIP_SAME_PRIORITY").is_some() {
        return;
    }
    // SAFETY: plain system calls on the calling thread's own id.
    unsafe {
        let tid = libc::gettid();
        let now = libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t);
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, (now + 5).min(19));
    }
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        // FERRY_GZIP_THREADS=1 gives the single-threaded baseline the benchmark compares with.
        let threads = std::env::var("FERRY_GZIP_THREADS")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|&n| n > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
        let (tx, rx) = sync_channel::<Job>(threads * 2);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("ferry-gzip-{i}"))
                .spawn(move || {
                    yield_to_readers();
                    let mut compressor = Compressor::new(CompressionLvl::new(LEVEL).expect("a level libdeflate knows"));
                    loop {
                        let job = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        let Ok((chunk, reply)) = job else { break };
                        let pool = pool();
                        let member = compress(&mut compressor, &chunk, Pool::take(&pool.spare_members, CHUNK + CHUNK / 8));
                        pool.give(&pool.spare_chunks, chunk, CHUNK);
                        pool.release();
                        let _ = reply.send(member);
                    }
                })
                .expect("spawning a gzip thread");
        }
        Pool {
            tx,
            threads,
            queued: Mutex::new(0),
            freed: Condvar::new(),
            spare_chunks: Mutex::new(Vec::new()),
            spare_members: Mutex::new(Vec::new()),
        }
    })
}

/// One chunk as one gzip member.
fn compress(compressor: &mut Compressor, chunk: &[u8], mut out: Vec<u8>) -> io::Result<Vec<u8>> {
    out.resize(compressor.gzip_compress_bound(chunk.len()), 0);
    let n = compressor.gzip_compress(chunk, &mut out).map_err(|e| io::Error::other(format!("gzip: {e:?}")))?;
    out.truncate(n);
    Ok(out)
}

/// A gzip writer that compresses on the shared pool.
pub struct ParGzip<W: Write> {
    inner: W,
    buf: Vec<u8>,
    pending: VecDeque<Receiver<io::Result<Vec<u8>>>>,
    wrote_any: bool,
}

impl<W: Write> ParGzip<W> {
    pub fn new(inner: W) -> Self {
        ParGzip { inner, buf: Vec::new(), pending: VecDeque::new(), wrote_any: false }
    }

    fn submit(&mut self) -> io::Result<()> {
        let pool = pool();
        pool.acquire();
        let chunk = std::mem::take(&mut self.buf); // the next one is taken when data comes
        let (tx, rx) = sync_channel(1);
        if pool.tx.send((chunk, tx)).is_err() {
            pool.release();
            return Err(io::Error::other("the gzip pool stopped"));
        }
        self.pending.push_back(rx);
        self.wrote_any = true;
        self.write_ready()?;
        // Keep every core busy, and no more than two members per core waiting to be written.
        while self.pending.len() > pool.threads * 2 {
            self.write_oldest()?;
        }
        Ok(())
    }

    fn write_oldest(&mut self) -> io::Result<()> {
        if let Some(rx) = self.pending.pop_front() {
            let member = rx.recv().map_err(|_| io::Error::other("a gzip thread stopped"))??;
            self.write_member(member)?;
        }
        Ok(())
    }

    fn write_member(&mut self, member: Vec<u8>) -> io::Result<()> {
        self.inner.write_all(&member)?;
        pool().give(&pool().spare_members, member, MEMBER_MIN);
        Ok(())
    }

    /// Writes the members already compressed, in order, so their buffers go back to the
    /// pool at once instead of waiting for this file's next chunk.
    fn write_ready(&mut self) -> io::Result<()> {
        while let Some(rx) = self.pending.front() {
            let member = match rx.try_recv() {
                Ok(member) => member?,
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return Err(io::Error::other("a gzip thread stopped")),
            };
            self.pending.pop_front();
            self.write_member(member)?;
        }
        Ok(())
    }

    /// Compresses what is left and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        // An empty input still makes a valid (empty) gzip file.
        if !self.buf.is_empty() || !self.wrote_any {
            self.submit()?;
        }
        while !self.pending.is_empty() {
            self.write_oldest()?;
        }
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for ParGzip<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.capacity() == 0 {
            self.buf = Pool::take(&pool().spare_chunks, CHUNK);
        }
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.submit()?;
        } else if !self.pending.is_empty() {
            self.write_ready()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// The nice value of each of this process's threads whose name starts with `prefix`.
    fn nice_of_threads(prefix: &str) -> Vec<i64> {
        let mut nices = Vec::new();
        for task in std::fs::read_dir("/proc/self/task").unwrap() {
            let dir = task.unwrap().path();
            let name = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
            if !name.starts_with(prefix) {
                continue;
            }
            let stat = std::fs::read_to_string(dir.join("stat")).unwrap();
            // Fields after the name in parentheses: state is field 3, nice field 19.
            let after = &stat[stat.rfind(')').unwrap() + 2..];
            nices.push(after.split(' ').nth(16).unwrap().parse().unwrap());
        }
        nices
    }

    #[test]
    fn gzip_workers_run_below_the_threads_that_feed_them() {
        let mut gz = ParGzip::new(Vec::new());
        gz.write_all(&[7; CHUNK + 1]).unwrap();
        gz.finish().unwrap();
        // SAFETY: a plain system call about the calling thread.
        let mine = unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) } as i64;
        let workers = nice_of_threads("ferry-gzip-");
        assert!(!workers.is_empty(), "no gzip worker threads found");
        for nice in workers {
            assert_eq!(nice, (mine + 5).min(19), "a gzip worker's nice against the test thread's {mine}");
        }
    }

    #[test]
    fn members_decode_to_the_input_in_order() {
        for len in [0usize, 10, CHUNK - 1, CHUNK, CHUNK * 3 + 17] {
            let input: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let mut gz = ParGzip::new(Vec::new());
            for piece in input.chunks(70_000) {
                gz.write_all(piece).unwrap();
            }
            let out = gz.finish().unwrap();
            let mut back = Vec::new();
            flate2::read::MultiGzDecoder::new(&out[..]).read_to_end(&mut back).unwrap();
            assert_eq!(back, input, "length {len}");
        }
    }

    #[test]
    fn files_written_at_once_share_the_queue_and_recycle_buffers() {
        let inputs: Vec<Vec<u8>> = (0..4).map(|k| (0..CHUNK * 5 + k * 1000).map(|i| ((i * (k + 7)) % 253) as u8).collect()).collect();
        std::thread::scope(|s| {
            for input in &inputs {
                s.spawn(move || {
                    let mut gz = ParGzip::new(Vec::new());
                    for piece in input.chunks(100_000) {
                        gz.write_all(piece).unwrap();
                    }
                    let out = gz.finish().unwrap();
                    let mut back = Vec::new();
                    flate2::read::MultiGzDecoder::new(&out[..]).read_to_end(&mut back).unwrap();
                    assert!(back == *input);
                });
            }
        });
        let pool = pool();
        assert!(*pool.queued.lock().unwrap() <= pool.max_queued());
        assert!(pool.spare_chunks.lock().unwrap().len() <= pool.max_queued() + 2);
        assert!(pool.spare_chunks.lock().unwrap().iter().all(|c| c.is_empty() && c.capacity() >= CHUNK));
    }
}
