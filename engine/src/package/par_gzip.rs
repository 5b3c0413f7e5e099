//! Gzip on every core: input is cut into 1 MiB chunks, each compressed on a shared pool
//! of threads into its own gzip member, and the members are written in order. A gzip
//! file may hold any number of members (RFC 1952 §2.2); `gzip -t`, zcat, Python and
//! every warehouse loader read them as one stream. Memory stays bounded: at most two
//! chunks per core are in flight per file.
//!
//! Why not one member: deflate's window is 32 KiB, so 1 MiB chunks cost well under 1% of
//! ratio, and a single-member parallel encoder (pigz-style) needs the previous chunk's
//! tail as a dictionary, which flate2 does not expose for gzip output.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, OnceLock};

use flate2::Compression;
use flate2::write::GzEncoder;

const CHUNK: usize = 1 << 20;

type Job = (Vec<u8>, SyncSender<io::Result<Vec<u8>>>);

struct Pool {
    tx: SyncSender<Job>,
    threads: usize,
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
                    loop {
                        let job = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        let Ok((chunk, reply)) = job else { break };
                        let _ = reply.send(compress(&chunk));
                    }
                })
                .expect("spawning a gzip thread");
        }
        Pool { tx, threads }
    })
}

fn compress(chunk: &[u8]) -> io::Result<Vec<u8>> {
    let mut gz = GzEncoder::new(Vec::with_capacity(chunk.len() / 3 + 64), Compression::default());
    gz.write_all(chunk)?;
    gz.finish()
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
        ParGzip { inner, buf: Vec::with_capacity(CHUNK), pending: VecDeque::new(), wrote_any: false }
    }

    fn submit(&mut self) -> io::Result<()> {
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        let (tx, rx) = sync_channel(1);
        pool().tx.send((chunk, tx)).map_err(|_| io::Error::other("the gzip pool stopped"))?;
        self.pending.push_back(rx);
        self.wrote_any = true;
        // Keep every core busy, and no more than two chunks per core in flight.
        while self.pending.len() > pool().threads * 2 {
            self.write_oldest()?;
        }
        Ok(())
    }

    fn write_oldest(&mut self) -> io::Result<()> {
        if let Some(rx) = self.pending.pop_front() {
            let member = rx.recv().map_err(|_| io::Error::other("a gzip thread stopped"))??;
            self.inner.write_all(&member)?;
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
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.submit()?;
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
}
