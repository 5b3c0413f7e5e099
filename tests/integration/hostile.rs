//! Hostile plugins (`plugins/testing/hostile`, one misbehaviour per `mode` option): each is
//! stopped or refused, reported with the resource's name and the reason, and harms
//! nothing else. Every failing case runs twice beside the built-in `users` plugin: with
//! `on_error = "fail"` nothing is published; with `"continue"` the snapshot is published
//! incomplete, the failure is in the manifest, and the users file is whole.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::common::{Platform, assert_nothing_published, ferry, plugin, run, snapshots, stderr};

const SCALE: f64 = 0.02;

/// A job exporting the built-in `users` and the hostile plugin in `mode`.
fn job(p: &Platform, mode: &str, on_error: &str, memory: &str) -> PathBuf {
    let hostile = plugin("ferry-test-hostile");
    p.job(
        &format!("hostile-{mode}-{on_error}"),
        &format!("on_error = \"{on_error}\""),
        &format!(
            "[[resource]]\nname = \"users\"\n\n[[resource]]\nname = \"hostile\"\nplugin = \"{}\"\ntime_limit = \"2s\"\nmemory_limit = \"{memory}\"\noptions = {{ mode = \"{mode}\" }}\n",
            hostile.display()
        ),
    )
}

fn users_in(p: &Platform) -> u64 {
    let conn = rusqlite::Connection::open(p.db()).unwrap();
    conn.query_row("SELECT count(*) FROM users", [], |r| r.get::<_, i64>(0)).unwrap() as u64
}

fn manifest(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}

fn resource<'a>(m: &'a Value, name: &str) -> &'a Value {
    m["resources"].as_array().unwrap().iter().find(|r| r["name"] == name).unwrap_or_else(|| panic!("no {name} in {m}"))
}

/// Records in a published (gzip-compressed) Avro file, read with apache-avro.
fn avro_records(path: &Path) -> usize {
    let mut bytes = Vec::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(path).unwrap()).read_to_end(&mut bytes).unwrap();
    let mut records = 0;
    for r in apache_avro::Reader::new(&bytes[..]).unwrap() {
        r.unwrap();
        records += 1;
    }
    records
}

/// Asserts a published snapshot's `users` resource is whole: its file is there, its
/// sha256 and size are the manifest's, and it decodes to every user of the source.
fn assert_users_intact(p: &Platform, dir: &Path, m: &Value) {
    let users = resource(m, "users");
    assert!(users["error"].is_null(), "users failed: {users}");
    let file = &users["files"][0];
    let path = dir.join(file["path"].as_str().unwrap());
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(hex::encode(Sha256::digest(&bytes)), file["sha256"].as_str().unwrap(), "users file does not match the manifest");
    assert_eq!(bytes.len() as u64, file["bytes"].as_u64().unwrap());
    assert_eq!(users["records"].as_u64().unwrap(), users_in(p));
    assert_eq!(avro_records(&path) as u64, users_in(p));
}

/// Runs `mode` with `on_error = "fail"` and `"continue"`; checks the containment both
/// ways and that the message has every `expect`ed part. Returns the `fail` run's stderr.
fn contained(mode: &str, kind: &str, expect: &[&str], memory: &str) -> String {
    let p = Platform::new(SCALE, 11);
    let out = run(&job(&p, mode, "fail", memory));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{mode}: exit status; stderr:\n{err}");
    assert!(err.contains("resource `hostile` failed: plugin `hostile`"), "{mode}: the message must name the resource:\n{err}");
    for part in expect {
        assert!(err.contains(part), "{mode}: expected {part:?} in:\n{err}");
    }
    assert_nothing_published(&p.out());

    let out = run(&job(&p, mode, "continue", memory));
    let cont = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{mode}: an incomplete snapshot exits 2; stderr:\n{cont}");
    assert!(cont.contains("warning: resource `hostile` failed"), "{cont}");
    let published = snapshots(&p.out());
    assert_eq!(published.len(), 1, "{mode}: {published:?}");
    let dir = &published[0];
    let m = manifest(dir);
    assert_eq!(m["status"], "incomplete");
    let failed = resource(&m, "hostile");
    assert_eq!(failed["error"]["kind"], kind, "{mode}: {failed}");
    let message = failed["error"]["message"].as_str().unwrap();
    assert!(message.contains(expect[0]), "{mode}: manifest message {message:?} lacks {:?}", expect[0]);
    assert_eq!(failed["files"].as_array().unwrap().len(), 0);
    assert_eq!(failed["records"], 0);
    assert_users_intact(&p, dir, &m);
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names, ["manifest.json", "users.avro.gz"], "{mode}: the failed plugin left a file");
    err
}

