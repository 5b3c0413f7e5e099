//! The compression bound: how long gzip alone, at level 6, takes to compress the given
//! files on every core, one 4 MiB chunk per thread at a time, reading from memory. It
//! prints two lines: flate2 (zlib-rs), the bound issue 7 names, and libdeflate, the
//! compressor ferry's gzip writer uses.
//! `cargo bench --bench compress_bound -- FILE...`; prints `bound SECONDS MB/s` and
//! `bound-libdeflate SECONDS MB/s`.

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
    let flate2 = bound(&data, |chunk| {
        let mut gz = flate2::write::GzEncoder::new(std::io::sink(), flate2::Compression::default());
        gz.write_all(chunk).unwrap();
        gz.finish().unwrap();
    });
    println!("bound {flate2:.3} {:.1}", total as f64 / 1e6 / flate2);
    let libdeflate = bound(&data, |chunk| {
        let mut c = libdeflater::Compressor::new(libdeflater::CompressionLvl::new(6).unwrap());
        let mut out = vec![0u8; c.gzip_compress_bound(chunk.len())];
        c.gzip_compress(chunk, &mut out).unwrap();
    });
    println!("bound-libdeflate {libdeflate:.3} {:.1}", total as f64 / 1e6 / libdeflate);
}

/// Seconds to run `compress` over every 4 MiB chunk of `data` on every core.
fn bound(data: &[Vec<u8>], compress: impl Fn(&[u8]) + Sync) -> f64 {
    // 4 MiB chunks keep both cores busy even when one file dominates.
    let chunks: Mutex<Vec<&[u8]>> = Mutex::new(data.iter().flat_map(|d| d.chunks(4 << 20)).collect());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..cores {
            s.spawn(|| {
                loop {
                    let Some(chunk) = chunks.lock().unwrap().pop() else { break };
                    compress(chunk);
                }
            });
        }
    });
    started.elapsed().as_secs_f64()
}
