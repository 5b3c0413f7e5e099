//! Trusting a snapshot (issues 19 and 22): one point in time across every resource while
//! the platform keeps writing, as_of applied to every resource through its declared
//! creation column, references and load order in the manifest, `verify --relations`,
//! and plugins built against the frozen `ferry:plugin@0.1.0` contract still loading.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde_json::Value;

use crate::common::{Platform, ferry, plugin, run, snapshots, stderr};
use crate::servers;

const RELATED: &str = "[[resource]]\nname = \"users\"\n[[resource]]\nname = \"members\"\n[[resource]]\nname = \"accounts\"\n\
[[resource]]\nname = \"transactions\"\nmonths = \"all\"\n[[resource]]\nname = \"goals\"\n[[resource]]\nname = \"devices\"\n";

fn manifest(snapshot: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(snapshot.join("manifest.json")).unwrap()).unwrap()
}

fn resource<'a>(m: &'a Value, name: &str) -> &'a Value {
    m["resources"].as_array().unwrap().iter().find(|r| r["name"] == name).unwrap()
}

fn micros(t: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(t).unwrap().timestamp_micros()
}

/// `ferry verify --relations`: (passed, its output).
fn verify_relations(snapshot: &Path) -> (bool, String) {
    let out = ferry().args(["verify", "--relations"]).arg(snapshot).output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out)))
}

/// The last snapshot published under `out`.
fn last_snapshot(out: &Path) -> PathBuf {
    snapshots(out).into_iter().max_by_key(|s| std::fs::metadata(s.join("manifest.json")).unwrap().modified().unwrap()).unwrap()
}

