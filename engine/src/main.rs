//! The `ferry` command line: the only place that prints for people or uses `anyhow`.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use ferry::job::Job;
use ferry::run::{RunOptions, run};
use ferry::runtime::{self, Events, Level, Origin, Runtime};
use ferry::source::{DemoSpec, generate_demo};

/// Export a platform's data as a verifiable snapshot, through sandboxed plugins.
#[derive(Parser)]
#[command(name = "ferry", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a job file and publish a snapshot. Exits 0 when the snapshot is complete, 1 on
    /// an error (nothing published), 2 when `on_error = "continue"` published it incomplete.
    Run {
        /// The job file (TOML).
        job: PathBuf,
        /// Print per-resource timings after the run.
        #[arg(long)]
        stats: bool,
        /// Print plugin progress reports.
        #[arg(long, short)]
        verbose: bool,
    },
    /// Generate the deterministic demo platform (DIR/platform.db and DIR/blobs/).
    Demo {
        #[arg(long)]
        out: PathBuf,
        /// 1.0 = 1,000 users and about 100,000 transactions.
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// List the built-in plugins and their record schemas.
    Plugins {
        /// Print the full Avro schema of each.
        #[arg(long)]
        schemas: bool,
    },
}

struct Printer {
    verbose: bool,
    last: Mutex<Instant>,
}

impl Events for Printer {
    fn log(&self, resource: &str, level: Level, message: &str) {
        if level >= Level::Info || self.verbose {
            eprintln!("[{resource}] {}: {message}", format!("{level:?}").to_lowercase());
        }
    }

    fn progress(&self, resource: &str, done: u64, total: Option<u64>) {
        let mut last = self.last.lock().unwrap();
        if self.verbose && last.elapsed().as_millis() >= 500 {
            *last = Instant::now();
            match total {
                Some(t) => eprintln!("[{resource}] {done}/{t} records"),
                None => eprintln!("[{resource}] {done} records"),
            }
        }
    }
}

/// Exit status of a run that published a snapshot with failed resources left out.
const EXIT_INCOMPLETE: i32 = 2;

fn main() {
    if let Err(e) = real_main() {
        eprintln!("error: {}", chain(&e));
        std::process::exit(1);
    }
}

/// The error and its causes, each cause once: many messages already quote their source,
/// and `{:#}` would repeat it.
fn chain(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let cause = cause.to_string();
        let tail = cause.rsplit(": ").next().unwrap_or(&cause);
        if text.contains(&cause) || text.contains(tail) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    text
}

fn real_main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { job, stats, verbose } => {
            let started = Instant::now();
            let job = Job::load(&job)?;
            let options = RunOptions {
                events: Arc::new(Printer { verbose, last: Mutex::new(Instant::now()) }),
                cache_dir: runtime::default_cache_dir(),
                parallelism: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
            };
            let report = run(&job, &options)?;
            let m = &report.manifest;
            for r in &m.resources {
                if let Some(e) = &r.error {
                    eprintln!("warning: resource `{}` failed ({}) and is left out of the snapshot: {}", r.name, e.kind, e.message);
                }
            }
            let records: u64 = m.resources.iter().map(|r| r.records).sum();
            let bytes: u64 = m.resources.iter().flat_map(|r| &r.files).map(|f| f.bytes).sum();
            println!("snapshot {} ({:?}): {records} records, {bytes} bytes in {:.2}s", m.snapshot_id, m.status, started.elapsed().as_secs_f64());
            println!("{}", report.snapshot_dir.display());
            if stats {
                let mut out = std::io::stdout().lock();
                writeln!(out, "{:<24} {:>10} {:>12} {:>9} {:>9} {:>9}", "resource", "records", "bytes", "plugin s", "write s", "wall s")?;
                for r in &m.resources {
                    let bytes: u64 = r.files.iter().map(|f| f.bytes).sum();
                    let t = &r.timings;
                    writeln!(out, "{:<24} {:>10} {:>12} {:>9.3} {:>9.3} {:>9.3}", r.name, r.records, bytes, t.plugin_seconds, t.write_seconds, t.wall_seconds)?;
                }
            }
            if m.status != ferry::package::Status::Completed {
                // Published, but not whole: scripts must not mistake it for a full export.
                eprintln!("warning: the snapshot is incomplete (`on_error = \"continue\"`); its manifest records each failure");
                std::process::exit(EXIT_INCOMPLETE);
            }
        }
        Command::Demo { out, scale, seed } => {
            anyhow::ensure!(scale > 0.0 && scale <= 1000.0, "--scale {scale} is out of range; use a value above 0 and at most 1000");
            let started = Instant::now();
            let db = out.join("platform.db");
            anyhow::ensure!(!db.exists(), "{} already exists; remove it or choose another --out", db.display());
            let counts = generate_demo(&db, &out.join("blobs"), DemoSpec { seed, scale })?;
            println!("{} in {:.2}s: {counts:?}", db.display(), started.elapsed().as_secs_f64());
        }
        Command::Plugins { schemas } => {
            let runtime = Runtime::new(runtime::default_cache_dir()).map_err(|e| anyhow::anyhow!("{e}"))?;
            for name in runtime::builtin_names() {
                let wasm = runtime::builtin(name).context("built-in plugin")?;
                let plugin = runtime.load(Origin::Builtin(name.into()), wasm)?;
                let info = &plugin.info;
                println!("{:<24} {:<8} {}", info.name, info.version, info.description);
                let tables: Vec<_> = info.tables.iter().map(|t| t.table.as_str()).collect();
                println!("{:<24} reads: {}", "", tables.join(", "));
                if schemas {
                    let v: serde_json::Value = serde_json::from_str(&info.schema)?;
                    println!("{}", serde_json::to_string_pretty(&v)?);
                }
            }
        }
    }
    Ok(())
}
