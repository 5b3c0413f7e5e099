//! The compression bound: how long flate2 alone (level 6, ferry's backend) takes to gzip
//! the given files on every core, one file per thread at a time, reading from memory.
//! `cargo bench --bench compress_bound -- FILE...`; prints `bound SECONDS MB/s`.

use std::io::Write;
use std::sync::Mutex;
use std::time::Instant;

fn main() {
    let files: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    if files.is_empty() {
        eprintln!("usage: cargo bench --bench compress_bound -- FILE...");
        return;
    }
    let data: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).expect("reading an input file")).collect();
    let total: usize = data.iter().map(Vec::len).sum();
    // Split into 4 MiB chunks so both cores stay busy even when one file dominates.
    let chunks: Mutex<Vec<&[u8]>> = Mutex::new(data.iter().flat_map(|d| d.chunks(4 << 20)).collect());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..cores {
            s.spawn(|| {
                loop {
                    let Some(chunk) = chunks.lock().unwrap().pop() else { break };
                    let mut gz = flate2::write::GzEncoder::new(std::io::sink(), flate2::Compression::default());
                    gz.write_all(chunk).unwrap();
                    gz.finish().unwrap();
                }
            });
        }
    });
    let secs = started.elapsed().as_secs_f64();
    println!("bound {secs:.3} {:.1}", total as f64 / 1e6 / secs);
}
