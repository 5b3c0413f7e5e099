//! The snapshot catalog (`<out>/catalog.db`): every status transition, a SIGKILLed run
//! settled as failed at the next start, two runs at once on one output root, delete,
//! purge at the retention edge, and `ferry plan` counting exactly what a run exports.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::common::{Platform, assert_nothing_published, ferry, plugin, run, snapshots, stderr};

fn snapshots_cmd(out: &Path, args: &[&str]) -> Output {
    ferry().arg("snapshots").arg("--dir").arg(out).args(args).output().unwrap()
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "ferry failed: {}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    String::from_utf8(out.stdout).unwrap()
}

fn list(out: &Path, all: bool) -> Vec<Value> {
    let args: &[&str] = if all { &["list", "--json", "--all"] } else { &["list", "--json"] };
    serde_json::from_str(&ok(snapshots_cmd(out, args))).unwrap()
}

fn show(out: &Path, id: &str) -> Value {
    serde_json::from_str(&ok(snapshots_cmd(out, &["show", id, "--json"]))).unwrap()
}

fn events(snapshot: &Value) -> Vec<String> {
    snapshot["history"].as_array().unwrap().iter().map(|h| h["event"].as_str().unwrap().to_string()).collect()
}

fn only(out: &Path) -> Value {
    let rows = list(out, true);
    assert_eq!(rows.len(), 1, "{rows:#?}");
    show(out, rows[0]["id"].as_str().unwrap())
}

fn time(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap().with_timezone(&Utc)
}

fn manifest(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}