#[test]
fn an_infinite_loop_is_stopped_at_its_time_limit() {
    let p = Platform::new(SCALE, 11);
    let started = Instant::now();
    let out = run(&job(&p, "loop", "fail", "32MiB"));
    let took = started.elapsed();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("plugin `hostile` ran past its time limit of 2s and was stopped"), "{err}");
    assert!(err.contains("raise `time_limit`"), "{err}");
    assert!(took >= Duration::from_secs(2), "stopped after {took:?}, before its limit");
    assert!(took < Duration::from_secs(20), "stopped only after {took:?}");
    assert_nothing_published(&p.out());
    contained("loop", "time-limit", &["ran past its time limit of 2s"], "32MiB");
}

#[test]
fn a_memory_bomb_is_stopped_at_its_memory_cap() {
    contained("memory", "memory-limit", &["hit its memory cap of 32 MiB", "raise `memory_limit`"], "32MiB");
}

#[test]
fn a_panic_is_reported_with_its_message_and_a_backtrace() {
    let err = contained("panic", "trap", &["panicked at", "hostile plugin panics on purpose (mode = panic)"], "32MiB");
    assert!(err.contains("backtrace: "), "{err}");
    assert!(!err.contains("std::panicking"), "the backtrace should skip the panic machinery:\n{err}");
}

#[test]
fn a_trap_is_reported_with_the_trap_and_a_backtrace() {
    let err = contained("trap", "trap", &["crashed: wasm trap: wasm `unreachable` instruction executed", "backtrace: export"], "32MiB");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_runaway_recursion_is_reported_as_a_stack_overflow() {
    contained("stack", "trap", &["call stack exhausted", "ferry_test_hostile::recurse (x"], "32MiB");
}

#[test]
fn records_that_do_not_match_the_schema_are_refused_even_when_the_plugin_ignores_it() {
    contained(
        "bad-record",
        "bad-batch",
        &["sent records that do not match its declared schema", "record 0 of the batch, field `guid`: negative length -1"],
        "32MiB",
    );
}

#[test]
fn a_batch_that_lies_about_its_length_is_refused() {
    contained("short-batch", "bad-batch", &["do not match its declared schema", "record 1 of the batch", "is the record count right?"], "32MiB");
}

#[test]
fn a_summary_that_lies_about_the_record_count_is_refused() {
    contained("count-lie", "count-mismatch", &["says it exported 1000 records but sent 1; nothing it sent is trusted"], "32MiB");
}

#[test]
fn success_after_emitting_nothing_publishes_an_empty_but_valid_file() {
    let p = Platform::new(SCALE, 11);
    let out = run(&job(&p, "empty", "fail", "32MiB"));
    assert!(out.status.success(), "{}", stderr(&out));
    let published = snapshots(&p.out());
    assert_eq!(published.len(), 1);
    let m = manifest(&published[0]);
    assert_eq!(m["status"], "completed");
    let hostile = resource(&m, "hostile");
    assert_eq!(hostile["records"], 0);
    assert_eq!(avro_records(&published[0].join("hostile.avro.gz")), 0);
    assert_users_intact(&p, &published[0], &m);
}

#[test]
fn a_plugin_cannot_open_a_file() {
    // A file the ferry process itself can read: the platform's database.
    let p = Platform::new(SCALE, 11);
    let db = p.db();
    let path = job(&p, "file", "fail", "32MiB");
    let text = std::fs::read_to_string(&path).unwrap().replace("mode = \"file\"", &format!("mode = \"file\", path = \"{}\"", db.display()));
    std::fs::write(&path, text).unwrap();
    let out = run(&path);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("cannot open {}: No such file or directory", db.display())), "{err}");
    assert!(!err.contains("bytes of"), "{err}");
    assert_nothing_published(&p.out());
    contained("file", "reported", &["cannot open /etc/passwd: No such file or directory"], "32MiB");
}

#[test]
fn a_plugin_cannot_reach_the_network() {
    contained("network", "reported", &["cannot connect to 127.0.0.1:9: Permission denied", "name lookup: Err"], "32MiB");
    // Once more at a listening address: nothing may connect.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let p = Platform::new(SCALE, 11);
    let path = job(&p, "network", "fail", "32MiB");
    let text = std::fs::read_to_string(&path).unwrap().replace("mode = \"network\"", &format!("mode = \"network\", addr = \"{addr}\""));
    std::fs::write(&path, text).unwrap();
    let out = run(&path);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("cannot connect to {addr}: Permission denied")), "{err}");
    assert!(matches!(listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock), "the plugin connected");
    assert_nothing_published(&p.out());
}

