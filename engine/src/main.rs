//! The `ferry` command line: the only place that prints for people or uses `anyhow`.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use ferry::job::Job;
use ferry::run::{RunOptions, run};
use ferry::runtime::{self, Origin, Runtime};
use ferry::source::{DemoSpec, generate_demo};

mod cli;

/// Export a platform's data as a verifiable snapshot, through sandboxed plugins.
#[derive(Parser)]
#[command(name = "ferry", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// What `ferry plugins` does besides listing.
#[derive(Subcommand)]
enum PluginsAction {
    /// Write a new plugin project (outside ferry's tree) that builds and exports against
    /// the demo platform out of the box.
    New {
        /// The resource's name: a letter, then letters, digits, _ or -.
        name: String,
        /// The plugin's language: rust, python (componentize-py) or js (componentize-js).
        #[arg(long, default_value = "rust")]
        lang: String,
        /// Where to write it (default: ./NAME); must not exist.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The plugin kit the project depends on by path (default: this checkout's plugins/pdk).
        #[arg(long)]
        kit: Option<PathBuf>,
    },
    /// Run a plugin against the demo platform (or a job's source) and report its describe
    /// output, grants, checks, records, time and memory; exits 1 when a check fails.
    Test {
        /// The plugin component (`.wasm`).
        plugin: PathBuf,
        /// Read from this job's `[source]` (and its `as_of`) instead of the demo platform.
        #[arg(long)]
        job: Option<PathBuf>,
        /// A resource option for the plugin, KEY=VALUE (repeatable).
        #[arg(long = "option", value_name = "KEY=VALUE")]
        options: Vec<String>,
        /// Scale of the demo platform (generated once in the plugin cache directory).
        #[arg(long, default_value_t = 0.1)]
        scale: f64,
    },
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
        /// Print debug logs and the plugins' own progress reports.
        #[arg(long, short)]
        verbose: bool,
        /// Per-resource progress: bars on a terminal, plain lines otherwise (auto), or
        /// JSON lines on stderr for machines.
        #[arg(long, value_enum, default_value = "auto")]
        progress: cli::progress::Mode,
        /// Export only this shard's slice of every resource: INDEX/COUNT (0-based,
        /// `3/4` is the last of four), or `auto` (the index from JOB_COMPLETION_INDEX,
        /// AWS_BATCH_JOB_ARRAY_INDEX or FERRY_SHARD_INDEX). Then `ferry assemble`.
        #[arg(long, value_name = "I/N|auto")]
        shard: Option<String>,
        /// The shard count for `--shard auto` (else FERRY_SHARDS, JOB_COMPLETIONS or
        /// AWS_BATCH_JOB_ARRAY_SIZE).
        #[arg(long, value_name = "N")]
        shards: Option<u32>,
        /// The snapshot every shard writes into (default: derived from the job's name
        /// and as_of, the same on every worker).
        #[arg(long, value_name = "ID", requires = "shard")]
        snapshot_id: Option<String>,
    },
    /// Make one snapshot of a sharded run's shards: checks every shard manifest in
    /// DIR/shards/ (missing, duplicated, stale), writes DIR/manifest.json and records the
    /// snapshot in the catalog of DIR's parent (for s3://, of the job's local root).
    Assemble {
        /// The sharded snapshot: `<[output] dir>/<snapshot id>`, a directory or
        /// `s3://bucket/prefix/<snapshot id>`.
        dir: PathBuf,
        /// How many shards the run had.
        #[arg(long)]
        shards: u32,
        /// For s3://: the shards' job file, for its `[s3]` settings and the local root
        /// whose catalog records the snapshot (default: the AWS_* environment and
        /// `.ferry-s3/<bucket>/<prefix>` in the current directory).
        #[arg(long, value_name = "JOB")]
        job: Option<PathBuf>,
    },
    /// What a job will export, before running it: rows per resource (counted in the
    /// source, window included), estimated size, files, parts, time and storage cost.
    Plan {
        /// The job file (TOML).
        job: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// The snapshots of an output root: list, show, files, delete, purge.
    Snapshots(cli::snapshots::SnapshotsArgs),
    /// Generate the deterministic demo platform (DIR/platform.db and DIR/blobs/).
    Demo {
        #[arg(long)]
        out: PathBuf,
        /// 1.0 = 1,000 users and about 100,000 transactions.
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Also load the platform into this PostgreSQL database (replacing the demo's
        /// tables there); blobs stay in DIR/blobs/.
        #[arg(long, value_name = "URL")]
        postgres: Option<String>,
    },
    /// Check a snapshot as its recipient would: parts, members, sizes, sha256, gzip,
    /// record counts. Exits non-zero on any mismatch.
    Verify {
        /// The snapshot directory (the one holding manifest.json), or a delivered
        /// snapshot's `s3://bucket/prefix/<snapshot id>` (downloaded to a temporary
        /// directory first).
        dir: PathBuf,
        /// For s3://: the job file whose `[s3]` settings reach the bucket (default: the
        /// AWS_* environment).
        #[arg(long, value_name = "JOB")]
        job: Option<PathBuf>,
        /// Also check that every reference the manifest declares (`accounts.user_guid`
        /// -> `users.guid`) resolves to a record in the snapshot, and that keys are
        /// unique (an on-disk sort: memory stays flat however many keys).
        #[arg(long)]
        relations: bool,
        /// An age identity file (or OpenSSH private key) that decrypts the parts and
        /// files of an encrypted snapshot, so their content is checked too.
        #[arg(long, value_name = "KEY")]
        identity: Option<PathBuf>,
        /// The signer's public key (ferry.pub): manifest.json.minisig must verify with it.
        #[arg(long, value_name = "PUB")]
        key: Option<PathBuf>,
    },
    /// Signing keys for manifests: `ferry keys generate [--dir D]`.
    Keys(cli::keys::KeysArgs),
    /// What a snapshot holds, read from its files: per resource the records, per column
    /// the type, nulls, min, max and a distinct estimate, per month for a windowed one.
    Inspect {
        /// The snapshot directory (the one holding manifest.json).
        dir: PathBuf,
        /// Only this resource.
        #[arg(long, value_name = "R")]
        resource: Option<String>,
        /// Compare with another snapshot instead: records per resource and columns
        /// added, removed or retyped (from the two manifests).
        #[arg(long, value_name = "DIR")]
        against: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the built-in plugins and their record schemas; `plugins new` writes a new one.
    Plugins {
        /// Print the full Avro schema of each.
        #[arg(long)]
        schemas: bool,
        #[command(subcommand)]
        action: Option<PluginsAction>,
    },
    /// Serve the snapshot HTTP API: request, track, list and download snapshots.
    Serve {
        /// The service config (TOML; examples/service.toml).
        #[arg(long)]
        config: PathBuf,
        /// Address to listen on, overriding the config's `listen`.
        #[arg(long)]
        listen: Option<String>,
        /// One log line per request on stderr, as text or JSON.
        #[arg(long, value_enum, default_value = "text")]
        log_format: cli::serve::LogFormat,
    },
    /// The service's API tokens: create (printed once), list, revoke.
    Tokens(cli::serve::TokensArgs),
    /// The service's schedules: cadence, next runs, pause state, last slot.
    Schedules(cli::schedules::SchedulesArgs),
}

/// Exit status of a run that published a snapshot with failed resources left out.
const EXIT_INCOMPLETE: i32 = 2;

fn main() {
    // First thing, so `first_record_seconds` counts the whole start-up.
    let started = Instant::now();
    if let Err(e) = real_main(started) {
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

fn real_main(process_started: Instant) -> Result<()> {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Run { .. }) {
        cli::quiet_on_closed_stdout();
    }
    match cli.command {
        Command::Assemble { dir, shards, job } => cli::shards::assemble(&dir, shards, job.as_deref())?,
        Command::Run { job, stats, verbose, progress, shard, shards, snapshot_id } => {
            let started = Instant::now();
            let job = Job::load(&job)?;
            let shard = match shard {
                Some(shard) => {
                    let shard = cli::shards::parse(&shard, shards)?;
                    let snapshot_id = match snapshot_id {
                        Some(id) => {
                            cli::shards::check_snapshot_id(&id)?;
                            id
                        }
                        None => ferry::run::snapshot_id_for(&job),
                    };
                    Some(ferry::run::ShardRun { shard, snapshot_id })
                }
                None => None,
            };
            let sharded = shard.clone();
            let display = Arc::new(cli::progress::Display::new(progress, verbose));
            let options = RunOptions {
                events: display.clone(),
                // Without a display, nothing needs the expected row counts (a count per resource).
                progress: (progress != cli::progress::Mode::None).then_some(display),
                cache_dir: runtime::default_cache_dir(),
                parallelism: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
                started: process_started,
                shard,
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
            let status = if m.status == ferry::package::Status::Completed { "completed" } else { "incomplete" };
            let seconds = started.elapsed().as_secs_f64();
            match &sharded {
                Some(s) => println!(
                    "shard {}/{} of snapshot {} ({status}): {} records, {} in {seconds:.2}s",
                    s.shard.index,
                    s.shard.count,
                    m.snapshot_id,
                    cli::count(records),
                    cli::size(bytes)
                ),
                None => println!(
                    "snapshot {} ({status}): {} records, {} in {seconds:.2}s",
                    m.snapshot_id,
                    cli::count(records),
                    cli::size(bytes)
                ),
            }
            println!("{}", cli::clean_path(&report.snapshot_dir).display());
            if let Some(d) = &report.delivered {
                let mb = d.bytes as f64 / 1e6;
                println!(
                    "delivered {} objects, {mb:.1} MB to {} in {:.2}s from the first upload to the manifest ({:.1} MB/s)",
                    d.objects,
                    d.url,
                    d.elapsed.as_secs_f64(),
                    mb / d.elapsed.as_secs_f64().max(1e-9)
                );
            }
            if stats {
                let mut out = std::io::stdout().lock();
                let header = ("resource", "records", "bytes", "plugin s", "write s", "wall s", "plugin mem");
                let (a, b, c, d, e, f, g) = header;
                writeln!(out, "{a:<24} {b:>10} {c:>12} {d:>9} {e:>9} {f:>9} {g:>11}")?;
                for r in &m.resources {
                    let bytes: u64 = r.files.iter().map(|f| f.bytes).sum();
                    let t = &r.timings;
                    let (records, bytes) = (cli::count(r.records), cli::size(bytes));
                    let memory = t.plugin_memory_bytes.map_or_else(|| "-".into(), cli::size);
                    writeln!(
                        out,
                        "{:<24} {records:>10} {bytes:>12} {:>9.3} {:>9.3} {:>9.3} {memory:>11}",
                        r.name, t.plugin_seconds, t.write_seconds, t.wall_seconds
                    )?;
                }
                if let Some(first) = m.resources.iter().filter_map(|r| r.timings.first_record_seconds).reduce(f64::min) {
                    writeln!(out, "start-up to first record: {:.1} ms", first * 1000.0)?;
                }
            }
            if m.status != ferry::package::Status::Completed {
                // Published, but not whole: scripts must not mistake it for a full export.
                eprintln!("warning: the snapshot is incomplete (`on_error = \"continue\"`); its manifest records each failure");
                std::process::exit(EXIT_INCOMPLETE);
            }
        }
        Command::Demo { out, scale, seed, postgres } => {
            // Parsed first: a bad URL fails before minutes of generating.
            let postgres = postgres.map(|u| ferry::source::PostgresUrl::parse(&u)).transpose()?;
            anyhow::ensure!(scale > 0.0 && scale <= 1000.0, "--scale {scale} is out of range; use a value above 0 and at most 1000");
            let started = Instant::now();
            let db = out.join("platform.db");
            anyhow::ensure!(!db.exists(), "{} already exists; remove it or choose another --out", db.display());
            let counts = generate_demo(&db, &out.join("blobs"), DemoSpec { seed, scale })?;
            println!("{} in {:.2}s: {counts}", db.display(), started.elapsed().as_secs_f64());
            if let Some(url) = postgres {
                let started = Instant::now();
                let rows = ferry::source::load_demo_postgres(&db, &url)?;
                println!("{url}: {rows} rows loaded in {:.2}s", started.elapsed().as_secs_f64());
            }
        }
        Command::Verify { dir, job, relations, identity, key } => {
            // A delivered snapshot is checked in a downloaded copy (removed on return).
            let (dir, _download) = cli::shards::local_copy(&dir, job.as_deref())?;
            let keys = ferry::package::verify::Keys {
                identity: identity.map(|p| ferry::package::encrypt::Identities::read(&p)).transpose()?,
                key: key.map(|p| ferry::package::sign::VerifyingKey::read(&p)).transpose()?,
            };
            let mut report = ferry::package::verify::verify_with(&dir, &keys)?;
            if relations {
                report.findings.extend(ferry::package::relations::verify_relations(&dir, keys.identity.as_ref())?.findings);
            }
            for f in &report.findings {
                println!("{} {:<56} {}", if f.ok { "ok  " } else { "FAIL" }, f.subject, f.detail);
            }
            let failed = report.findings.iter().filter(|f| !f.ok).count();
            if let Some(ferry::package::Status::Incomplete) = report.status {
                println!("note: the manifest says this snapshot is incomplete (a resource failed under on_error = \"continue\")");
            }
            if failed > 0 {
                anyhow::bail!("{} verification failed: {failed} of {} checks", dir.display(), report.findings.len());
            }
            println!("{} verified: {} checks passed", dir.display(), report.findings.len());
        }
        Command::Plan { job, json } => {
            let job = Job::load(&job)?;
            let runtime = Runtime::new(runtime::default_cache_dir()).map_err(|e| anyhow::anyhow!("{e}"))?;
            let parallelism = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
            cli::plan::print(&ferry::plan::plan(&job, &runtime, parallelism)?, json)?;
        }
        Command::Snapshots(args) => cli::snapshots::main(args)?,
        Command::Keys(args) => cli::keys::main(args)?,
        Command::Serve { config, listen, log_format } => cli::serve::serve(config, listen, log_format)?,
        Command::Tokens(args) => cli::serve::tokens(args)?,
        Command::Schedules(args) => cli::schedules::schedules(args)?,
        Command::Inspect { dir, resource, against, json } => inspect(&dir, resource.as_deref(), against.as_deref(), json)?,
        Command::Plugins { action: Some(PluginsAction::New { name, lang, dir, kit }), .. } => {
            let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
            let kit = kit.unwrap_or_else(cli::scaffold::default_kit);
            let lang: cli::scaffold::Lang = lang.parse()?;
            cli::scaffold::new(&name, lang, &dir, &kit)?;
            scaffold_next_steps(&name, lang, &dir);
        }
        Command::Plugins { action: Some(PluginsAction::Test { plugin, job, options, scale }), .. } => {
            if !cli::plugin_test::main(cli::plugin_test::TestArgs { wasm: plugin, job, options, scale })? {
                std::process::exit(1);
            }
        }
        Command::Plugins { schemas, action: None } => {
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

/// After `ferry plugins new`: how to build, test and run the project, and the build tool
/// to install first when it is not on PATH.
fn scaffold_next_steps(name: &str, lang: cli::scaffold::Lang, dir: &std::path::Path) {
    use cli::scaffold::{Lang, build_command, component_path, missing_tool};
    println!("wrote plugin `{name}` in {}", cli::clean_path(dir).display());
    let test = if lang == Lang::Rust { "cargo test && " } else { "" };
    let wasm = component_path(lang, name);
    println!("next: cd {} && {test}{} && ferry plugins test {wasm} && ferry run job.toml", dir.display(), build_command(lang));
    if let Some((tool, how)) = missing_tool(lang) {
        println!("note: {tool} is not on PATH and the build needs it: {how} (see the project's README)");
    }
}

fn inspect(dir: &std::path::Path, resource: Option<&str>, against: Option<&std::path::Path>, json: bool) -> Result<()> {
    if let Some(b) = against {
        let changes = ferry::inspect::against(dir, b)?;
        if json {
            println!("{}", serde_json::to_string_pretty(&changes)?);
            return Ok(());
        }
        let n = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
        for c in changes {
            println!("{}: records {} -> {}", c.name, n(c.records_a), n(c.records_b));
            for (what, cols) in [("added", &c.columns_added), ("removed", &c.columns_removed), ("retyped", &c.columns_retyped)] {
                if !cols.is_empty() {
                    println!("  columns {what}: {}", cols.join(", "));
                }
            }
        }
        return Ok(());
    }
    let reports = ferry::inspect::inspect(dir, resource)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
        return Ok(());
    }
    for r in reports {
        let note = if r.records == r.manifest_records { String::new() } else { format!(" (manifest says {})", r.manifest_records) };
        println!("{} ({}): {} records{note}", r.name, r.format, r.records);
        println!("  {:<28} {:<20} {:>10} {:>10}  {:<32} max", "column", "type", "nulls", "distinct~", "min");
        for c in &r.columns {
            let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
            println!(
                "  {:<28} {:<20} {:>10} {:>10}  {:<32} {}",
                c.name,
                c.type_name,
                c.nulls,
                c.distinct_estimate,
                show(&c.min),
                show(&c.max)
            );
        }
        for (month, n) in &r.per_month {
            println!("  {month}: {n}");
        }
    }
    Ok(())
}
