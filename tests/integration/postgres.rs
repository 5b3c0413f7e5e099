//! PostgreSQL as the source: the demo platform loaded with `ferry demo --postgres`
//! exports to the same records, field for field, as from SQLite; a window is answered
//! from the index; reads share pooled connections; the password appears in no output.

use std::path::Path;

use apache_avro::types::Value as Avro;

use crate::common::{ferry, run, snapshots, stderr};
use crate::servers;

const RESOURCES: &str = "[[resource]]\nname = \"users\"\n[[resource]]\nname = \"members\"\n[[resource]]\nname = \"accounts\"\n\
[[resource]]\nname = \"transactions\"\nmonths = 3\n[[resource]]\nname = \"devices\"\n[[resource]]\nname = \"goals\"\n\
[[resource]]\nname = \"notification_profiles\"\n";

fn job(dir: &Path, name: &str, source: &str) -> std::path::PathBuf {
    job_of(dir, name, source, RESOURCES)
}

fn job_of(dir: &Path, name: &str, source: &str, resources: &str) -> std::path::PathBuf {
    let path = dir.join(format!("{name}.toml"));
    let text = format!(
        "[snapshot]\nname = \"{name}\"\nas_of = \"2026-03-31T14:30:22Z\"\n\n[source]\n{source}\n\n[output]\ndir = \"out-{name}\"\narchive = \"none\"\n\n{resources}"
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Every record of every file of a snapshot, per resource, in file order.
fn records(snapshot: &Path) -> Vec<(String, Vec<Avro>)> {
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(snapshot.join("manifest.json")).unwrap()).unwrap();
    manifest["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let mut all = Vec::new();
            for f in r["files"].as_array().unwrap() {
                let bytes = std::fs::read(snapshot.join(f["path"].as_str().unwrap())).unwrap();
                let mut data = Vec::new();
                std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(&bytes[..]), &mut data).unwrap();
                for v in apache_avro::Reader::new(&data[..]).unwrap() {
                    all.push(v.unwrap());
                }
            }
            (r["name"].as_str().unwrap().to_string(), all)
        })
        .collect()
}

#[test]
fn postgres_snapshot_equals_sqlite_snapshot_field_for_field() {
    let Some(url) = servers::postgres("pg_equals_sqlite") else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = servers::demo_on_postgres(dir.path(), &url, "0.2", "7");
    let password = url.split_once("://").unwrap().1.split_once('@').unwrap().0.split_once(':').unwrap().1.to_string();
    assert!(!String::from_utf8_lossy(&out.stdout).contains(&password), "demo printed the password");

    let lite = run(&job(dir.path(), "lite", "sqlite = \"platform/platform.db\""));
    assert!(lite.status.success(), "{}", stderr(&lite));
    let pg = run(&job(dir.path(), "pg", &format!("postgres = \"{url}\"")));
    assert!(pg.status.success(), "{}", stderr(&pg));
    for text in [String::from_utf8_lossy(&pg.stdout).into_owned(), stderr(&pg)] {
        assert!(!text.contains(&password), "the run printed the password: {text}");
    }

    let lite_snap = snapshots(&dir.path().join("out-lite")).pop().unwrap();
    let pg_snap = snapshots(&dir.path().join("out-pg")).pop().unwrap();
    let manifest = std::fs::read_to_string(pg_snap.join("manifest.json")).unwrap();
    assert!(!manifest.contains(&password), "the manifest holds the password");
    let catalog = std::fs::read(dir.path().join("out-pg/catalog.db")).unwrap();
    assert!(!catalog.windows(password.len()).any(|w| w == password.as_bytes()), "the catalog holds the password");

    let (a, b) = (records(&lite_snap), records(&pg_snap));
    assert_eq!(a.len(), 7);
    for ((name, lite), (pg_name, pg)) in a.iter().zip(&b) {
        assert_eq!(name, pg_name);
        assert!(!lite.is_empty(), "{name} exported nothing from SQLite");
        assert_eq!(lite.len(), pg.len(), "{name}: record counts differ");
        for (i, (l, p)) in lite.iter().zip(pg).enumerate() {
            assert_eq!(l, p, "{name} record {i} differs between SQLite and PostgreSQL");
        }
    }
}

