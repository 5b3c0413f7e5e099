//! Transactions month windows: for every MX window, the exported transactions are
//! exactly the rows an independent query selects, edges included.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::common::{Platform, run, snapshots, stderr};

const AS_OF: &str = "2026-03-31T14:30:22Z";

/// Window starts for as_of 2026-03-31T14:30:22Z, worked out by hand from the rule in
/// the README (calendar months back, clamped to the month's last day).
const STARTS: &[(&str, &str)] = &[
    ("1", "2026-02-28T14:30:22Z"),
    ("2", "2026-01-31T14:30:22Z"),
    ("3", "2025-12-31T14:30:22Z"),
    ("6", "2025-09-30T14:30:22Z"),
    ("12", "2025-03-31T14:30:22Z"),
    ("24", "2024-03-31T14:30:22Z"),
];

fn micros(t: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(t).unwrap().timestamp_micros()
}

/// Adds transactions exactly on and next to the bounds, copied from an existing row.
fn add_edge_rows(db: &Path, times: &[(&str, i64)]) {
    let conn = rusqlite::Connection::open(db).unwrap();
    for (guid, at) in times {
        conn.execute(
            "INSERT INTO transactions SELECT ?1, id, account_guid, member_guid, user_guid, amount, type, status, category, description, \
             currency_code, merchant_category_code, is_bill_pay, is_direct_deposit, is_expense, is_fee, is_income, is_international, \
             is_overdraft_fee, is_recurring, is_subscription, latitude, longitude, ?2, posted_at, ?2, ?2 \
             FROM transactions LIMIT 1",
            rusqlite::params![guid, at],
        )
        .unwrap();
    }
}

fn expected(db: &Path, start: Option<i64>, end: i64) -> BTreeSet<String> {
    let conn = rusqlite::Connection::open(db).unwrap();
    // As_of also cuts on the creation time: a row recorded at or after it is not in.
    let mut stmt = conn.prepare("SELECT guid, transacted_at FROM transactions WHERE created_at < ?1").unwrap();
    let rows = stmt.query_map([end], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))).unwrap();
    rows.map(Result::unwrap).filter(|(_, at)| start.is_none_or(|s| *at >= s) && *at < end).map(|(g, _)| g).collect()
}

fn exported_guids(snapshot: &Path) -> (BTreeSet<String>, Value) {
    let manifest: Value = serde_json::from_slice(&std::fs::read(snapshot.join("manifest.json")).unwrap()).unwrap();
    let file = snapshot.join(manifest["resources"][0]["files"][0]["path"].as_str().unwrap());
    let reader = apache_avro::Reader::new(std::fs::File::open(file).unwrap()).unwrap();
    let mut guids = BTreeSet::new();
    for record in reader {
        let apache_avro::types::Value::Record(fields) = record.unwrap() else { panic!() };
        let apache_avro::types::Value::String(g) = &fields[0].1 else { panic!("guid first") };
        assert!(guids.insert(g.clone()), "{g} exported twice");
    }
    (guids, manifest)
}

#[test]
fn every_mx_window_exports_exactly_the_rows_in_it() {
    let p = Platform::new(0.05, 21);
    let end = micros(AS_OF);
    let mut edges = vec![("TRN-edge-as-of", end), ("TRN-edge-before-as-of", end - 1), ("TRN-edge-future", end + 86_400_000_000)];
    let owned: Vec<(String, i64)> = STARTS
        .iter()
        .flat_map(|(m, s)| [(format!("TRN-edge-{m}-start"), micros(s)), (format!("TRN-edge-{m}-before-start"), micros(s) - 1)])
        .collect();
    edges.extend(owned.iter().map(|(g, t)| (g.as_str(), *t)));
    add_edge_rows(&p.db(), &edges);

    let windows: Vec<(&str, Option<&str>)> = STARTS.iter().map(|(m, s)| (*m, Some(*s))).chain([("\"all\"", None)]).collect();
    for (months, start) in windows {
        let job = p.job(&format!("w{}", months.trim_matches('"')), "gzip = false", &format!("[[resource]]\nname = \"transactions\"\nmonths = {months}"));
        let out = run(&job);
        assert!(out.status.success(), "months = {months}: {}", stderr(&out));
        let snap = snapshots(&p.out()).into_iter().find(|s| {
            let m: Value = serde_json::from_slice(&std::fs::read(s.join("manifest.json")).unwrap()).unwrap();
            m["name"] == format!("w{}", months.trim_matches('"'))
        });
        let (got, manifest) = exported_guids(&snap.unwrap());
        let want = expected(&p.db(), start.map(micros), end);
        assert!(want.len() > 10, "months = {months}: the window holds rows");
        assert_eq!(got.len(), want.len(), "months = {months}: row count");
        assert_eq!(got, want, "months = {months}: row set");
        assert_eq!(manifest["resources"][0]["records"], want.len() as u64);
        let window = &manifest["resources"][0]["window"];
        assert_eq!(window["column"], "transacted_at");
        assert_eq!(window["end"], "2026-03-31T14:30:22.000000Z");
        // The edges: a bound's first microsecond is in, the one before it and as_of are out.
        assert!(got.contains("TRN-edge-before-as-of") && !got.contains("TRN-edge-as-of") && !got.contains("TRN-edge-future"));
        if let Some((m, _)) = STARTS.iter().find(|(m, _)| *m == months) {
            assert!(got.contains(&format!("TRN-edge-{m}-start")), "months = {m}: the start is inclusive");
            assert!(!got.contains(&format!("TRN-edge-{m}-before-start")), "months = {m}: before the start is out");
        }
    }
}

#[test]
fn leap_day_and_midnight_bounds() {
    let p = Platform::new(0.02, 22);
    // as_of 2024-03-31 midnight: one month back is 2024-02-29 midnight (a leap year).
    let (start, end) = (micros("2024-02-29T00:00:00Z"), micros("2024-03-31T00:00:00Z"));
    add_edge_rows(&p.db(), &[("TRN-leap-day", start), ("TRN-leap-eve", start - 1), ("TRN-midnight-end", end), ("TRN-last", end - 1)]);
    let path = p.dir.path().join("leap.toml");
    let text = std::fs::read_to_string(p.job("leap", "gzip = false", "[[resource]]\nname = \"transactions\"\nmonths = 1"))
        .unwrap()
        .replace("2026-03-31T14:30:22Z", "2024-03-31T00:00:00Z");
    std::fs::write(&path, text).unwrap();
    let out = run(&path);
    assert!(out.status.success(), "{}", stderr(&out));
    let (got, manifest) = exported_guids(&snapshots(&p.out())[0]);
    assert_eq!(manifest["resources"][0]["window"]["start"], "2024-02-29T00:00:00.000000Z");
    assert_eq!(got, expected(&p.db(), Some(start), end));
    assert!(got.contains("TRN-leap-day") && got.contains("TRN-last"));
    assert!(!got.contains("TRN-leap-eve") && !got.contains("TRN-midnight-end"));
}

#[test]
fn months_on_a_resource_without_a_window_is_refused() {
    let p = Platform::new(0.02, 23);
    let job = p.job("nowin", "", "[[resource]]\nname = \"users\"\nmonths = 3");
    let out = run(&job);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("`months` is set, but plugin `users` has no time window"), "{}", stderr(&out));
    crate::common::assert_nothing_published(&p.out());
}