#[test]
fn a_plugin_sees_no_environment_arguments_or_filesystem() {
    let p = Platform::new(SCALE, 11);
    let path = job(&p, "env", "fail", "32MiB");
    let out = ferry().arg("run").arg(&path).env("FERRY_TEST_SECRET", "hunter2").output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("saw 0 environment variables [], 0 arguments []"), "{err}");
    assert!(err.contains("root directory unreadable"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    assert_nothing_published(&p.out());
    contained("env", "reported", &["saw 0 environment variables"], "32MiB");
}

#[test]
fn a_log_flood_is_bounded_and_the_export_goes_on() {
    let p = Platform::new(SCALE, 11);
    let out = run(&job(&p, "log-flood", "fail", "32MiB"));
    let err = stderr(&out);
    assert!(out.status.success(), "{}", &err[err.len().saturating_sub(2000)..]);
    // 100,000 lines of 1 KiB and one of 8 MiB were offered; 1 MiB is kept.
    assert!(err.len() < (1 << 20) + 64 * 1024, "{} bytes of log reached the terminal", err.len());
    assert!(err.len() > 1 << 20, "the first MiB of log should be printed ({} bytes)", err.len());
    assert!(err.contains("log messages over the limit were dropped"), "{}", &err[err.len() - 500..]);
    assert!(!err.contains("yyyy"), "the 8 MiB message was past the budget and must be dropped");
    let published = snapshots(&p.out());
    let m = manifest(&published[0]);
    assert_eq!(resource(&m, "hostile")["records"], 1);
    assert_users_intact(&p, &published[0], &m);
}

#[test]
fn a_stderr_flood_is_stopped_with_a_clear_reason() {
    let err = contained("stderr-flood", "trap", &["more than the 64 KiB of stderr the host keeps", "`log` interface"], "32MiB");
    assert!(err.len() < 8 * 1024, "the report quotes too much stderr: {} bytes", err.len());
}

#[test]
fn a_giant_batch_is_refused() {
    // Room for the 17 MiB batch in the plugin's own memory: the batch limit, not the
    // memory cap, must stop it.
    let err = contained("giant-batch", "bad-batch", &["sent a batch of 17825792 bytes, over the limit of 16777216 bytes"], "64MiB");
    assert!(!err.contains("memory cap"), "{err}");
}

#[test]
fn too_many_open_reads_are_refused() {
    contained("cursors", "reported", &["limit exceeded: 8 reads are already open"], "32MiB");
}

#[test]
fn a_plugin_that_reads_or_emits_from_describe_is_refused_before_anything_runs() {
    let p = Platform::new(SCALE, 11);
    let rude = plugin("ferry-test-rude-describe");
    let resources = format!("[[resource]]\nname = \"users\"\n\n[[resource]]\nname = \"rude\"\nplugin = \"{}\"", rude.display());
    let path = p.job("rude", "on_error = \"fail\"", &resources);
    let out = run(&path);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("resource `rude`"), "{err}");
    assert!(err.contains("broke the plugin contract and was stopped: it opened a read of `users` from describe()"), "{err}");
    assert_nothing_published(&p.out());
}

/// Under `on_error = "continue"`, a plugin that fails at load (a contract break in
/// `describe`, a file that is not a component) fails its resource alone, like any other.
#[test]
fn under_continue_a_plugin_that_fails_to_load_fails_alone() {
    let p = Platform::new(SCALE, 12);
    let rude = plugin("ferry-test-rude-describe");
    let junk = p.out().with_file_name("junk.wasm");
    std::fs::write(&junk, b"not a component").unwrap();
    let resources = format!(
        "[[resource]]\nname = \"users\"\n\n[[resource]]\nname = \"rude\"\nplugin = \"{}\"\n\n[[resource]]\nname = \"junk\"\nplugin = \"{}\"",
        rude.display(),
        junk.display()
    );
    let path = p.job("rude-continue", "on_error = \"continue\"", &resources);
    let out = run(&path);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "published incomplete: {err}");
    let snaps = snapshots(&p.out());
    assert_eq!(snaps.len(), 1, "{err}");
    let manifest: Value = serde_json::from_slice(&std::fs::read(snaps[0].join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["status"], "incomplete");
    let by_name = |n: &str| manifest["resources"].as_array().unwrap().iter().find(|r| r["name"] == n).unwrap().clone();
    assert!(by_name("users")["error"].is_null() && by_name("users")["records"].as_u64().unwrap() > 0);
    let rude = by_name("rude");
    assert_eq!(rude["error"]["kind"], "contract", "{rude}");
    assert!(rude["error"]["message"].as_str().unwrap().contains("opened a read of `users` from describe()"), "{rude}");
    assert_eq!(by_name("junk")["error"]["kind"], "not-a-component");
    assert!(rude["files"].as_array().unwrap().is_empty());
    let verify = ferry().arg("verify").arg(&snaps[0]).output().unwrap();
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
}