/// A wide window (every month) is read in physical order, as SQLite reads it in rowid
/// order: the same records in the same order, so the files compress alike (issue 23:
/// PostgreSQL's file was twice SQLite's when read in `transacted_at` order).
#[test]
fn a_wide_postgres_window_reads_the_rows_in_sqlites_order() {
    let Some(url) = servers::postgres("pg_wide_window") else { return };
    let dir = tempfile::tempdir().unwrap();
    servers::demo_on_postgres(dir.path(), &url, "0.1", "11");
    let wide = "[[resource]]\nname = \"transactions\"\nmonths = \"all\"\n[[resource]]\nname = \"users\"\n";
    let lite = run(&job_of(dir.path(), "lite", "sqlite = \"platform/platform.db\"", wide));
    assert!(lite.status.success(), "{}", stderr(&lite));
    let lite_snapshot = snapshots(&dir.path().join("out-lite")).pop().unwrap();
    let a = records(&lite_snapshot);
    // In one piece (the tables are small), then cut into pieces of 4 pages read by
    // several backends at once and put back in page order.
    for (name, pages) in [("pg", None), ("pieces", Some("4"))] {
        let mut cmd = ferry();
        cmd.arg("run").arg(job_of(dir.path(), name, &format!("postgres = \"{url}\""), wide));
        if let Some(pages) = pages {
            cmd.env("FERRY_TEST_PG_PIECE_PAGES", pages);
        }
        let pg = cmd.output().unwrap();
        assert!(pg.status.success(), "{}", stderr(&pg));
        let snapshot = snapshots(&dir.path().join(format!("out-{name}"))).pop().unwrap();
        let b = records(&snapshot);
        for ((resource, lite), (_, pg)) in a.iter().zip(&b) {
            assert!(lite.len() >= 50, "{resource}: only {} records", lite.len());
            assert_eq!(lite.len(), pg.len(), "{name} {resource}: record counts differ");
            let first = lite.iter().zip(pg).position(|(l, p)| l != p);
            assert_eq!(first, None, "{name} {resource}: records differ from position {first:?} on");
        }
        // Avro blocks are cut at the same records however the reads were batched, so
        // the files are the same bytes as SQLite's.
        assert_eq!(file_hashes(&snapshot), file_hashes(&lite_snapshot), "{name}: files differ from SQLite's");
    }
}

/// Each file's path and sha256, from a snapshot's manifest.
fn file_hashes(snapshot: &Path) -> Vec<(String, String)> {
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(snapshot.join("manifest.json")).unwrap()).unwrap();
    let files = manifest["resources"].as_array().unwrap().iter().flat_map(|r| r["files"].as_array().unwrap());
    files.map(|f| (f["path"].as_str().unwrap().to_string(), f["sha256"].as_str().unwrap().to_string())).collect()
}

#[test]
fn a_postgres_window_is_pushed_into_the_query_and_uses_the_index() {
    let Some(url) = servers::postgres("pg_window_index") else { return };
    let mut client = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
    // Enough rows that a sequential scan would be the cheaper plan without the index.
    client
        .batch_execute(
            "CREATE TABLE transactions (guid text NOT NULL, amount numeric(14,2) NOT NULL, transacted_at timestamptz NOT NULL);
             INSERT INTO transactions SELECT 'T-' || i, (i * 1.25)::numeric(14,2), timestamptz '2026-01-01 00:00:00+00' + i * interval '1 minute'
               FROM generate_series(1, 20000) i;
             CREATE INDEX transactions_transacted_at ON transactions (transacted_at);
             ANALYZE transactions;",
        )
        .unwrap();
    let source = ferry::source::PostgresSource::open(&ferry::source::PostgresUrl::parse(&url).unwrap()).unwrap();
    let columns = vec!["guid".to_string(), "amount".to_string(), "transacted_at".to_string()];
    let start = 1_767_225_600_000_000i64 + 60_000_000 * 100; // 2026-01-01 + 100 minutes
    let query = ferry::source::TableQuery {
        table: "transactions",
        columns: &columns,
        range: Some(ferry::source::Range { column: "transacted_at", start: Some(start), end: Some(start + 60_000_000 * 50) }),
        order_by: None,
        created_before: None,
        shard: None,
    };
    let plan = ferry::source::PostgresSource::query_plan(&source, &query).unwrap();
    eprintln!("EXPLAIN of a window:\n{plan}");
    assert!(plan.contains("Index Scan using transactions_transacted_at"), "{plan}");
    assert!(!plan.contains("Seq Scan"), "{plan}");
    let wide = ferry::source::TableQuery {
        range: Some(ferry::source::Range { column: "transacted_at", start: None, end: None }),
        ..query.clone()
    };
    let plan = ferry::source::PostgresSource::query_plan(&source, &wide).unwrap();
    assert!(plan.contains("Seq Scan on transactions") && !plan.contains("Sort"), "a wide window reads in physical order:\n{plan}");
    use ferry::source::Source;
    assert_eq!(source.count(&query).unwrap(), 50);
    let mut stream = source.open(&query).unwrap();
    let batch = stream.next_batch().unwrap().unwrap();
    assert_eq!(batch.rows, 50);
    assert!(stream.next_batch().unwrap().is_none());
    drop(stream);

    // Reads share pooled connections: after twenty more calls one pooled connection is
    // open (a connection per call would leave none, or twenty while closing), beside the
    // one holding the source's exported snapshot.
    for _ in 0..20 {
        assert_eq!(source.count(&query).unwrap(), 50);
    }
    let open: i64 = client
        .query_one("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    assert_eq!(open, 2, "connections the source holds");

    // Cut into pieces, each piece is a TID range scan of its pages, never a whole-table scan.
    let pieces = ferry::source::PostgresSource::open(&ferry::source::PostgresUrl::parse(&url).unwrap()).unwrap().with_piece_pages(8);
    let plan = ferry::source::PostgresSource::query_plan(&pieces, &wide).unwrap();
    assert!(plan.contains("Tid Range Scan on transactions") && plan.contains("ctid < '(8,0)'::tid"), "{plan}");
    assert!(!plan.contains("Seq Scan") && !plan.contains("Sort"), "{plan}");
}
