//! `ferry inspect` against figures computed independently with SQL on the source SQLite,
//! for the same export in Avro (in tar parts), CSV, JSONL and Parquet.

use std::path::Path;

use serde_json::Value;

use crate::common::{Platform, ferry, run, snapshots, stderr};

fn inspect_json(snap: &Path, extra: &[&str]) -> Value {
    let out = ferry().arg("inspect").arg(snap).args(extra).arg("--json").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn column<'a>(resource: &'a Value, name: &str) -> &'a Value {
    resource["columns"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap()
}

fn sql_i64(conn: &rusqlite::Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

fn sql_text(conn: &rusqlite::Connection, sql: &str) -> String {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

#[test]
fn inspect_matches_sql_on_the_source_for_every_format() {
    let p = Platform::new(0.05, 51);
    let (start, end) = (
        chrono::DateTime::parse_from_rfc3339("2025-12-31T14:30:22Z").unwrap().timestamp_micros(),
        chrono::DateTime::parse_from_rfc3339("2026-03-31T14:30:22Z").unwrap().timestamp_micros(),
    );
    for format in ["avro", "csv", "jsonl", "parquet"] {
        let gzip = if format == "parquet" { "" } else { "\ngzip = true" };
        let out = run(&p.job(
            format,
            &format!("format = \"{format}\"{gzip}\narchive = \"tar\""),
            "[[resource]]\nname = \"transactions\"\nmonths = 3\n\n[[resource]]\nname = \"users\"",
        ));
        assert!(out.status.success(), "{format}: {}", stderr(&out));
    }
    let conn = rusqlite::Connection::open(p.db()).unwrap();
    let window = format!("FROM transactions WHERE transacted_at >= {start} AND transacted_at < {end}");
    let records = sql_i64(&conn, &format!("SELECT count(*) {window}"));
    let months: Vec<(String, i64)> = conn
        .prepare(&format!("SELECT strftime('%Y-%m', transacted_at / 1000000, 'unixepoch') AS m, count(*) {window} GROUP BY m ORDER BY m"))
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let snaps = snapshots(&p.out());
    assert_eq!(snaps.len(), 4);
    let mut reports = Vec::new();
    for snap in &snaps {
        let all = inspect_json(snap, &[]);
        assert_eq!(all.as_array().unwrap().len(), 2);
        let report = inspect_json(snap, &["--resource", "transactions"]);
        let t = &report[0];
        let format = t["format"].as_str().unwrap().to_string();
        assert_eq!(t["records"], records, "{format}");
        for (month, n) in &months {
            assert_eq!(t["per_month"][month], *n, "{format}: {month}");
        }
        assert_eq!(t["per_month"].as_object().unwrap().len(), months.len(), "{format}");
        for col in ["posted_at", "latitude", "longitude", "merchant_category_code", "id", "category"] {
            let nulls = sql_i64(&conn, &format!("SELECT count(*) {window} AND {col} IS NULL"));
            assert_eq!(column(t, col)["nulls"], nulls, "{format}: {col} nulls");
        }
        let cheapest = sql_text(&conn, &format!("SELECT printf('%.2f', amount) {window} ORDER BY CAST(amount AS REAL) LIMIT 1"));
        let dearest = sql_text(&conn, &format!("SELECT printf('%.2f', amount) {window} ORDER BY CAST(amount AS REAL) DESC LIMIT 1"));
        assert_eq!(column(t, "amount")["min"], cheapest, "{format}");
        assert_eq!(column(t, "amount")["max"], dearest, "{format}");
        assert_eq!(column(t, "amount")["type"], "decimal(14,2)");
        let first = sql_i64(&conn, &format!("SELECT min(transacted_at) {window}"));
        let first = chrono::DateTime::from_timestamp_micros(first).unwrap().to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
        assert_eq!(column(t, "transacted_at")["min"], first, "{format}");
        for col in ["guid", "account_guid", "category", "amount"] {
            let distinct = sql_i64(&conn, &format!("SELECT count(DISTINCT {col}) {window}")) as f64;
            let estimate = column(t, col)["distinct_estimate"].as_f64().unwrap();
            assert!((estimate - distinct).abs() <= (distinct * 0.05).max(2.0), "{format}: {col} distinct {estimate} vs {distinct}");
        }
        let mut t = t.clone();
        t["format"] = Value::Null;
        reports.push(t);
    }
    assert!(reports.windows(2).all(|w| w[0] == w[1]), "every format gives the same figures");

    // --against: records per resource from the two manifests; same plugins, same columns.
    let out = ferry().arg("inspect").arg(&snaps[0]).arg("--against").arg(&snaps[1]).arg("--json").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let changes: Value = serde_json::from_slice(&out.stdout).unwrap();
    let t = changes.as_array().unwrap().iter().find(|c| c["name"] == "transactions").unwrap();
    assert_eq!(t["records_a"], records);
    assert_eq!(t["records_b"], records);
    assert!(t["columns_added"].as_array().unwrap().is_empty() && t["columns_retyped"].as_array().unwrap().is_empty());
    let missing = ferry().arg("inspect").arg(&snaps[0]).arg("--resource").arg("nope").output().unwrap();
    assert!(!missing.status.success() && stderr(&missing).contains("no resource \"nope\""), "{}", stderr(&missing));
}
