//! A platform, a job, a snapshot: every output file decoded by apache-avro and by
//! Python's fastavro, every row and field compared with the SQLite source.

use std::path::Path;
use std::process::Command;

use apache_avro::types::Value as Avro;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::common::{Platform, python, run, snapshots, stderr};

/// A field's type as the comparison needs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Text,
    Integer,
    /// `timestamp-micros`: integer microseconds in Avro, RFC 3339 text in CSV/JSONL.
    Timestamp,
    Boolean,
    Decimal(u32),
}

pub fn kind(t: &Value) -> Kind {
    match t {
        Value::Array(branches) => kind(branches.iter().find(|b| *b != "null").expect("a non-null branch")),
        Value::String(s) if s == "boolean" => Kind::Boolean,
        Value::String(s) if s == "int" || s == "long" => Kind::Integer,
        Value::String(_) => Kind::Text,
        Value::Object(o) if o.get("logicalType") == Some(&json!("decimal")) => Kind::Decimal(o["scale"].as_u64().unwrap() as u32),
        Value::Object(o) if o.get("logicalType") == Some(&json!("timestamp-micros")) => Kind::Timestamp,
        Value::Object(o) => kind(&o["type"]),
        other => panic!("unexpected schema type {other}"),
    }
}

pub fn decimal_string(unscaled: i128, scale: u32) -> String {
    let digits = unscaled.unsigned_abs().to_string();
    let digits = format!("{digits:0>width$}", width = scale as usize + 1);
    let (int, frac) = digits.split_at(digits.len() - scale as usize);
    let sign = if unscaled < 0 { "-" } else { "" };
    if scale == 0 { format!("{sign}{int}") } else { format!("{sign}{int}.{frac}") }
}

/// The source's rows created before the test jobs' as_of (2026-03-31T14:30:22Z: every
/// built-in resource declares `created_at` its creation column), normalised like the
/// readers' output.
pub fn source_rows(db: &Path, table: &str, fields: &[(String, Kind)]) -> Vec<Map<String, Value>> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let cols: Vec<String> = fields.iter().map(|(n, _)| format!("\"{n}\"")).collect();
    let as_of = chrono::DateTime::parse_from_rfc3339("2026-03-31T14:30:22Z").unwrap().timestamp_micros();
    let mut stmt = conn.prepare(&format!("SELECT {} FROM {table} WHERE created_at < {as_of} ORDER BY rowid", cols.join(", "))).unwrap();
    let mut rows = stmt.query([]).unwrap();
    let mut out = Vec::new();
    while let Some(row) = rows.next().unwrap() {
        let mut m = Map::new();
        for (i, (name, k)) in fields.iter().enumerate() {
            use rusqlite::types::ValueRef as V;
            let v = match (row.get_ref(i).unwrap(), k) {
                (V::Null, _) => Value::Null,
                (V::Integer(n), Kind::Boolean) => json!(n == 1),
                (V::Integer(n), Kind::Integer | Kind::Timestamp) => json!(n),
                (V::Text(t), Kind::Text) => json!(std::str::from_utf8(t).unwrap()),
                (V::Text(t), Kind::Decimal(scale)) => {
                    let t = std::str::from_utf8(t).unwrap();
                    let (neg, body) = t.strip_prefix('-').map(|b| (true, b)).unwrap_or((false, t));
                    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
                    let unscaled: i128 = format!("{int}{frac:0<width$}", width = *scale as usize).parse().unwrap();
                    json!(decimal_string(if neg { -unscaled } else { unscaled }, *scale))
                }
                (v, k) => panic!("{table}.{name}: source value {v:?} for {k:?}"),
            };
            m.insert(name.clone(), v);
        }
        out.push(m);
    }
    out
}

fn norm_avro(v: &Avro, k: Kind) -> Value {
    match v {
        Avro::Null => Value::Null,
        Avro::Union(_, inner) => norm_avro(inner, k),
        Avro::Boolean(b) => json!(b),
        Avro::Int(n) => json!(n),
        Avro::Long(n) | Avro::TimestampMicros(n) | Avro::TimestampMillis(n) => json!(n),
        Avro::String(s) => json!(s),
        Avro::Decimal(d) => {
            let bytes = Vec::<u8>::try_from(d).unwrap();
            let mut unscaled: i128 = if bytes[0] & 0x80 != 0 { -1 } else { 0 };
            for b in bytes {
                unscaled = (unscaled << 8) | b as i128;
            }
            let Kind::Decimal(scale) = k else { panic!("decimal value for {k:?}") };
            json!(decimal_string(unscaled, scale))
        }
        other => panic!("unexpected avro value {other:?}"),
    }
}

pub fn apache_avro_rows(file: &Path, fields: &[(String, Kind)]) -> Vec<Map<String, Value>> {
    let bytes = std::fs::read(file).unwrap();
    let data = if file.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(&bytes[..]), &mut out).unwrap();
        out
    } else {
        bytes
    };
    let reader = apache_avro::Reader::new(&data[..]).unwrap();
    reader
        .map(|r| {
            let Avro::Record(pairs) = r.unwrap() else { panic!("not a record") };
            assert_eq!(pairs.len(), fields.len());
            pairs
                .iter()
                .zip(fields)
                .map(|((name, v), (field, k))| {
                    assert_eq!(name, field);
                    (name.clone(), norm_avro(v, *k))
                })
                .collect()
        })
        .collect()
}

