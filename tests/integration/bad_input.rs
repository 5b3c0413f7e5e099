//! Bad source values and a full disk: a resource error naming the table, row key and
//! column (never a silently wrong value), or a clear output error; nothing published.

use crate::common::{Platform, assert_nothing_published, run, snapshots, stderr};

const SCALE: f64 = 0.02;

/// Runs `users` after `sql` damaged the source; returns the failed run's stderr.
fn users_after(p: &Platform, sql: &str) -> String {
    let conn = rusqlite::Connection::open(p.db()).unwrap();
    conn.execute_batch(sql).unwrap();
    drop(conn);
    let out = run(&p.job("damaged", "", "[[resource]]\nname = \"users\"\n\n[[resource]]\nname = \"accounts\""));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "a damaged source exported: {err}");
    assert!(err.contains("resource `users` failed: plugin `users` failed: bad data: table `users`"), "{err}");
    assert_nothing_published(&p.out());
    err
}

fn third_user(p: &Platform) -> String {
    let conn = rusqlite::Connection::open(p.db()).unwrap();
    conn.query_row("SELECT guid FROM users ORDER BY rowid LIMIT 1 OFFSET 2", [], |r| r.get(0)).unwrap()
}

#[test]
fn text_in_an_integer_column_names_the_table_row_and_column() {
    let p = Platform::new(SCALE, 21);
    let guid = third_user(&p);
    let err = users_after(&p, &format!("UPDATE users SET credit_score = 'high' WHERE guid = '{guid}'"));
    assert!(
        err.contains(&format!("table `users` row {guid:?} column `credit_score`: text \"high\" does not fit int (32-bit)")),
        "{err}"
    );
}

#[test]
fn an_integer_too_wide_for_its_field_is_refused() {
    let p = Platform::new(SCALE, 21);
    let guid = third_user(&p);
    let err = users_after(&p, &format!("UPDATE users SET gender = 4294967296 WHERE guid = '{guid}'"));
    assert!(err.contains(&format!("row {guid:?} column `gender`: integer 4294967296 does not fit int (32-bit)")), "{err}");
}

#[test]
fn a_timestamp_that_is_text_names_the_row() {
    let p = Platform::new(SCALE, 21);
    let guid = third_user(&p);
    let err = users_after(&p, &format!("UPDATE users SET created_at = '2026-13-45' WHERE guid = '{guid}'"));
    assert!(
        err.contains(&format!("row {guid:?} column `created_at`: text \"2026-13-45\" does not fit timestamp (integer microseconds)")),
        "{err}"
    );
}

#[test]
fn a_timestamp_past_year_9999_names_the_row() {
    let p = Platform::new(SCALE, 21);
    let guid = third_user(&p);
    let err = users_after(&p, &format!("UPDATE users SET updated_at = 253402300800000000 WHERE guid = '{guid}'"));
    assert!(
        err.contains(&format!("row {guid:?} column `updated_at`: integer 253402300800000000 is not a timestamp between years 1 and 9999")),
        "{err}"
    );
}

#[test]
fn null_where_the_schema_says_not_null_names_the_row() {
    let p = Platform::new(SCALE, 21);
    let guid = third_user(&p);
    // The demo schema has NOT NULL; a platform that lacks it is what this guards against.
    let err = users_after(
        &p,
        &format!(
            "CREATE TABLE loose AS SELECT * FROM users ORDER BY rowid; DROP TABLE users; ALTER TABLE loose RENAME TO users;
             UPDATE users SET is_disabled = NULL WHERE guid = '{guid}'"
        ),
    );
    assert!(err.contains(&format!("row {guid:?} column `is_disabled`: NULL but the field is not nullable")), "{err}");
}

#[test]
fn a_full_disk_fails_with_a_clear_error_and_publishes_nothing() {
    let p = Platform::new(0.3, 21);
    let job = p.job("full", "gzip = false", "[[resource]]\nname = \"users\"\n\n[[resource]]\nname = \"accounts\"");
    // A 64 KiB file-size limit: writes past it fail with EFBIG (SIGXFSZ ignored), as
    // on a full disk. The plugin cache is warm from other tests or simply not written.
    let script = format!(
        "trap '' XFSZ; ulimit -f 64; exec '{}' run '{}'",
        env!("CARGO_BIN_EXE_ferry"),
        job.display()
    );
    let out = std::process::Command::new("bash")
        .args(["-c", &script])
        .env("FERRY_CACHE_DIR", crate::common::cache_dir())
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("failed: writing"), "{err}");
    assert!(err.contains("File too large"), "{err}");
    assert!(snapshots(&p.out()).is_empty(), "a snapshot was published on a full disk");
    assert_nothing_published(&p.out());
}
