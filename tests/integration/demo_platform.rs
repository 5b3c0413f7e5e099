//! The demo platform is deterministic: same seed, same rows and blobs.

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::common::Platform;

const TABLES: &[&str] = &[
    "users", "members", "accounts", "transactions", "devices", "goals", "notification_profiles", "attachments", "attachment_versions",
];

/// A digest of every row of every table, in rowid order, and of every blob file.
fn fingerprint(p: &Platform) -> (Vec<(String, u64)>, String) {
    let conn = rusqlite::Connection::open(p.db()).unwrap();
    let mut h = Sha256::new();
    let mut counts = Vec::new();
    for table in TABLES {
        let mut stmt = conn.prepare(&format!("SELECT * FROM {table} ORDER BY rowid")).unwrap();
        let n = stmt.column_count();
        let mut rows = stmt.query([]).unwrap();
        let mut count = 0;
        while let Some(row) = rows.next().unwrap() {
            for i in 0..n {
                h.update(format!("{:?}|", row.get_ref(i).unwrap()));
            }
            count += 1;
        }
        counts.push((table.to_string(), count));
    }
    let mut blobs: Vec<_> = walk(&p.dir.path().join("platform/blobs"));
    blobs.sort();
    for b in &blobs {
        h.update(b.strip_prefix(p.dir.path()).unwrap().to_string_lossy().as_bytes());
        h.update(std::fs::read(b).unwrap());
    }
    (counts, hex::encode(h.finalize()))
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

#[test]
fn same_seed_same_platform_other_seed_other_platform() {
    let (a, b, c) = (Platform::new(0.05, 11), Platform::new(0.05, 11), Platform::new(0.05, 12));
    let (fa, fb, fc) = (fingerprint(&a), fingerprint(&b), fingerprint(&c));
    assert_eq!(fa, fb, "same seed gives the same rows and blobs");
    assert_ne!(fa.1, fc.1, "another seed gives other rows");
    for (table, count) in &fa.0 {
        assert!(*count > 0, "table {table} has rows");
    }
    let versions = fa.0.iter().find(|(t, _)| t == "attachment_versions").unwrap().1;
    assert_eq!(walk(&a.dir.path().join("platform/blobs")).len() as u64, versions, "one blob per version");
}

#[test]
fn scale_drives_the_row_counts() {
    let p = Platform::new(0.2, 1);
    let conn = rusqlite::Connection::open(p.db()).unwrap();
    let count = |t: &str| conn.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get::<_, i64>(0)).unwrap();
    assert_eq!(count("users"), 200);
    let txns = count("transactions");
    // About 100 transactions per user at any scale.
    assert!((10_000..30_000).contains(&txns), "{txns} transactions at scale 0.2");
    // Transactions span 36 months before 2026-04-01 and a few days after it.
    let (min, max): (i64, i64) = conn.query_row("SELECT min(transacted_at), max(transacted_at) FROM transactions", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    assert!(min >= ferry::source::DEMO_NOW_MICROS - 1096 * 86_400_000_000);
    assert!(max > ferry::source::DEMO_NOW_MICROS, "some transactions lie after the platform's now");
}
