//! CSV and JSONL read back by Python's csv and json modules, Avro split into numbered
//! files read back by fastavro, and an out-of-tree plugin loaded by path.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::{Map, Value, json};

use crate::common::{Platform, plugin, python, run, snapshots, stderr};
use crate::end_to_end::{Kind, assert_rows_equal, decimal_string, fastavro_rows, kind, source_rows};

fn manifest(snapshot: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(snapshot.join("manifest.json")).unwrap()).unwrap()
}

fn fields(resource: &Value) -> Vec<(String, Kind)> {
    resource["schema"]["fields"].as_array().unwrap().iter().map(|f| (f["name"].as_str().unwrap().into(), kind(&f["type"]))).collect()
}

fn text_rows(file: &Path) -> Vec<Map<String, Value>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/text_dump.py");
    let out = Command::new(python()).arg(script).arg(file).output().unwrap();
    assert!(out.status.success(), "python could not read {}: {}", file.display(), stderr(&out));
    String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str::<Map<String, Value>>(l).unwrap()).collect()
}

/// The source rows as CSV (every value a string) or JSONL shows them.
fn as_text(rows: Vec<Map<String, Value>>, fields: &[(String, Kind)], csv: bool) -> Vec<Map<String, Value>> {
    rows.into_iter()
        .map(|row| {
            fields
                .iter()
                .map(|(name, k)| {
                    let v = &row[name];
                    let v = match (v, k) {
                        (Value::Null, _) => Value::Null,
                        (Value::Number(n), Kind::Timestamp) => {
                            let t = chrono::DateTime::from_timestamp_micros(n.as_i64().unwrap()).unwrap();
                            json!(t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
                        }
                        (v, _) if csv => match v {
                            Value::String(s) => json!(s),
                            other => json!(other.to_string()),
                        },
                        (v, _) => v.clone(),
                    };
                    (name.clone(), v)
                })
                .collect()
        })
        .collect()
}

#[test]
fn csv_and_jsonl_read_back_with_pythons_own_modules() {
    let p = Platform::new(0.05, 31);
    let resources = "[[resource]]\nname = \"users\"\n\n[[resource]]\nname = \"accounts\"\n\n[[resource]]\nname = \"transactions\"\nmonths = \"all\"";
    for format in ["csv", "jsonl"] {
        let out = run(&p.job(format, &format!("format = \"{format}\"\ngzip = true"), resources));
        assert!(out.status.success(), "{format}: {}", stderr(&out));
    }
    let as_of = chrono::DateTime::parse_from_rfc3339("2026-03-31T14:30:22Z").unwrap().timestamp_micros();
    for snap in snapshots(&p.out()) {
        let m = manifest(&snap);
        let csv = m["name"] == "csv";
        for r in m["resources"].as_array().unwrap() {
            let name = r["name"].as_str().unwrap();
            let fields = fields(r);
            let file = snap.join(r["files"][0]["path"].as_str().unwrap());
            assert_eq!(r["files"][0]["path"], format!("{name}.{}.gz", m["name"].as_str().unwrap()));
            assert!(Command::new("gzip").arg("-t").arg(&file).status().unwrap().success());
            let mut source = source_rows(&p.db(), name, &fields);
            if name == "transactions" {
                // "all" still stops at as_of (the platform has a few days of later rows,
                // which `source_rows` leaves out by their creation time already).
                source.retain(|row| row["transacted_at"].as_i64().unwrap() < as_of);
            }
            assert_eq!(r["records"], source.len() as u64);
            let mut got = text_rows(&file);
            let mut want = as_text(source, &fields, csv);
            if name == "transactions" {
                // A window is read in `transacted_at` order (the index), not rowid order.
                let key = |r: &Map<String, Value>| (r["transacted_at"].as_str().map(String::from), r["guid"].as_str().map(String::from));
                got.sort_by_key(key);
                want.sort_by_key(key);
            }
            assert_rows_equal(&format!("{name} as {}", m["name"]), &want, &got);
        }
    }
}

#[test]
fn a_resource_splits_into_numbered_files_each_complete() {
    let p = Platform::new(0.05, 32);
    let out = run(&p.job("split", "gzip = true\nmax_records_per_file = 1000", "[[resource]]\nname = \"transactions\"\n\n[[resource]]\nname = \"users\"\nformat = \"csv\""));
    assert!(out.status.success(), "{}", stderr(&out));
    let snap = &snapshots(&p.out())[0];
    let m = manifest(snap);
    let txns = &m["resources"][0];
    let files = txns["files"].as_array().unwrap();
    let total = txns["records"].as_u64().unwrap();
    assert_eq!(files.len() as u64, total.div_ceil(1000), "{total} records in files of 1000");
    let mut all = Vec::new();
    for (i, f) in files.iter().enumerate() {
        assert_eq!(f["path"], format!("transactions-{:05}.avro.gz", i + 1));
        let path = snap.join(f["path"].as_str().unwrap());
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(f["sha256"], hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)));
        let rows = fastavro_rows(&path); // each file has its own header and schema
        assert_eq!(f["records"], rows.len() as u64);
        assert!(rows.len() <= 1000);
        all.extend(rows);
    }
    let fields = fields(txns);
    let as_of = chrono::DateTime::parse_from_rfc3339("2026-03-31T14:30:22Z").unwrap().timestamp_micros();
    let mut source = source_rows(&p.db(), "transactions", &fields);
    source.retain(|row| row["transacted_at"].as_i64().unwrap() < as_of);
    source.sort_by_key(|r| (r["transacted_at"].as_i64(), r["guid"].as_str().map(String::from)));
    all.sort_by_key(|r| (r["transacted_at"].as_i64(), r["guid"].as_str().map(String::from)));
    assert_rows_equal("split transactions", &source, &all);
    // CSV parts each start with the header.
    let users = &m["resources"][1];
    assert_eq!(users["files"][0]["path"], "users-00001.csv.gz");
    assert!(!text_rows(&snap.join("users-00001.csv.gz")).is_empty());
}

