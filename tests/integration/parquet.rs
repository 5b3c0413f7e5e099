//! Parquet output (issue 18) read back by three readers ferry did not write: pyarrow,
//! DuckDB (`read_parquet`) and polars, every field of every row equal to the source, with
//! the logical types checked in the file's own schema.

use std::path::Path;
use std::process::Command;

use serde_json::{Map, Value};

use crate::common::{Platform, ferry, python, run, snapshots, stderr};
use crate::end_to_end::{Kind, assert_rows_equal, kind, source_rows};

const READERS: [&str; 3] = ["pyarrow", "duckdb", "polars"];

fn manifest(snapshot: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(snapshot.join("manifest.json")).unwrap()).unwrap()
}

fn fields(resource: &Value) -> Vec<(String, Kind)> {
    resource["schema"]["fields"].as_array().unwrap().iter().map(|f| (f["name"].as_str().unwrap().into(), kind(&f["type"]))).collect()
}

/// The file's schema (as pyarrow reads the footer) and its rows as `reader` reads them.
fn read_back(file: &Path, reader: &str) -> (Map<String, Value>, Vec<Map<String, Value>>) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/parquet_dump.py");
    let out = Command::new(python()).arg(script).arg(file).arg(reader).output().unwrap();
    assert!(out.status.success(), "{reader} could not read {}: {}", file.display(), stderr(&out));
    let mut v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = v["rows"].as_array().unwrap().iter().map(|r| r.as_object().unwrap().clone()).collect();
    (v["schema"].take().as_object().unwrap().clone(), rows)
}

fn by_time(rows: &mut [Map<String, Value>]) {
    rows.sort_by_key(|r| (r["transacted_at"].as_i64(), r["guid"].as_str().map(String::from)));
}

fn micros(t: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(t).unwrap().timestamp_micros()
}

/// Every declared field: nullable in Parquet exactly when the Avro type is a union with null.
fn assert_schema(resource: &Value, schema: &Map<String, Value>) {
    for f in resource["schema"]["fields"].as_array().unwrap() {
        let name = f["name"].as_str().unwrap();
        let nullable = f["type"].as_array().is_some_and(|b| b.iter().any(|b| b == "null"));
        assert_eq!(schema[name]["nullable"], nullable, "{name}: nullability as declared");
    }
}

#[test]
fn parquet_reads_back_exactly_in_pyarrow_duckdb_and_polars() {
    let p = Platform::new(0.05, 41);
    let resources =
        "[[resource]]\nname = \"users\"\n\n[[resource]]\nname = \"accounts\"\n\n[[resource]]\nname = \"transactions\"\nmonths = \"all\"";
    let out = run(&p.job("pq", "format = \"parquet\"", resources));
    assert!(out.status.success(), "{}", stderr(&out));
    let snap = &snapshots(&p.out())[0];
    let m = manifest(snap);
    let as_of = micros("2026-03-31T14:30:22Z");
    for r in m["resources"].as_array().unwrap() {
        let name = r["name"].as_str().unwrap();
        let fields = fields(r);
        assert_eq!(r["files"][0]["path"], format!("{name}.parquet"), "a Parquet file is not gzipped again");
        let file = snap.join(r["files"][0]["path"].as_str().unwrap());
        let mut want = source_rows(&p.db(), name, &fields);
        if name == "transactions" {
            want.retain(|row| row["transacted_at"].as_i64().unwrap() < as_of);
            by_time(&mut want);
        }
        assert!(!want.is_empty());
        assert_eq!(r["records"], want.len() as u64);
        for reader in READERS {
            let (schema, mut got) = read_back(&file, reader);
            if name == "transactions" {
                by_time(&mut got);
            }
            assert_rows_equal(&format!("{name} read by {reader}"), &want, &got);
            assert_eq!(schema["_compression"], "ZSTD", "zstd by default");
            assert_schema(r, &schema);
        }
    }
    // The logical types in the transactions file's own schema.
    let (schema, _) = read_back(&snap.join("transactions.parquet"), "pyarrow");
    assert_eq!(schema["amount"]["logical"], "Decimal(precision=14, scale=2)");
    assert_eq!(schema["amount"]["physical"], "INT64");
    let ts = schema["transacted_at"]["logical"].as_str().unwrap();
    assert!(ts.starts_with("Timestamp(isAdjustedToUTC=true, timeUnit=microseconds"), "{ts}");
    assert_eq!(schema["is_income"]["physical"], "BOOLEAN");
    assert_eq!(schema["guid"]["logical"], "String");
    // Some column the demo leaves NULL somewhere, carried as null (not "" or 0).
    let (_, rows) = read_back(&snap.join("transactions.parquet"), "duckdb");
    assert!(rows.iter().any(|r| r["posted_at"].is_null()) || rows.iter().any(|r| r["latitude"].is_null()));
    let verify = ferry().arg("verify").arg(snap).output().unwrap();
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
}

