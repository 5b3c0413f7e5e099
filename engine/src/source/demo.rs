//! The deterministic demo platform: same seed and scale, same rows, same blobs.
//!
//! Tables are named after the resources and shaped like MX's (guids with MX prefixes,
//! `_at` columns as integer microseconds since the epoch, UTC; money as exact decimal
//! text). Transactions span the 36 months before 2026-04-01, plus a few days after it,
//! so month windows and "records in the future of as_of" both have something to cut.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rusqlite::{Connection, params};
use sha2::{Digest, Sha256};

use super::SourceError;

/// The platform's "now": every generated time is relative to it, never to the clock.
pub const DEMO_NOW_MICROS: i64 = 1_775_001_600_000_000; // 2026-04-01T00:00:00Z
const DAY: i64 = 86_400_000_000;

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DemoSpec {
    pub seed: u64,
    /// 1.0 = 1,000 users and about 100,000 transactions; 10 gives about 1M transactions.
    pub scale: f64,
}

impl Default for DemoSpec {
    fn default() -> Self {
        DemoSpec { seed: 42, scale: 1.0 }
    }
}

/// Row counts of a generated platform.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DemoCounts {
    pub users: u64,
    pub members: u64,
    pub accounts: u64,
    pub transactions: u64,
    pub devices: u64,
    pub goals: u64,
    pub notification_profiles: u64,
    pub attachments: u64,
    pub attachment_versions: u64,
}

impl std::fmt::Display for DemoCounts {
    /// For people: `1,000 users, 1,512 members, ...`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rows = [
            (self.users, "users"),
            (self.members, "members"),
            (self.accounts, "accounts"),
            (self.transactions, "transactions"),
            (self.devices, "devices"),
            (self.goals, "goals"),
            (self.notification_profiles, "notification profiles"),
            (self.attachments, "attachments"),
            (self.attachment_versions, "attachment versions"),
        ];
        let text: Vec<String> = rows.iter().map(|(n, what)| format!("{n} {what}")).collect();
        f.write_str(&text.join(", "))
    }
}