#[test]
fn an_out_of_tree_plugin_loads_by_path_and_computes_its_records() {
    let p = Platform::new(0.05, 33);
    let wasm = plugin("ferry-example-category-totals");
    let out = run(&p.job("totals", "format = \"jsonl\"\ngzip = false", &format!("[[resource]]\nname = \"category_totals\"\nplugin = \"{}\"\nmonths = 6", wasm.display())));
    assert!(out.status.success(), "{}", stderr(&out));
    let snap = &snapshots(&p.out())[0];
    let m = manifest(snap);
    assert_eq!(m["resources"][0]["plugin"]["origin"], wasm.display().to_string());
    let rows = text_rows(&snap.join("category_totals.jsonl"));

    // The same totals, computed here from the source with exact cents.
    let (start, end) = (
        chrono::DateTime::parse_from_rfc3339("2025-09-30T14:30:22Z").unwrap().timestamp_micros(),
        chrono::DateTime::parse_from_rfc3339("2026-03-31T14:30:22Z").unwrap().timestamp_micros(),
    );
    let conn = rusqlite::Connection::open(p.db()).unwrap();
    let mut stmt = conn.prepare("SELECT category, type, amount FROM transactions WHERE transacted_at >= ?1 AND transacted_at < ?2").unwrap();
    let mut want: BTreeMap<Option<String>, (i64, i128, i128)> = BTreeMap::new();
    for row in stmt.query_map([start, end], |r| Ok((r.get::<_, Option<String>>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))).unwrap() {
        let (category, kind, amount) = row.unwrap();
        let (int, frac) = amount.split_once('.').unwrap();
        let cents: i128 = format!("{int}{frac:0<2}").parse().unwrap();
        let t = want.entry(category).or_default();
        t.0 += 1;
        if kind == "CREDIT" { t.2 += cents } else { t.1 += cents }
    }
    let want: Vec<Map<String, Value>> = want
        .into_iter()
        .map(|(c, (n, d, cr))| {
            json!({"category": c, "transactions": n, "debits": decimal_string(d, 2), "credits": decimal_string(cr, 2)}).as_object().unwrap().clone()
        })
        .collect();
    assert!(want.len() >= 5);
    assert_rows_equal("category totals", &want, &rows);
}
