//! `ferry snapshots`: the catalog of an output root, for people (tables) and scripts
//! (`--json`).

use std::path::PathBuf;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use serde_json::json;

use ferry::catalog::{Catalog, SnapshotRecord, SnapshotStatus};
use ferry::job::{Job, parse_duration};

use super::{count, printable, short_time, size};

#[derive(Args)]
pub struct SnapshotsArgs {
    /// The output root whose catalog to read.
    #[arg(long, global = true, conflicts_with = "job")]
    dir: Option<PathBuf>,
    /// A job file: its `[output] dir` is the output root, its retention applies to purge.
    #[arg(long, global = true)]
    job: Option<PathBuf>,
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand)]
enum Action {
    /// Every snapshot: id, name, status, records, files, size, created, expires.
    List {
        #[arg(long)]
        json: bool,
        /// Include deleted and purged snapshots.
        #[arg(long)]
        all: bool,
    },
    /// One snapshot (an id or a unique prefix) with its status history.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Every part and file of a snapshot with its size, sha256 and path.
    Files {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Deletes a snapshot's files; its record stays, marked deleted.
    Delete { id: String },
    /// Deletes snapshots past their retention (the job's with --job, else each
    /// snapshot's own, set when it ran; default 30 days).
    Purge {
        /// List what would be deleted, delete nothing.
        #[arg(long)]
        dry_run: bool,
        /// Keep snapshots this long instead ("7d", "12h").
        #[arg(long)]
        retention: Option<String>,
        #[arg(long)]
        json: bool,
        /// The time to purge at (RFC 3339); for tests.
        #[arg(long, hide = true)]
        now: Option<String>,
    },
}

pub fn main(args: SnapshotsArgs) -> Result<()> {
    let (root, job) = match (&args.dir, &args.job) {
        (Some(dir), _) => (dir.clone(), None),
        (None, Some(path)) => {
            let job = Job::load(path)?;
            (job.output_dir.clone(), Some(job))
        }
        (None, None) => anyhow::bail!("say which output root: --dir OUTPUT_DIR, or --job JOB.toml to use its `[output] dir`"),
    };
    let mut catalog = Catalog::open_existing(&root)?;
    catalog.reconcile()?;
    if !catalog.rebuilt().is_empty() {
        eprintln!(
            "note: the catalog {} had no record of {} snapshot(s) on disk ({}); they were recorded again from their manifests",
            catalog.path().display(),
            catalog.rebuilt().len(),
            catalog.rebuilt().join(", ")
        );
    }
    match args.action {
        Action::List { json, all } => {
            catalog.reconcile()?;
            let rows = catalog.list(all)?;
            if json {
                let rows: Vec<_> = rows.iter().map(record_json).collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                print_table(&rows);
            }
        }
        Action::Show { id, json } => {
            catalog.reconcile()?;
            let r = catalog.get(&id)?;
            let history = catalog.history(&r.id)?;
            if json {
                let mut v = record_json(&r);
                v["history"] = serde_json::to_value(&history)?;
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print_record(&r);
                println!("history:");
                for h in history {
                    println!("  {}  {:<11} {}", short_time(&h.at), h.event, printable(&h.detail.unwrap_or_default()));
                }
            }
        }
        Action::Files { id, json } => {
            catalog.reconcile()?;
            let r = catalog.get(&id)?;
            anyhow::ensure!(
                r.status == SnapshotStatus::Completed && r.deleted_at.is_none(),
                "snapshot {} is {}{}; only a completed snapshot that is not deleted has files",
                r.id,
                r.status.as_str(),
                if r.deleted_at.is_some() { " and deleted" } else { "" }
            );
            let files = catalog.files(&r.id)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&files)?);
            } else {
                println!("{:<5} {:<22} {:>10} {:<64}  path", "kind", "resource", "size", "sha256");
                for f in files {
                    let path = match &f.archive {
                        Some(part) => format!("{} (in {part})", f.name),
                        None => f.path.display().to_string(),
                    };
                    println!("{:<5} {:<22} {:>10} {:<64}  {path}", f.kind, f.resource.unwrap_or_default(), size(f.bytes), f.sha256);
                }
            }
        }
        Action::Delete { id } => {
            catalog.reconcile()?;
            let found = catalog.get(&id)?;
            // The copy delivered to S3 first: a failure there leaves the snapshot listed.
            if found.deleted_at.is_none() && !matches!(found.status, SnapshotStatus::Pending | SnapshotStatus::InProgress) {
                let objects = remove_delivered(&found, job.as_ref())?;
                if objects > 0 {
                    eprintln!("removed {objects} delivered object(s) of {}", found.id);
                }
            }
            let r = catalog.delete(&found.id)?;
            println!("deleted snapshot {} ({}), {} freed", r.id, r.name, size(r.bytes.unwrap_or(0)));
        }
        Action::Purge { dry_run, retention, json, now } => {
            let now = match now {
                Some(t) => {
                    DateTime::parse_from_rfc3339(&t).with_context(|| format!("--now {t:?} is not an RFC 3339 time"))?.with_timezone(&Utc)
                }
                None => Utc::now(),
            };
            let retention = match retention {
                Some(r) => Some(parse_duration(&r).and_then(ferry::job::check_retention).map_err(|e| anyhow::anyhow!("--retention: {e}"))?),
                None => job.as_ref().map(|j| j.retention),
            };
            let rows = catalog.expired(now, retention)?;
            if !dry_run {
                for r in &rows {
                    remove_delivered(r, job.as_ref())?;
                    catalog.purge_one(r)?;
                }
            }
            if json {
                let v = json!({"dry_run": dry_run, "snapshots": rows.iter().map(record_json).collect::<Vec<_>>()});
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                let verb = if dry_run { "would delete" } else { "deleted" };
                for r in &rows {
                    println!("{verb} {} {:<20} {:<10} expired {}", r.id, printable(&r.name), r.status.as_str(), short_time(&r.expires_at));
                }
                let freed: u64 = rows.iter().filter_map(|r| r.bytes).sum();
                println!("{} {} snapshot(s), {}", verb, rows.len(), size(freed));
            }
        }
    }
    Ok(())
}