const SCHEMA: &str = r#"
CREATE TABLE users (guid TEXT NOT NULL UNIQUE, id TEXT, email TEXT, email_is_verified INTEGER NOT NULL,
  first_name TEXT, last_name TEXT, birthday TEXT, credit_score INTEGER, gender INTEGER,
  is_disabled INTEGER NOT NULL, logged_in_at INTEGER, metadata TEXT, phone TEXT,
  phone_is_verified INTEGER NOT NULL, postal_code TEXT, revision INTEGER NOT NULL,
  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE members (guid TEXT NOT NULL UNIQUE, id TEXT, user_guid TEXT NOT NULL, institution_code TEXT NOT NULL,
  connection_status TEXT NOT NULL, name TEXT NOT NULL, is_being_aggregated INTEGER NOT NULL,
  is_manual INTEGER NOT NULL, is_oauth INTEGER NOT NULL, aggregated_at INTEGER,
  successfully_aggregated_at INTEGER, metadata TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE accounts (guid TEXT NOT NULL UNIQUE, id TEXT, user_guid TEXT NOT NULL, member_guid TEXT NOT NULL,
  account_number TEXT, type TEXT NOT NULL, subtype TEXT, name TEXT NOT NULL, nickname TEXT,
  balance TEXT NOT NULL, available_balance TEXT, credit_limit TEXT, apr TEXT, apy TEXT,
  currency_code TEXT NOT NULL, institution_code TEXT, is_closed INTEGER NOT NULL, is_hidden INTEGER NOT NULL,
  is_manual INTEGER NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE transactions (guid TEXT NOT NULL UNIQUE, id TEXT, account_guid TEXT NOT NULL, member_guid TEXT NOT NULL,
  user_guid TEXT NOT NULL, amount TEXT NOT NULL, type TEXT NOT NULL, status TEXT NOT NULL, category TEXT,
  description TEXT, currency_code TEXT NOT NULL, merchant_category_code INTEGER, is_bill_pay INTEGER NOT NULL,
  is_direct_deposit INTEGER NOT NULL, is_expense INTEGER NOT NULL, is_fee INTEGER NOT NULL,
  is_income INTEGER NOT NULL, is_international INTEGER NOT NULL, is_overdraft_fee INTEGER NOT NULL,
  is_recurring INTEGER NOT NULL, is_subscription INTEGER NOT NULL, latitude TEXT, longitude TEXT,
  transacted_at INTEGER NOT NULL, posted_at INTEGER, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE INDEX transactions_transacted_at ON transactions (transacted_at);
CREATE TABLE devices (guid TEXT NOT NULL UNIQUE, user_guid TEXT NOT NULL, device_type TEXT NOT NULL, os TEXT NOT NULL,
  os_version TEXT, app_version TEXT, push_enabled INTEGER NOT NULL, last_seen_at INTEGER,
  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE goals (guid TEXT NOT NULL UNIQUE, user_guid TEXT NOT NULL, account_guid TEXT, name TEXT NOT NULL,
  goal_type_name TEXT NOT NULL, meta_type_name TEXT, amount TEXT NOT NULL, current_amount TEXT NOT NULL,
  position INTEGER NOT NULL, is_complete INTEGER NOT NULL, completed_at INTEGER,
  targeted_to_complete_at INTEGER, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE notification_profiles (guid TEXT NOT NULL UNIQUE, user_guid TEXT NOT NULL,
  opted_out_of_all_notifications INTEGER NOT NULL, opted_out_of_email_notifications INTEGER NOT NULL,
  opted_out_of_push_notifications INTEGER NOT NULL, opted_out_of_sms_notifications INTEGER NOT NULL,
  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE attachments (uid TEXT NOT NULL UNIQUE, file_name TEXT NOT NULL, content_type TEXT NOT NULL,
  owner_type TEXT NOT NULL, owner_id TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE attachment_versions (sid TEXT NOT NULL UNIQUE, attachment_uid TEXT NOT NULL, version INTEGER NOT NULL,
  size INTEGER NOT NULL, sha256 TEXT NOT NULL, created_at INTEGER NOT NULL, blob_key TEXT NOT NULL);
CREATE INDEX attachment_versions_attachment ON attachment_versions (attachment_uid, version);
"#;

const FIRST: &[&str] = &["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Linus", "Margaret", "Tim", "Zoë", "José", "Søren"];
const LAST: &[&str] = &["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Perlman", "Torvalds", "Hamilton", "Berners-Lee", "O'Brien", "Nguyễn"];
const INSTITUTIONS: &[&str] = &["mxbank", "chase", "wells_fargo", "citi", "ally", "capital_one"];
const CATEGORIES: &[(&str, u32)] = &[("Groceries", 5411), ("Restaurants", 5812), ("Gas", 5541), ("Utilities", 4900), ("Paycheck", 0), ("Rent", 6513), ("Shopping", 5311), ("Travel", 4511), ("Fees", 6012)];
const OWNER_TYPES: &[&str] = &["run", "issue", "procedure"];
/// The first attachments carry names an archive must survive (issue: attachments).
const ODD_NAMES: &[&str] = &["../../etc/passwd", "/etc/shadow", "con\\nul.txt", "", "Re\u{301}sume\u{301}.pdf", "Résumé.pdf", "REPORT.pdf", "report.pdf", "nul\0byte.txt"];

/// Writes the database at `db` and the blob files under `blobs`. The database appears
/// last (renamed into place), so a half-generated platform is never mistaken for a
/// whole one.
pub fn generate(db: &Path, blobs: &Path, spec: DemoSpec) -> Result<DemoCounts, SourceError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SourceError::DemoIo { path, source }
    };
    fs::create_dir_all(blobs).map_err(io(blobs))?;
    let tmp = db.with_extension("db.partial");
    let _ = fs::remove_file(&tmp);
    let db_err = |source| SourceError::Open { path: tmp.clone(), source };
    let mut conn = Connection::open(&tmp).map_err(db_err)?;
    conn.execute_batch("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;").map_err(db_err)?;
    conn.execute_batch(SCHEMA).map_err(db_err)?;
    let tx = conn.transaction().map_err(db_err)?;
    let counts = fill(&tx, blobs, spec).map_err(|e| match e {
        FillError::Db(e) => db_err(e),
        FillError::Io(path, e) => SourceError::DemoIo { path, source: e },
    })?;
    tx.commit().map_err(db_err)?;
    // WAL, as a live platform runs: readers then see one consistent state each while the
    // platform keeps writing, and ferry pins every read of a run to one such state.
    conn.execute_batch("PRAGMA journal_mode = WAL;").map_err(db_err)?;
    drop(conn);
    fs::rename(&tmp, db).map_err(io(db))?;
    Ok(counts)
}

enum FillError {
    Db(rusqlite::Error),
    Io(PathBuf, std::io::Error),
}

impl From<rusqlite::Error> for FillError {
    fn from(e: rusqlite::Error) -> Self {
        FillError::Db(e)
    }
}

fn guid(rng: &mut ChaCha8Rng, prefix: &str) -> String {
    let bytes: [u8; 16] = rng.random();
    format!("{prefix}-{}", uuid::Builder::from_random_bytes(bytes).into_uuid())
}

fn money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", cents.unsigned_abs() / 100, cents.unsigned_abs() % 100)
}

fn rate(micros: i64) -> String {
    format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
}

fn pick<'a>(rng: &mut ChaCha8Rng, xs: &[&'a str]) -> &'a str {
    xs[rng.random_range(0..xs.len())]
}

/// A time in the `days` days before the platform's now.
fn past(rng: &mut ChaCha8Rng, days: i64) -> i64 {
    DEMO_NOW_MICROS - rng.random_range(1..days * DAY)
}

fn fill(tx: &rusqlite::Transaction, blobs: &Path, spec: DemoSpec) -> Result<DemoCounts, FillError> {
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let mut n = DemoCounts::default();
    let users = ((1000.0 * spec.scale).round() as u64).max(1);
    let mut ins_user = tx.prepare("INSERT INTO users VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18)")?;
    let mut ins_member = tx.prepare("INSERT INTO members VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14)")?;
    let mut ins_account = tx.prepare("INSERT INTO accounts VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21)")?;
    let mut ins_txn = tx.prepare("INSERT INTO transactions VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21,?22,?23,?24,?25,?26,?27)")?;
    let mut ins_device = tx.prepare("INSERT INTO devices VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)")?;
    let mut ins_goal = tx.prepare("INSERT INTO goals VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14)")?;
    let mut ins_profile = tx.prepare("INSERT INTO notification_profiles VALUES (?1,?2,?3,?4,?5,?6,?7,?8)")?;
    for u in 0..users {
        let user = guid(&mut rng, "USR");
        let (first, last) = (pick(&mut rng, FIRST), pick(&mut rng, LAST));
        let created = past(&mut rng, 5 * 365);
        let has_email = rng.random_bool(0.95);
        ins_user.execute(params![
            user,
            rng.random_bool(0.8).then(|| format!("partner-user-{u}")),
            has_email.then(|| format!("{}.{}{u}@example.com", first.to_lowercase(), last.to_lowercase().replace(['\'', ' '], ""))),
            has_email && rng.random_bool(0.7),
            first,
            last,
            rng.random_bool(0.6).then(|| format!("{}-{:02}-{:02}", rng.random_range(1940..2006), rng.random_range(1..13), rng.random_range(1..29))),
            rng.random_bool(0.5).then(|| rng.random_range(300..851)),
            rng.random_bool(0.4).then(|| rng.random_range(0..2)),
            rng.random_bool(0.03),
            rng.random_bool(0.9).then(|| created + rng.random_range(0..(DEMO_NOW_MICROS - created))),
            rng.random_bool(0.1).then(|| format!("{{\"tier\":\"{}\"}}", pick(&mut rng, &["gold", "silver"]))),
            rng.random_bool(0.5).then(|| format!("+1555{:07}", rng.random_range(0..10_000_000))),
            rng.random_bool(0.3),
            rng.random_bool(0.7).then(|| format!("{:05}", rng.random_range(501..99951))),
            rng.random_range(1..20),
            created,
            created + rng.random_range(0..(DEMO_NOW_MICROS - created)),
        ])?;
        n.users += 1;

        ins_device.execute(params![
            guid(&mut rng, "DEV"), user, pick(&mut rng, &["phone", "tablet", "desktop"]),
            pick(&mut rng, &["ios", "android", "web"]), Some(format!("{}.{}", rng.random_range(10..18), rng.random_range(0..5))),
            Some(format!("7.{}.{}", rng.random_range(0..30), rng.random_range(0..10))), rng.random_bool(0.6),
            rng.random_bool(0.8).then(|| past(&mut rng, 90)), created, created,
        ])?;
        n.devices += 1;
        ins_profile.execute(params![
            guid(&mut rng, "NTP"), user, rng.random_bool(0.05), rng.random_bool(0.2), rng.random_bool(0.3), rng.random_bool(0.5), created, created,
        ])?;
        n.notification_profiles += 1;

        let mut first_account: Option<String> = None;
        // A goal is created after its user and the account it tracks.
        let mut goal_floor = created;
        for _ in 0..rng.random_range(1..4) {
            let member = guid(&mut rng, "MBR");
            let institution = pick(&mut rng, INSTITUTIONS);
            let m_created = created + rng.random_range(0..30 * DAY);
            let aggregated = rng.random_bool(0.9).then(|| past(&mut rng, 7));
            ins_member.execute(params![
                member, rng.random_bool(0.5).then(|| format!("partner-member-{}", n.members)), user, institution,
                pick(&mut rng, &["CONNECTED", "CONNECTED", "CONNECTED", "CHALLENGED", "DISCONNECTED"]),
                format!("{institution} login"), false, rng.random_bool(0.05), rng.random_bool(0.4),
                aggregated, aggregated, Option::<String>::None, m_created, m_created,
            ])?;
            n.members += 1;
            for _ in 0..rng.random_range(1..4) {
                let account = guid(&mut rng, "ACT");
                let kind = pick(&mut rng, &["CHECKING", "SAVINGS", "CREDIT_CARD", "LOAN"]);
                let credit = kind == "CREDIT_CARD" || kind == "LOAN";
                let balance: i64 = if credit { -rng.random_range(0..2_500_000) } else { rng.random_range(0..5_000_000) };
                ins_account.execute(params![
                    account, rng.random_bool(0.5).then(|| format!("partner-account-{}", n.accounts)), user, member,
                    Some(format!("XXXXXX{:04}", rng.random_range(0..10_000))), kind,
                    (kind == "CHECKING").then_some("PERSONAL"), format!("{} {}", institution, kind.to_lowercase()),
                    rng.random_bool(0.2).then(|| format!("{first}'s {}", kind.to_lowercase())),
                    money(balance), (!credit).then(|| money(balance - rng.random_range(0..10_000))),
                    credit.then(|| money(rng.random_range(100_000..5_000_000))),
                    credit.then(|| rate(rng.random_range(5_000_000..29_990_000))),
                    (kind == "SAVINGS").then(|| rate(rng.random_range(10_000..5_500_000))),
                    "USD", Some(institution), rng.random_bool(0.05), rng.random_bool(0.02), false,
                    m_created, m_created + rng.random_range(0..DAY),
                ])?;
                n.accounts += 1;
                if first_account.is_none() {
                    first_account = Some(account.clone());
                    goal_floor = m_created;
                }
                // ~25 transactions per account over 36 months, a few days past "now".
                for _ in 0..rng.random_range(10..41) {
                    let at = DEMO_NOW_MICROS - rng.random_range(-5 * DAY..1096 * DAY);
                    let (category, mcc) = CATEGORIES[rng.random_range(0..CATEGORIES.len())];
                    let income = category == "Paycheck";
                    let pending = at > DEMO_NOW_MICROS - 3 * DAY;
                    ins_txn.execute(params![
                        guid(&mut rng, "TRN"), rng.random_bool(0.5).then(|| format!("partner-txn-{}", n.transactions)),
                        account, member, user, money(rng.random_range(1..if income { 500_000 } else { 50_000 })),
                        if income { "CREDIT" } else { "DEBIT" }, if pending { "PENDING" } else { "POSTED" },
                        Some(category), Some(format!("{} #{}", category.to_uppercase(), rng.random_range(100..999))), "USD",
                        (mcc > 0).then_some(mcc), category == "Utilities", income, !income, category == "Fees",
                        income, rng.random_bool(0.02), false, rng.random_bool(0.1), rng.random_bool(0.05),
                        rng.random_bool(0.3).then(|| format!("{:.6}", rng.random_range(25.0..49.0f64))),
                        rng.random_bool(0.3).then(|| format!("{:.6}", rng.random_range(-124.0..-67.0f64))),
                        // Recorded when the account was linked at the earliest: history
                        // older than the account is imported then (as aggregators do), so a
                        // transaction is never created before its account.
                        at, (!pending).then_some(at + DAY), at.max(m_created), at.max(m_created),
                    ])?;
                    n.transactions += 1;
                }
            }
        }
        if rng.random_bool(0.5) {
            let goal_created = past(&mut rng, 700);
            let complete = rng.random_bool(0.2);
            let target: i64 = rng.random_range(10_000..2_000_000);
            ins_goal.execute(params![
                guid(&mut rng, "GOL"), user, first_account, pick(&mut rng, &["Vacation", "Emergency fund", "New car", "Pay off card"]),
                pick(&mut rng, &["SAVE_AMOUNT", "PAYOFF"]), Some(pick(&mut rng, &["VACATION", "EMERGENCY", "AUTO", "DEBT"])),
                money(target), money(if complete { target } else { rng.random_range(0..target) }), 1, complete,
                complete.then(|| past(&mut rng, 100)), rng.random_bool(0.7).then(|| DEMO_NOW_MICROS + rng.random_range(0..365 * DAY)),
                goal_created.max(goal_floor), goal_created.max(goal_floor),
            ])?;
            n.goals += 1;
        }
    }
    drop((ins_user, ins_member, ins_account, ins_txn, ins_device, ins_goal, ins_profile));
    attachments(tx, blobs, &mut rng, spec, &mut n)?;
    Ok(n)
}

fn attachments(tx: &rusqlite::Transaction, blobs: &Path, rng: &mut ChaCha8Rng, spec: DemoSpec, n: &mut DemoCounts) -> Result<(), FillError> {
    let mut ins_att = tx.prepare("INSERT INTO attachments VALUES (?1,?2,?3,?4,?5,?6,?7)")?;
    let mut ins_ver = tx.prepare("INSERT INTO attachment_versions VALUES (?1,?2,?3,?4,?5,?6,?7)")?;
    let count = ((200.0 * spec.scale).round() as usize).max(ODD_NAMES.len());
    for a in 0..count {
        let uid = format!("ATT-{:016x}", rng.random::<u64>());
        let (name, ctype) = match ODD_NAMES.get(a) {
            Some(odd) => (odd.to_string(), "application/octet-stream"),
            None => {
                let ext = pick(rng, &["pdf", "png", "csv", "txt"]);
                (format!("{}-{a}.{ext}", pick(rng, &["drawing", "photo", "report", "traveler"])), match ext {
                    "pdf" => "application/pdf",
                    "png" => "image/png",
                    "csv" => "text/csv",
                    _ => "text/plain",
                })
            }
        };
        let created = past(rng, 700);
        ins_att.execute(params![uid, name, ctype, pick(rng, OWNER_TYPES), format!("{}", rng.random_range(1..5000)), created, created])?;
        n.attachments += 1;
        for version in 1..=rng.random_range(1..4i64) {
            let sid = format!("VER-{:016x}", rng.random::<u64>());
            let size = rng.random_range(0..48 * 1024usize);
            let mut data = vec![0u8; size];
            rng.fill(&mut data[..]);
            let sha = hex::encode(Sha256::digest(&data));
            let key = format!("{}/{}", &sha[..2], sid);
            let path = blobs.join(&key);
            let write = || -> std::io::Result<()> {
                fs::create_dir_all(path.parent().expect("blob keys have a directory"))?;
                fs::File::create(&path)?.write_all(&data)
            };
            write().map_err(|e| FillError::Io(path.clone(), e))?;
            ins_ver.execute(params![sid, uid, version, size as i64, sha, created + version * DAY, key])?;
            n.attachment_versions += 1;
        }
    }
    Ok(())
}