#[test]
fn as_of_leaves_out_every_record_created_at_or_after_it() {
    let platform = Platform::new(0.2, 11);
    let as_of = "2025-01-01T00:00:00Z";
    let job = platform.job("as_of", "", RELATED);
    let text = std::fs::read_to_string(&job).unwrap().replace("2026-03-31T14:30:22Z", as_of);
    std::fs::write(&job, text).unwrap();
    let out = run(&job);
    assert!(out.status.success(), "{}", stderr(&out));
    let snap = last_snapshot(&platform.out());
    let m = manifest(&snap);
    let conn = rusqlite::Connection::open(platform.db()).unwrap();
    let cut = micros(as_of);
    for name in ["users", "members", "accounts", "transactions", "goals", "devices"] {
        let r = resource(&m, name);
        assert_eq!(r["as_of"]["created_column"], "created_at", "{name}");
        assert_eq!(r["as_of"]["whole"], false, "{name}");
        assert_eq!(r["key"], "guid", "{name}");
        let extra = if name == "transactions" { " AND transacted_at < ?1" } else { "" };
        let (kept, later): (i64, i64) = conn
            .query_row(&format!("SELECT sum(created_at < ?1{extra}), sum(created_at >= ?1) FROM {name}"), [cut], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap();
        assert!(later > 0, "{name}: the demo has no rows created after as_of, so the test proves nothing");
        assert_eq!(r["records"].as_i64().unwrap(), kept, "{name}: records created at or after as_of were exported");
    }
    let accounts = resource(&m, "accounts")["references"].as_array().unwrap().clone();
    assert!(accounts.contains(&serde_json::json!({"field": "user_guid", "resource": "users", "key": "guid"})), "{accounts:?}");
    let order: Vec<&str> = m["load_order"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    let at = |n: &str| order.iter().position(|o| *o == n).unwrap();
    assert!(at("users") < at("members") && at("members") < at("accounts") && at("accounts") < at("transactions") && at("accounts") < at("goals"), "{order:?}");
    assert_eq!(m["consistency"]["method"], "sqlite-wal-snapshot");
    let (ok, text) = verify_relations(&snap);
    assert!(ok, "{text}");
    assert!(text.contains("transactions.account_guid -> accounts.guid") && text.contains("all resolve"), "{text}");
}

/// A 0.1.0 component (no kit, `records.copy` by position) loads, exports, and is marked
/// as exported whole: it declares no creation column.
#[test]
fn a_plugin_built_against_contract_0_1_still_loads_and_exports() {
    let platform = Platform::new(0.05, 3);
    let job = platform.job("legacy", "", &format!("[[resource]]\nname = \"legacy\"\nplugin = {:?}\n", plugin("ferry-test-legacy-v0-1").display().to_string()));
    let out = run(&job);
    assert!(out.status.success(), "{}", stderr(&out));
    let m = manifest(&last_snapshot(&platform.out()));
    let r = resource(&m, "legacy");
    let users: i64 = rusqlite::Connection::open(platform.db()).unwrap().query_row("SELECT count(*) FROM users", [], |r| r.get(0)).unwrap();
    assert_eq!(r["records"].as_i64().unwrap(), users);
    assert_eq!(r["as_of"]["whole"], true);
    assert!(r["as_of"].get("created_column").is_none());
    assert_eq!(r["schema"]["fields"][1]["name"], "email");
}

/// A reference with no record behind it is caught, named, and fails the command, in a
/// packed snapshot whose files are otherwise intact.
#[test]
fn verify_relations_catches_a_dangling_reference() {
    let platform = Platform::new(0.05, 5);
    let conn = rusqlite::Connection::open(platform.db()).unwrap();
    conn.execute(
        "INSERT INTO accounts SELECT 'ACT-planted', id, 'USR-nobody', member_guid, account_number, type, subtype, name, nickname, balance, \
         available_balance, credit_limit, apr, apy, currency_code, institution_code, is_closed, is_hidden, is_manual, created_at, updated_at \
         FROM accounts LIMIT 1",
        [],
    )
    .unwrap();
    drop(conn);
    let resources = "[[resource]]\nname = \"users\"\nformat = \"csv\"\n[[resource]]\nname = \"members\"\n[[resource]]\nname = \"accounts\"\nformat = \"jsonl\"\n";
    let job = platform.job("dangling", "archive = \"tar\"", resources);
    let out = run(&job);
    assert!(out.status.success(), "{}", stderr(&out));
    let snap = last_snapshot(&platform.out());
    let plain = ferry().arg("verify").arg(&snap).output().unwrap();
    assert!(plain.status.success(), "the files themselves are intact: {}", String::from_utf8_lossy(&plain.stdout));
    let (ok, text) = verify_relations(&snap);
    assert!(!ok, "a dangling reference passed: {text}");
    let line = text.lines().find(|l| l.contains("accounts.user_guid -> users.guid")).unwrap_or_else(|| panic!("{text}"));
    assert!(line.starts_with("FAIL") && line.contains("1 of ") && line.contains("USR-nobody"), "{line}");
    assert!(text.lines().any(|l| l.starts_with("ok") && l.contains("accounts.member_guid -> members.guid")), "{text}");
}

/// SQL for the writer, in the dialect of its database.
struct Dialect {
    no: &'static str,
    time: fn(i64) -> String,
}

const SQLITE: Dialect = Dialect { no: "0", time: |t| t.to_string() };
const POSTGRES: Dialect = Dialect { no: "false", time: |t| format!("to_timestamp({t} / 1000000.0)") };

/// Step `n` of the writer: a user, then a member, an account and transactions for it,
/// each committed on its own (parents first, as a platform writes); every third step
/// also deletes an older user with everything of theirs in one transaction.
fn writer_step(d: &Dialect, n: u64) -> Vec<String> {
    // Created before the jobs' as_of, so only the pinned snapshot keeps them out.
    let t = (d.time)(micros("2026-03-01T00:00:00Z") + n as i64);
    let no = d.no;
    let (user, member, account) = (format!("W-USR-{n}"), format!("W-MBR-{n}"), format!("W-ACT-{n}"));
    let mut sql = vec![
        format!("INSERT INTO users (guid, email_is_verified, is_disabled, phone_is_verified, revision, created_at, updated_at) VALUES ('{user}', {no}, {no}, {no}, 1, {t}, {t})"),
        format!("INSERT INTO members (guid, user_guid, institution_code, connection_status, name, is_being_aggregated, is_manual, is_oauth, created_at, updated_at) VALUES ('{member}', '{user}', 'mxbank', 'CONNECTED', 'w', {no}, {no}, {no}, {t}, {t})"),
        format!("INSERT INTO accounts (guid, user_guid, member_guid, type, name, balance, currency_code, is_closed, is_hidden, is_manual, created_at, updated_at) VALUES ('{account}', '{user}', '{member}', 'CHECKING', 'w', '1.00', 'USD', {no}, {no}, {no}, {t}, {t})"),
    ];
    for k in 0..3 {
        sql.push(format!(
            "INSERT INTO transactions (guid, account_guid, member_guid, user_guid, amount, type, status, currency_code, is_bill_pay, is_direct_deposit, is_expense, is_fee, is_income, is_international, is_overdraft_fee, is_recurring, is_subscription, transacted_at, created_at, updated_at) \
             VALUES ('W-TRN-{n}-{k}', '{account}', '{member}', '{user}', '2.50', 'DEBIT', 'POSTED', 'USD', {no}, {no}, {no}, {no}, {no}, {no}, {no}, {no}, {no}, {t}, {t}, {t})"
        ));
    }
    if n.is_multiple_of(3) {
        // Alternately one of the writer's users and one of the platform's own.
        let victim = if n.is_multiple_of(2) { format!("'W-USR-{}'", n / 2) } else { "(SELECT min(guid) FROM users WHERE guid LIKE 'USR-%')".to_string() };
        sql.push(format!(
            "BEGIN; CREATE TEMP TABLE IF NOT EXISTS victim (guid TEXT); DELETE FROM victim; INSERT INTO victim SELECT {victim}; \
             DELETE FROM transactions WHERE user_guid IN (SELECT guid FROM victim); DELETE FROM goals WHERE user_guid IN (SELECT guid FROM victim); \
             DELETE FROM accounts WHERE user_guid IN (SELECT guid FROM victim); DELETE FROM members WHERE user_guid IN (SELECT guid FROM victim); \
             DELETE FROM devices WHERE user_guid IN (SELECT guid FROM victim); DELETE FROM users WHERE guid IN (SELECT guid FROM victim); COMMIT;"
        ));
    }
    sql
}

/// Runs `exec` over the writer's steps until `stop`; counts committed statements.
fn spawn_writer(
    stop: Arc<AtomicBool>,
    written: Arc<AtomicU64>,
    dialect: &'static Dialect,
    mut exec: impl FnMut(&str) + Send + 'static,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut n = 0;
        while !stop.load(Ordering::Relaxed) {
            n += 1;
            for sql in writer_step(dialect, n) {
                exec(&sql);
                written.fetch_add(1, Ordering::Relaxed);
            }
        }
    })
}