/// Removes a snapshot's copy delivered to S3 (none for one kept on disk), with the job's
/// `[s3]` settings when `--job` is given, else the `AWS_*` environment.
fn remove_delivered(r: &SnapshotRecord, job: Option<&Job>) -> Result<usize> {
    let settings = job.map(|j| j.s3.clone()).unwrap_or_default();
    Ok(ferry::s3::remove_delivered(&r.path, &r.id, |base| ferry::s3::S3::connect(base, &settings))?)
}

/// Whether a completed snapshot's manifest is still where the catalog says.
fn on_disk(r: &SnapshotRecord) -> bool {
    ferry::package::layout::manifest_path(&r.path).is_file()
}

fn record_json(r: &SnapshotRecord) -> serde_json::Value {
    let mut v = serde_json::to_value(r).unwrap_or_default();
    v["on_disk"] = json!(r.status == SnapshotStatus::Completed && r.deleted_at.is_none() && on_disk(r));
    v
}

/// The status for people: incomplete, deleted and missing snapshots say so.
fn status_text(r: &SnapshotRecord) -> String {
    let mut s = r.status.as_str().to_string();
    if r.incomplete {
        s.push_str(" (incomplete)");
    }
    if r.deleted_at.is_some() {
        s.push_str(" (deleted)");
    } else if r.status == SnapshotStatus::Completed && !on_disk(r) {
        s.push_str(" (missing)");
    }
    s
}

fn print_table(rows: &[SnapshotRecord]) {
    println!(
        "{:<36}  {:<14} {:<12} {:>10} {:>6} {:>10}  {:<19}  {:<19}",
        "id", "name", "status", "records", "files", "size", "created (UTC)", "expires (UTC)"
    );
    for r in rows {
        let opt = |n: Option<u64>, f: fn(u64) -> String| n.map(f).unwrap_or_else(|| "-".into());
        println!(
            "{:<36}  {:<14} {:<12} {:>10} {:>6} {:>10}  {:<19}  {:<19}",
            r.id,
            truncate(&printable(&r.name), 14),
            status_text(r),
            opt(r.records, count),
            opt(r.files, count),
            opt(r.bytes, size),
            short_time(&r.created_at),
            short_time(&r.expires_at),
        );
    }
    if rows.is_empty() {
        println!("(no snapshots)");
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n { s.into() } else { format!("{}…", s.chars().take(n - 1).collect::<String>()) }
}

fn print_record(r: &SnapshotRecord) {
    let line = |k: &str, v: &str| println!("{k:<12} {v}");
    line("id", &r.id);
    line("name", &printable(&r.name));
    if let Some(d) = &r.description {
        line("description", &printable(d));
    }
    line("status", &status_text(r));
    if let Some(e) = &r.error {
        line("error", &printable(e));
    }
    line("resources", &r.resources.join(", "));
    if let Some(n) = r.records {
        line("records", &count(n));
    }
    if let Some(n) = r.files {
        line("files", &format!("{}{}", count(n), r.parts.filter(|&p| p > 0).map(|p| format!(" in {p} part(s)")).unwrap_or_default()));
    }
    if let Some(b) = r.bytes {
        line("size", &format!("{} ({b} bytes)", size(b)));
    }
    line("path", &r.path.display().to_string());
    line("as of", &r.as_of);
    line("created", &r.created_at);
    if let Some(t) = &r.completed_at {
        line(if r.status == SnapshotStatus::Failed { "failed" } else { "completed" }, t);
    }
    line("expires", &format!("{} (retention {} days)", r.expires_at, r.retention_seconds as f64 / 86_400.0));
    if let Some(t) = &r.deleted_at {
        line("deleted", t);
    }
    if let Some(pid) = r.pid {
        line("pid", &pid.to_string());
    }
    if let Some(j) = &r.job {
        line("job", j);
    }
}