fn sha256(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

/// The raw status in the catalog, read without ferry (so without its reconcile).
fn raw_status(out: &Path, id: &str) -> String {
    let conn = rusqlite::Connection::open_with_flags(out.join("catalog.db"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    conn.query_row("SELECT status FROM snapshots WHERE id = ?1", [id], |r| r.get(0)).unwrap()
}

const USERS_ACCOUNTS: &str = "[[resource]]\nname = \"users\"\n\n[[resource]]\nname = \"accounts\"\n";

#[test]
fn a_run_goes_pending_in_progress_completed_and_lists_every_file_with_its_sha256() {
    let p = Platform::new(0.05, 7);
    let job = p.job("listed", "", USERS_ACCOUNTS);
    let out = run(&job);
    assert!(out.status.success(), "{}", stderr(&out));
    let s = only(&p.out());
    assert_eq!(events(&s), ["pending", "in_progress", "completed"]);
    assert_eq!(s["status"], "completed");
    assert_eq!(s["on_disk"], true);
    assert_eq!(s["resources"], serde_json::json!(["users", "accounts"]));
    let dir = &snapshots(&p.out())[0];
    assert_eq!(s["id"].as_str().unwrap(), dir.file_name().unwrap().to_str().unwrap());
    let m = manifest(dir);
    let records: u64 = m["resources"].as_array().unwrap().iter().map(|r| r["records"].as_u64().unwrap()).sum();
    assert_eq!(s["records"].as_u64().unwrap(), records);
    assert!(records > 0);
    assert_eq!(s["files"], 2);
    assert!(s["pid"].is_null(), "a finished run keeps no pid: {s}");

    let files: Vec<Value> = serde_json::from_str(&ok(snapshots_cmd(&p.out(), &["files", s["id"].as_str().unwrap(), "--json"]))).unwrap();
    assert_eq!(files.len(), 2);
    let mut total = 0;
    for f in &files {
        let path = PathBuf::from(f["path"].as_str().unwrap());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), f["bytes"].as_u64().unwrap(), "{f}");
        assert_eq!(sha256(&path), f["sha256"].as_str().unwrap(), "{f}");
        assert!(f["url"].as_str().unwrap().starts_with("file:///"), "{f}");
        total += f["bytes"].as_u64().unwrap();
    }
    assert_eq!(s["bytes"].as_u64().unwrap(), total);

    // A prefix of the id is enough for people; the human table names the snapshot.
    let id = s["id"].as_str().unwrap();
    assert_eq!(show(&p.out(), &id[..8])["id"], id);
    let table = ok(snapshots_cmd(&p.out(), &["list"]));
    assert!(table.contains(id) && table.contains("completed") && table.contains("listed"), "{table}");
}

#[test]
fn a_packed_snapshot_lists_its_tar_parts_with_their_sha256() {
    let p = Platform::new(0.05, 8);
    let job = p.job("packed", "archive = \"tar\"\npart_size = \"64KiB\"", USERS_ACCOUNTS);
    let out = run(&job);
    assert!(out.status.success(), "{}", stderr(&out));
    let s = only(&p.out());
    let files: Vec<Value> = serde_json::from_str(&ok(snapshots_cmd(&p.out(), &["files", s["id"].as_str().unwrap(), "--json"]))).unwrap();
    let parts: Vec<_> = files.iter().filter(|f| f["kind"] == "part").collect();
    assert!(!parts.is_empty(), "{files:#?}");
    let mut total = 0;
    for part in &parts {
        let path = PathBuf::from(part["path"].as_str().unwrap());
        assert_eq!(sha256(&path), part["sha256"].as_str().unwrap());
        total += std::fs::metadata(&path).unwrap().len();
    }
    assert_eq!(s["bytes"].as_u64().unwrap(), total, "the size of a packed snapshot is its parts'");
    assert_eq!(s["parts"].as_u64().unwrap(), parts.len() as u64);
    for f in files.iter().filter(|f| f["kind"] == "file") {
        assert!(parts.iter().any(|p| p["name"] == f["archive"]), "{f} is in no listed part");
    }
}

#[test]
fn a_plugin_that_cannot_load_fails_the_snapshot_from_pending() {
    let p = Platform::new(0.02, 9);
    let bogus = p.dir.path().join("bogus.wasm");
    std::fs::write(&bogus, b"not a component").unwrap();
    let job = p.job("bogus", "", &format!("[[resource]]\nname = \"bogus\"\nplugin = \"{}\"\n", bogus.display()));
    let out = run(&job);
    assert!(!out.status.success());
    assert_nothing_published(&p.out());
    let s = only(&p.out());
    assert_eq!(events(&s), ["pending", "failed"]);
    assert_eq!(s["status"], "failed");
    let error = s["error"].as_str().unwrap();
    assert!(error.contains("not a WebAssembly component"), "{error}");
    // A failed snapshot has no files to list.
    let files = snapshots_cmd(&p.out(), &["files", s["id"].as_str().unwrap()]);
    assert!(!files.status.success() && stderr(&files).contains("failed"), "{}", stderr(&files));
}

#[test]
fn a_failed_resource_fails_the_snapshot_from_in_progress_or_marks_it_incomplete() {
    let p = Platform::new(0.02, 10);
    let hostile = plugin("ferry-test-hostile");
    let resources =
        format!("{USERS_ACCOUNTS}\n[[resource]]\nname = \"hostile\"\nplugin = \"{}\"\noptions = {{ mode = \"panic\" }}\n", hostile.display());
    let out = run(&p.job("fails", "", &resources));
    assert!(!out.status.success());
    assert_nothing_published(&p.out());
    let s = only(&p.out());
    assert_eq!(events(&s), ["pending", "in_progress", "failed"]);
    let error = s["error"].as_str().unwrap();
    assert!(error.contains("hostile") && error.contains("panics on purpose"), "{error}");
    assert!(s["completed_at"].is_string() && s["records"].is_null(), "{s}");

    let out = run(&p.job("continues", "on_error = \"continue\"", &resources));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let rows = list(&p.out(), false);
    let s = show(&p.out(), rows.iter().find(|r| r["name"] == "continues").unwrap()["id"].as_str().unwrap());
    assert_eq!(events(&s), ["pending", "in_progress", "completed"]);
    assert_eq!(s["incomplete"], true);
    assert!(s["error"].as_str().unwrap().contains("resource `hostile` failed"), "{s}");
    assert_eq!(s["files"], 2, "users and accounts only");
}

/// Waits until the run's catalog entry is in progress and its staging directory exists.
fn wait_in_progress(out: &Path, child: &mut std::process::Child) -> String {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(child.try_wait().unwrap().is_none(), "the run ended before it could be killed; use a bigger platform");
        assert!(Instant::now() < deadline, "the run never showed as in progress");
        if out.join("catalog.db").is_file() {
            let conn = rusqlite::Connection::open_with_flags(out.join("catalog.db"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
            conn.busy_timeout(Duration::from_secs(10)).unwrap();
            let id: Option<String> = conn
                .query_row("SELECT id FROM snapshots WHERE status = 'in_progress'", [], |r| r.get(0))
                .ok();
            if let Some(id) = id
                && out.join(format!(".staging-{id}")).is_dir()
            {
                return id;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_sigkilled_run_is_marked_failed_at_the_next_start_and_its_staging_removed() {
    let p = Platform::new(0.5, 11);
    let job = p.job("killed", "", "[[resource]]\nname = \"transactions\"\n\n[[resource]]\nname = \"accounts\"\n");
    let mut child = ferry().arg("run").arg(&job).arg("--progress").arg("none").stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let id = wait_in_progress(&p.out(), &mut child);
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap(); // SIGKILL: no destructor, no cleanup runs
    let status = child.wait().unwrap();
    assert!(!status.success());
    assert!(p.out().join(format!(".staging-{id}")).is_dir(), "a SIGKILL leaves the staging directory");
    assert_eq!(raw_status(&p.out(), &id), "in_progress", "nothing has looked at it yet");
    assert!(snapshots(&p.out()).is_empty());

    // The next run starts, finds the dead run, fails it and removes its staging.
    let small = p.job("after", "", USERS_ACCOUNTS);
    let out = run(&small);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(raw_status(&p.out(), &id), "failed");
    assert!(!p.out().join(format!(".staging-{id}")).exists());
    let s = show(&p.out(), &id);
    assert_eq!(events(&s), ["pending", "in_progress", "failed"]);
    let error = s["error"].as_str().unwrap();
    assert!(error.contains("killed or crashed") && error.contains(&format!("process {}", child.id())), "{error}");
    let rows = list(&p.out(), false);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows.iter().filter(|r| r["status"] == "completed").count(), 1);
    assert_eq!(snapshots(&p.out()).len(), 1, "only the second run published");
}

#[test]
fn a_run_killed_after_publishing_is_settled_completed_from_disk() {
    // The window between the rename and the catalog update: simulated by putting a
    // completed run's entry back to in_progress under a pid that is gone.
    let p = Platform::new(0.02, 12);
    let out = run(&p.job("late", "", USERS_ACCOUNTS));
    assert!(out.status.success(), "{}", stderr(&out));
    let id = list(&p.out(), false)[0]["id"].as_str().unwrap().to_string();
    let conn = rusqlite::Connection::open(p.out().join("catalog.db")).unwrap();
    let mut dead = Command::new("true").spawn().unwrap();
    dead.wait().unwrap();
    conn.execute(
        "UPDATE snapshots SET status = 'in_progress', pid = ?2, pid_start = NULL, records = NULL, files = NULL, bytes = NULL WHERE id = ?1",
        rusqlite::params![id, dead.id()],
    )
    .unwrap();
    conn.execute("DELETE FROM files WHERE snapshot_id = ?1", [&id]).unwrap();
    drop(conn);
    let s = show(&p.out(), &id);
    assert_eq!(s["status"], "completed", "{s}");
    assert_eq!(s["files"], 2);
    assert!(events(&s).last().unwrap() == "completed");

    // And one whose published directory lost a file is failed, never completed.
    let out = run(&p.job("broken", "", USERS_ACCOUNTS));
    assert!(out.status.success());
    let id = list(&p.out(), false).iter().find(|r| r["name"] == "broken").unwrap()["id"].as_str().unwrap().to_string();
    std::fs::remove_file(p.out().join(&id).join("users.avro.gz")).unwrap();
    let conn = rusqlite::Connection::open(p.out().join("catalog.db")).unwrap();
    conn.execute("UPDATE snapshots SET status = 'in_progress', pid = ?2, pid_start = NULL WHERE id = ?1", rusqlite::params![id, dead.id()]).unwrap();
    conn.execute("DELETE FROM files WHERE snapshot_id = ?1", [&id]).unwrap();
    drop(conn);
    let s = show(&p.out(), &id);
    assert_eq!(s["status"], "failed", "{s}");
    assert!(s["error"].as_str().unwrap().contains("users.avro.gz is missing"), "{s}");
}

#[test]
fn two_concurrent_runs_on_one_output_root_both_publish_and_are_both_recorded() {
    let p = Platform::new(0.2, 13);
    let a = p.job("first", "", "[[resource]]\nname = \"transactions\"\n\n[[resource]]\nname = \"users\"\n");
    let b = p.job("second", "", "[[resource]]\nname = \"accounts\"\n\n[[resource]]\nname = \"transactions\"\nmonths = 6\n");
    let spawn = |job: &Path| ferry().arg("run").arg(job).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let (ca, cb) = (spawn(&a), spawn(&b));
    let (oa, ob) = (ca.wait_with_output().unwrap(), cb.wait_with_output().unwrap());
    assert!(oa.status.success(), "{}", stderr(&oa));
    assert!(ob.status.success(), "{}", stderr(&ob));
    let rows = list(&p.out(), false);
    assert_eq!(rows.len(), 2, "{rows:#?}");
    let dirs = snapshots(&p.out());
    assert_eq!(dirs.len(), 2);
    for r in &rows {
        assert_eq!(r["status"], "completed", "{r}");
        assert_eq!(r["on_disk"], true);
        let m = manifest(&p.out().join(r["id"].as_str().unwrap()));
        assert_eq!(m["name"], r["name"]);
        let records: u64 = m["resources"].as_array().unwrap().iter().map(|x| x["records"].as_u64().unwrap()).sum();
        assert_eq!(r["records"].as_u64().unwrap(), records);
        assert_eq!(events(&show(&p.out(), r["id"].as_str().unwrap())), ["pending", "in_progress", "completed"]);
    }
    let conn = rusqlite::Connection::open(p.out().join("catalog.db")).unwrap();
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn delete_removes_the_files_and_keeps_the_record_as_deleted() {
    let p = Platform::new(0.02, 14);
    for name in ["keep", "drop"] {
        assert!(run(&p.job(name, "", USERS_ACCOUNTS)).status.success());
    }
    let rows = list(&p.out(), false);
    let doomed = rows.iter().find(|r| r["name"] == "drop").unwrap()["id"].as_str().unwrap().to_string();
    let kept = rows.iter().find(|r| r["name"] == "keep").unwrap()["id"].as_str().unwrap().to_string();
    let out = ok(snapshots_cmd(&p.out(), &["delete", &doomed]));
    assert!(out.contains(&doomed), "{out}");
    assert!(!p.out().join(&doomed).exists());
    assert!(p.out().join(&kept).join("manifest.json").is_file(), "the other snapshot is untouched");
    let rows = list(&p.out(), false);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["id"], kept.as_str());
    let s = show(&p.out(), &doomed);
    assert!(s["deleted_at"].is_string());
    assert_eq!(events(&s), ["pending", "in_progress", "completed", "deleted"]);
    assert_eq!(list(&p.out(), true).len(), 2);

    let again = snapshots_cmd(&p.out(), &["delete", &doomed]);
    assert!(!again.status.success() && stderr(&again).contains("already deleted"), "{}", stderr(&again));
    let unknown = snapshots_cmd(&p.out(), &["delete", "no-such-snapshot"]);
    assert!(!unknown.status.success() && stderr(&unknown).contains("no snapshot \"no-such-snapshot\""), "{}", stderr(&unknown));
    let files = snapshots_cmd(&p.out(), &["files", &doomed]);
    assert!(!files.status.success() && stderr(&files).contains("deleted"), "{}", stderr(&files));
}

#[test]
fn purge_deletes_exactly_at_the_retention_edge() {
    let p = Platform::new(0.02, 15);
    assert!(run(&p.job("short", "", USERS_ACCOUNTS)).status.success());
    // The job file's retention: rewrite `short` with a 2-day retention for the next run.
    let job = p.job("two-days", "", USERS_ACCOUNTS);
    let text = std::fs::read_to_string(&job).unwrap().replace("[source]", "retention = \"2d\"\n\n[source]");
    std::fs::write(&job, text).unwrap();
    assert!(run(&job).status.success());

    let rows = list(&p.out(), false);
    let by = |name: &str| rows.iter().find(|r| r["name"] == name).unwrap().clone();
    let (default, two) = (by("short"), by("two-days"));
    assert_eq!(time(&default["expires_at"]) - time(&default["completed_at"]), chrono::Duration::days(30), "the default is 30 days");
    assert_eq!(time(&two["expires_at"]) - time(&two["completed_at"]), chrono::Duration::days(2));

    let edge = time(&two["expires_at"]);
    let purge = |now: DateTime<Utc>, dry: bool| -> Value {
        let at = now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let mut args = vec!["purge", "--json", "--now", &at];
        if dry {
            args.push("--dry-run");
        }
        serde_json::from_str(&ok(snapshots_cmd(&p.out(), &args))).unwrap()
    };
    let names = |v: &Value| v["snapshots"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap().to_string()).collect::<Vec<_>>();

    // One microsecond before expiry it stays, even for a real purge.
    assert!(names(&purge(edge - chrono::Duration::microseconds(1), false)).is_empty());
    assert!(p.out().join(two["id"].as_str().unwrap()).is_dir());
    // At the edge, a dry run names it and deletes nothing.
    assert_eq!(names(&purge(edge, true)), ["two-days"]);
    assert!(p.out().join(two["id"].as_str().unwrap()).is_dir());
    // The real purge deletes it, and only it.
    assert_eq!(names(&purge(edge, false)), ["two-days"]);
    assert!(!p.out().join(two["id"].as_str().unwrap()).exists());
    assert!(p.out().join(default["id"].as_str().unwrap()).is_dir());
    assert_eq!(events(&show(&p.out(), two["id"].as_str().unwrap())).last().unwrap(), "purged");
    assert_eq!(list(&p.out(), false).len(), 1);

    // `--job` applies that job's retention to every snapshot: two days after `short`
    // completed, it goes too.
    let short_edge = time(&default["completed_at"]) + chrono::Duration::days(2);
    let at = short_edge.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let out = ferry().args(["snapshots", "--job"]).arg(&job).args(["purge", "--json", "--now", &at]).output().unwrap();
    let v: Value = serde_json::from_str(&ok(out)).unwrap();
    assert_eq!(names(&v), ["short"]);
    assert!(list(&p.out(), false).is_empty());
}

#[test]
fn plan_counts_exactly_what_the_run_exports_windows_included() {
    let p = Platform::new(0.2, 16);
    let resources = "[[resource]]\nname = \"users\"\n\n[[resource]]\nname = \"accounts\"\n\n[[resource]]\nname = \"members\"\n\n\
                     [[resource]]\nname = \"transactions\"\nmonths = 3\nmax_records_per_file = 2000\n";
    let job = p.job("planned", "price_per_gib = 0.023", resources);
    let plan: Value = serde_json::from_str(&ok(ferry().arg("plan").arg(&job).arg("--json").output().unwrap())).unwrap();
    let out = run(&job);
    assert!(out.status.success(), "{}", stderr(&out));
    let m = manifest(&snapshots(&p.out())[0]);
    let planned = plan["resources"].as_array().unwrap();
    assert_eq!(planned.len(), 4);
    for (r, e) in planned.iter().zip(m["resources"].as_array().unwrap()) {
        assert_eq!(r["name"], e["name"]);
        assert_eq!(r["rows"], e["records"], "{}: plan and run disagree", r["name"]);
        assert_eq!(r["files"].as_u64().unwrap(), e["files"].as_array().unwrap().len() as u64, "{}", r["name"]);
        assert_eq!(r["basis"]["kind"], "default");
    }
    // The window cuts transactions: fewer than the table holds, and more than none.
    let tx = &planned[3];
    let all: u64 = rusqlite::Connection::open(p.db()).unwrap().query_row("SELECT count(*) FROM transactions", [], |r| r.get::<_, i64>(0)).unwrap() as u64;
    assert!(tx["rows"].as_u64().unwrap() > 0 && tx["rows"].as_u64().unwrap() < all, "{tx}");
    assert!(tx["window"].as_str().unwrap().starts_with("transacted_at [2025-12-31T14:30:22"), "{tx}");
    let cost = plan["cost"]["per_month"].as_f64().unwrap();
    let expected = plan["estimated_bytes"].as_f64().unwrap() / (1u64 << 30) as f64 * 0.023;
    assert!((cost - expected).abs() < 1e-12 && cost > 0.0, "{cost} vs {expected}");

    // After the run, the estimates come from it: the sizes it measured, exactly.
    let again: Value = serde_json::from_str(&ok(ferry().arg("plan").arg(&job).arg("--json").output().unwrap())).unwrap();
    for (r, e) in again["resources"].as_array().unwrap().iter().zip(m["resources"].as_array().unwrap()) {
        assert_eq!(r["basis"]["kind"], "history");
        let bytes: u64 = e["files"].as_array().unwrap().iter().map(|f| f["bytes"].as_u64().unwrap()).sum();
        assert_eq!(r["estimated_bytes"].as_u64().unwrap(), bytes, "{}", r["name"]);
    }
    let human = ok(ferry().arg("plan").arg(&job).output().unwrap());
    assert!(human.contains("storage cost") && human.contains("transactions"), "{human}");
}

#[test]
fn progress_json_reports_every_resource_to_its_record_count() {
    let p = Platform::new(0.05, 17);
    let job = p.job("progress", "", USERS_ACCOUNTS);
    let out = ferry().arg("run").arg(&job).args(["--progress", "json"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<Value> = stderr(&out).lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}"))).collect();
    let m = manifest(&snapshots(&p.out())[0]);
    for r in m["resources"].as_array().unwrap() {
        let name = r["name"].as_str().unwrap();
        let start = lines.iter().find(|l| l["event"] == "start" && l["resource"] == name).unwrap();
        assert_eq!(start["expected"], r["records"], "the expected count is the exported one");
        let done = lines.iter().find(|l| l["event"] == "done" && l["resource"] == name).unwrap();
        assert_eq!(done["records"], r["records"]);
        let bytes: u64 = r["files"].as_array().unwrap().iter().map(|f| f["bytes"].as_u64().unwrap()).sum();
        assert_eq!(done["bytes"].as_u64().unwrap(), bytes);
    }
    // Without a terminal, the default is plain lines.
    let out = run(&job);
    let text = stderr(&out);
    assert!(text.contains("[users] started: ") && text.contains("[accounts] done: "), "{text}");
}
