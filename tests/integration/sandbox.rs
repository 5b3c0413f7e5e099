//! Plugins see only what they declared.

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
