//! Plugins see only what they declared.

use std::time::Instant;

use crate::common::{Platform, assert_nothing_published, plugin, run, stderr};

#[test]
fn a_plugin_reading_an_undeclared_table_is_refused_and_nothing_is_published() {
    let p = Platform::new(0.02, 5);
    let sneaky = plugin("ferry-test-sneaky");
    let job = p.job("sneaky", "", &format!("[[resource]]\nname = \"sneaky\"\nplugin = \"{}\"", sneaky.display()));
    let out = run(&job);
    let err = stderr(&out);
    assert!(!out.status.success(), "a run with a sneaky plugin succeeded");
    assert!(err.contains("resource `sneaky` failed"), "{err}");
    assert!(err.contains("table `accounts` was not declared"), "{err}");
    assert!(err.contains("denied"), "{err}");
    assert_nothing_published(&p.out());
}

#[test]
fn a_plugin_reading_an_undeclared_column_is_refused() {
    let p = Platform::new(0.02, 5);
    let sneaky = plugin("ferry-test-sneaky");
    let job = p.job(
        "sneaky",
        "",
        &format!("[[resource]]\nname = \"sneaky\"\nplugin = \"{}\"\noptions = {{ try = \"column\" }}", sneaky.display()),
    );
    let out = run(&job);
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(err.contains("column `users.email` was not declared"), "{err}");
    assert_nothing_published(&p.out());
}

/// `records.copy` reads in the host, and is held to the same grants as a read.
#[test]
fn a_host_side_copy_is_refused_what_a_read_would_be() {
    let p = Platform::new(0.02, 5);
    let sneaky = plugin("ferry-test-sneaky");
    for (attempt, expected) in [
        ("copy-table", "denied: table `accounts` was not declared"),
        ("copy-column", "denied: column `users.email` was not declared"),
        ("copy-key", "key column `email` is not one of the read's columns"),
    ] {
        let job = p.job(attempt, "", &format!("[[resource]]\nname = \"sneaky\"\nplugin = \"{}\"\noptions = {{ try = \"{attempt}\" }}", sneaky.display()));
        let out = run(&job);
        let err = stderr(&out);
        assert!(!out.status.success(), "{attempt}: the run succeeded");
        assert!(err.contains(expected), "{attempt}: {err}");
        assert_nothing_published(&p.out());
    }
}

/// One `records.copy` call can be a whole export, and epoch interruption stops only
/// wasm code: the copy checks the resource's time limit itself, batch by batch, instead
/// of finishing the table first.
#[test]
fn a_host_side_copy_stops_at_the_time_limit() {
    let p = Platform::new(1.0, 5);
    let export = |limit: &str| {
        let job = p.job("copy-time", "", &format!("[[resource]]\nname = \"transactions\"\nmonths = \"all\"\n{limit}"));
        let started = Instant::now();
        let out = run(&job);
        (out, started.elapsed())
    };
    let (out, whole) = export("");
    assert!(out.status.success(), "{}", stderr(&out));
    let (out, limited) = export("time_limit = \"100ms\"");
    let err = stderr(&out);
    assert!(err.contains("plugin `transactions` ran past its time limit of 100ms and was stopped"), "{err}");
    assert!(limited < whole / 2, "stopped after {limited:?}; the whole copy takes {whole:?}");
}

#[test]
fn a_declared_table_missing_from_the_source_is_named() {
    let p = Platform::new(0.02, 5);
    let conn = rusqlite::Connection::open(p.db()).unwrap();
    conn.execute_batch("ALTER TABLE accounts RENAME COLUMN nickname TO nick").unwrap();
    drop(conn);
    let job = p.job("renamed", "", "[[resource]]\nname = \"accounts\"");
    let out = run(&job);
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(err.contains("column `accounts.nickname`, which the source does not have"), "{err}");
    assert_nothing_published(&p.out());
}