#[test]
fn a_windowed_parquet_export_splits_into_tar_parts_that_verify_and_read_back() {
    let p = Platform::new(0.05, 42);
    let job = p.job(
        "pqw",
        "format = \"parquet\"\ncodec = \"snappy\"\narchive = \"tar\"\nmax_records_per_file = 300",
        "[[resource]]\nname = \"transactions\"\nmonths = 3",
    );
    let out = run(&job);
    assert!(out.status.success(), "{}", stderr(&out));
    let snap = &snapshots(&p.out())[0];
    let verify = ferry().arg("verify").arg(snap).output().unwrap();
    let report = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success() && report.contains(".parquet"), "{report}");
    let m = manifest(snap);
    let r = &m["resources"][0];
    let files = r["files"].as_array().unwrap();
    assert!(files.len() > 1, "split into several files");
    let unpacked = tempfile::tempdir().unwrap();
    for part in std::fs::read_dir(snap).unwrap().flatten().filter(|e| e.path().extension().is_some_and(|x| x == "tar")) {
        assert!(Command::new("tar").arg("-xf").arg(part.path()).arg("-C").arg(unpacked.path()).status().unwrap().success());
    }
    let fields = fields(r);
    let mut want = source_rows(&p.db(), "transactions", &fields);
    let (start, end) = (micros("2025-12-31T14:30:22Z"), micros("2026-03-31T14:30:22Z"));
    want.retain(|row| (start..end).contains(&row["transacted_at"].as_i64().unwrap()));
    by_time(&mut want);
    for reader in READERS {
        let mut all = Vec::new();
        for (i, f) in files.iter().enumerate() {
            assert_eq!(f["path"], format!("transactions-{:05}.parquet", i + 1));
            let (schema, rows) = read_back(&unpacked.path().join(f["path"].as_str().unwrap()), reader);
            assert_eq!(schema["_compression"], "SNAPPY", "codec chooses the page compression");
            assert_eq!(f["records"], rows.len() as u64);
            all.extend(rows);
        }
        by_time(&mut all);
        assert_rows_equal(&format!("windowed transactions read by {reader}"), &want, &all);
    }
}

#[test]
fn gzip_or_deflate_with_parquet_is_a_job_error_that_says_why() {
    let p = Platform::new(0.01, 43);
    for (extra, key, says) in [
        ("format = \"parquet\"\ngzip = true", "output.gzip", "gzip = true with format = \"parquet\""),
        ("format = \"parquet\"\ncodec = \"deflate\"", "output.codec", "not offered for Parquet"),
    ] {
        let out = run(&p.job("bad", extra, "[[resource]]\nname = \"users\""));
        let err = stderr(&out);
        assert!(!out.status.success(), "{extra}: should fail");
        assert!(err.contains(key) && err.contains(says), "{extra}: {err}");
    }
    assert!(snapshots(&p.out()).is_empty());
}