/// Exports `runs` times while the writer writes; every snapshot's references resolve.
fn export_while_writing(job: &Path, out: &Path, runs: usize, written: &AtomicU64) {
    for i in 0..runs {
        let before = written.load(Ordering::Relaxed);
        let result = run(job);
        assert!(result.status.success(), "run {i}: {}", stderr(&result));
        let during = written.load(Ordering::Relaxed) - before;
        assert!(during > 0, "run {i}: the writer wrote nothing during the export, so the test proves nothing");
        let snap = last_snapshot(out);
        let (ok, text) = verify_relations(&snap);
        assert!(ok, "run {i} ({during} statements written meanwhile): a reference does not resolve:\n{text}");
        eprintln!("run {i}: {during} statements committed during the export; every reference resolves");
    }
}

#[test]
fn a_platform_writing_during_the_export_never_leaves_a_dangling_reference_sqlite() {
    let platform = Platform::new(0.3, 21);
    let job = platform.job("writer", "", RELATED);
    let (stop, written) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let conn = rusqlite::Connection::open(platform.db()).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(30)).unwrap();
    let writer = spawn_writer(stop.clone(), written.clone(), &SQLITE, move |sql| conn.execute_batch(sql).unwrap());
    export_while_writing(&job, &platform.out(), 8, &written);
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
}

#[test]
fn a_platform_writing_during_the_export_never_leaves_a_dangling_reference_postgres() {
    let Some(url) = servers::postgres("writer") else { return };
    let platform = Platform::new(0.3, 21);
    ferry::source::load_demo_postgres(&platform.db(), &ferry::source::PostgresUrl::parse(&url).unwrap()).unwrap();
    let job = platform.job("writer-pg", "", RELATED);
    let text = std::fs::read_to_string(&job).unwrap().replace("sqlite = \"platform/platform.db\"", &format!("postgres = {url:?}"));
    std::fs::write(&job, text.replace("blobs = \"platform/blobs\"\n", "")).unwrap();
    let (stop, written) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let mut client = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
    let writer = spawn_writer(stop.clone(), written.clone(), &POSTGRES, move |sql| client.batch_execute(sql).unwrap());
    export_while_writing(&job, &platform.out(), 5, &written);
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let m = manifest(&last_snapshot(&platform.out()));
    assert_eq!(m["consistency"]["method"], "postgres-exported-snapshot");
}
