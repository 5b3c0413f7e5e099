//! Plugin authors' tools: `ferry plugins new` (a scaffolded plugin, built and run here)
//! and `ferry plugins test` (a report and an exit status for CI).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use crate::common::{Platform, ferry, plugin, stderr};

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn plugins_test(wasm: &Path, job: Option<&Path>, extra: &[&str]) -> Output {
    let mut cmd = ferry();
    cmd.args(["plugins", "test"]).arg(wasm);
    if let Some(job) = job {
        cmd.arg("--job").arg(job);
    }
    cmd.args(extra).output().unwrap()
}

#[test]
fn plugins_test_reports_describe_grants_and_records_and_passes() {
    let p = Platform::new(0.05, 5);
    let job = p.job("any", "", "[[resource]]\nname = \"users\"");
    let out = plugins_test(&plugin("ferry-example-category-totals"), Some(&job), &[]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    for want in [
        "describe   category_totals 0.1.0",
        "  transactions: category, type, amount",
        "  ok   window column `transacted_at` is granted on `transactions`",
        "records, every one valid against the schema",
        "  record {\"category\":",
        "memory ",
        "PASS",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
}

#[test]
fn plugins_test_fails_a_plugin_whose_records_do_not_match_its_schema() {
    let p = Platform::new(0.05, 5);
    let job = p.job("any", "", "[[resource]]\nname = \"users\"");
    let out = plugins_test(&plugin("ferry-test-hostile"), Some(&job), &["--option", "mode=bad-record"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}\n{}", stderr(&out));
    assert!(text.contains("sent records that do not match its declared schema: record 0 of the batch, field `guid`"), "{text}");
    assert!(text.trim_end().ends_with("FAIL"), "{text}");
}

#[test]
fn plugins_test_fails_a_plugin_that_reads_an_undeclared_table() {
    let p = Platform::new(0.05, 5);
    let job = p.job("any", "", "[[resource]]\nname = \"users\"");
    let out = plugins_test(&plugin("ferry-test-sneaky"), Some(&job), &[]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}\n{}", stderr(&out));
    assert!(text.contains("denied: table `accounts` was not declared"), "{text}");
    assert!(text.contains("the plugin read a table or column it did not declare"), "{text}");
}

/// `ferry plugins new`, then the project's own `cargo test` (the kit's mock host), its
/// wasm build and `ferry run job.toml` against the demo platform; the totals are checked
/// against SQL on the generated source, and `ferry plugins test` passes the component.
#[test]
fn a_scaffolded_plugin_builds_tests_and_exports_the_demo_platform() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("balances");
    let out = ferry().args(["plugins", "new", "balances", "--dir"]).arg(&project).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    for file in ["Cargo.toml", "src/lib.rs", "job.toml", "README.md", ".gitignore"] {
        assert!(project.join(file).is_file(), "{file} was not written");
    }
    // Shares the plugins' target directory: the kit and its dependencies are built there.
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/wasm-plugins");
    let cargo = |args: &[&str]| {
        let out = Command::new(env!("CARGO"))
            .args(args)
            .arg("--target-dir")
            .arg(&target)
            .current_dir(&project)
            .env_remove("CARGO_TARGET_DIR")
            .output()
            .unwrap();
        assert!(out.status.success(), "cargo {args:?} in the scaffold failed:\n{}", stderr(&out));
    };
    cargo(&["test", "--offline"]);
    cargo(&["build", "--offline", "--release", "--target", "wasm32-wasip2"]);
    let wasm = target.join("wasm32-wasip2/release/balances.wasm");
    std::fs::create_dir_all(project.join("target/wasm32-wasip2/release")).unwrap();
    std::fs::copy(&wasm, project.join("target/wasm32-wasip2/release/balances.wasm")).unwrap();

    let out = ferry().arg("run").arg(project.join("job.toml")).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let snap = std::fs::read_dir(project.join("out")).unwrap().flatten().map(|e| e.path()).find(|p| p.is_dir()).unwrap();
    let mut got = BTreeMap::new();
    for line in std::fs::read_to_string(snap.join("balances.jsonl")).unwrap().lines() {
        let r: serde_json::Value = serde_json::from_str(line).unwrap();
        got.insert(
            r["currency_code"].as_str().unwrap().to_string(),
            (r["accounts"].as_i64().unwrap(), r["balance"].as_str().unwrap().to_string()),
        );
    }
    let db = rusqlite::Connection::open(project.join("demo/platform.db")).unwrap();
    let mut want: BTreeMap<String, (i64, i128)> = BTreeMap::new();
    let mut q = db.prepare("SELECT currency_code, balance FROM accounts").unwrap();
    for row in q.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))).unwrap() {
        let (currency, balance) = row.unwrap();
        let w = want.entry(currency).or_default();
        w.0 += 1;
        w.1 += ferry_wire::decimal::parse(balance.as_bytes(), 38, 2).unwrap();
    }
    let want: BTreeMap<String, (i64, String)> =
        want.into_iter().map(|(c, (n, cents))| (c, (n, ferry_wire::decimal::to_text(cents, 2)))).collect();
    assert!(!want.is_empty());
    assert_eq!(got, want);

    let out = plugins_test(&wasm, None, &["--scale", "0.02"]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
}