pub fn fastavro_rows(file: &Path) -> Vec<Map<String, Value>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/avro_dump.py");
    let out = Command::new(python()).arg(script).arg(file).output().unwrap();
    assert!(out.status.success(), "fastavro could not read {}: {}", file.display(), stderr(&out));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| match serde_json::from_str(l).unwrap() {
            Value::Object(m) => m,
            other => panic!("not an object: {other}"),
        })
        .collect()
}

pub fn assert_rows_equal(what: &str, expected: &[Map<String, Value>], got: &[Map<String, Value>]) {
    assert_eq!(expected.len(), got.len(), "{what}: row count");
    for (i, (e, g)) in expected.iter().zip(got).enumerate() {
        assert_eq!(e, g, "{what}: row {i} differs");
    }
}

#[test]
fn users_and_accounts_match_the_source_in_two_independent_readers() {
    let p = Platform::new(0.1, 7);
    let job = p.job("e2e", "format = \"avro\"\ngzip = true", "[[resource]]\nname = \"users\"\n\n[[resource]]\nname = \"accounts\"");
    let started = std::time::Instant::now();
    let out = run(&job);
    let run_seconds = started.elapsed().as_secs_f64();
    assert!(out.status.success(), "run failed: {}", stderr(&out));

    let snaps = snapshots(&p.out());
    assert_eq!(snaps.len(), 1, "exactly one snapshot is published");
    let manifest: Value = serde_json::from_slice(&std::fs::read(snaps[0].join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["status"], "completed");
    assert_eq!(manifest["format_version"], 1);
    assert_eq!(manifest["as_of"], "2026-03-31T14:30:22.000000Z");
    let id = manifest["snapshot_id"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "snapshot_id {id} is a GUID");
    assert_eq!(snaps[0].file_name().unwrap().to_str().unwrap(), id);

    let resources = manifest["resources"].as_array().unwrap();
    assert_eq!(resources.iter().map(|r| r["name"].as_str().unwrap()).collect::<Vec<_>>(), ["users", "accounts"]);
    for r in resources {
        let name = r["name"].as_str().unwrap();
        let t = &r["timings"];
        let first = t["first_record_seconds"].as_f64().unwrap_or_else(|| panic!("{name}: no first_record_seconds in {t}"));
        assert!(first > 0.0 && first < run_seconds, "{name}: first record after {first}s of a {run_seconds}s run");
        assert_eq!(r["plugin"]["origin"], "builtin");
        assert_eq!(r["plugin"]["sha256"].as_str().unwrap().len(), 64);
        let fields: Vec<(String, Kind)> = r["schema"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (f["name"].as_str().unwrap().to_string(), kind(&f["type"])))
            .collect();
        let files = r["files"].as_array().unwrap();
        assert_eq!(files.len(), 1);
        let entry = &files[0];
        let file = snaps[0].join(entry["path"].as_str().unwrap());
        assert_eq!(entry["path"], format!("{name}.avro.gz"));

        let bytes = std::fs::read(&file).unwrap();
        assert_eq!(entry["bytes"], bytes.len() as u64, "{name}: manifest bytes");
        assert_eq!(entry["sha256"], hex::encode(Sha256::digest(&bytes)), "{name}: manifest sha256");
        let gz = Command::new("gzip").arg("-t").arg(&file).status().unwrap();
        assert!(gz.success(), "gzip -t {}", file.display());

        let expected = source_rows(&p.db(), name, &fields);
        assert!(expected.len() > 50, "{name}: the platform has rows to compare");
        assert_eq!(r["records"], expected.len() as u64, "{name}: manifest records");
        assert_eq!(entry["records"], expected.len() as u64);
        assert_rows_equal(&format!("{name} via apache-avro"), &expected, &apache_avro_rows(&file, &fields));
        assert_rows_equal(&format!("{name} via fastavro"), &expected, &fastavro_rows(&file));
    }
}

#[test]
fn avro_codecs_without_gzip_read_everywhere() {
    let p = Platform::new(0.05, 3);
    for codec in ["null", "deflate", "snappy", "zstd"] {
        let job = p.job(codec, &format!("gzip = false\ncodec = \"{codec}\""), "[[resource]]\nname = \"accounts\"");
        let out = run(&job);
        assert!(out.status.success(), "{codec}: {}", stderr(&out));
    }
    let fields_of = |snap: &Path| -> Vec<(String, Kind)> {
        let m: Value = serde_json::from_slice(&std::fs::read(snap.join("manifest.json")).unwrap()).unwrap();
        m["resources"][0]["schema"]["fields"].as_array().unwrap().iter().map(|f| (f["name"].as_str().unwrap().into(), kind(&f["type"]))).collect()
    };
    let snaps = snapshots(&p.out());
    assert_eq!(snaps.len(), 4);
    for snap in snaps {
        let file = snap.join("accounts.avro");
        let fields = fields_of(&snap);
        let expected = source_rows(&p.db(), "accounts", &fields);
        assert_rows_equal(&format!("{} via apache-avro", snap.display()), &expected, &apache_avro_rows(&file, &fields));
        assert_rows_equal(&format!("{} via fastavro", snap.display()), &expected, &fastavro_rows(&file));
    }
}
