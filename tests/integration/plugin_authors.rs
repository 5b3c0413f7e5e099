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

/// `1.50 MiB` (indicatif's human bytes, as the report prints them) in bytes.
fn human_bytes(text: &str) -> u64 {
    let (number, unit) = text.trim().split_once(' ').unwrap_or_else(|| panic!("{text:?} is not a size"));
    let scale = match unit {
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        _ => panic!("{text:?}: unit {unit:?}"),
    };
    (number.parse::<f64>().unwrap() * scale) as u64
}

/// The plugin's own peak linear memory (the store's limiter sums every memory's initial
/// size and growth): reported by `ferry plugins test` against the job's limit, and in the
/// manifest's timings of a run.
#[test]
fn plugins_test_and_the_manifest_report_the_plugins_peak_memory_under_its_limit() {
    let p = Platform::new(0.05, 5);
    let job = p.job("any", "", "[[resource]]\nname = \"users\"\n\n[limits]\nmemory = \"48MiB\"");
    let wasm = plugin("ferry-example-monthly-activity");
    let out = plugins_test(&wasm, Some(&job), &[]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    let line = text.lines().find(|l| l.starts_with("memory ")).unwrap_or_else(|| panic!("no memory line in:\n{text}"));
    let (peak, rest) = line["memory ".len()..].split_once(" peak linear memory of the plugin (limit ").unwrap();
    assert_eq!(rest, "48.00 MiB per memory)", "{line}");
    let peak = human_bytes(peak);
    assert!(peak > 0 && peak < 48 << 20, "{line}");

    let job = p.job("mem", "format = \"jsonl\"", &format!("[[resource]]\nname = \"monthly_activity\"\nplugin = \"{}\"", wasm.display()));
    let out = crate::common::run(&job);
    assert!(out.status.success(), "{}", stderr(&out));
    let snap = &crate::common::snapshots(&p.dir.path().join("out"))[0];
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(snap.join("manifest.json")).unwrap()).unwrap();
    let bytes = manifest["resources"][0]["timings"]["plugin_memory_bytes"].as_u64().unwrap();
    // The same plugin on the same rows: the same growth (the report rounds to 0.01 MiB).
    assert!(bytes.abs_diff(peak) < 64 << 10, "manifest {bytes} bytes, report {line}");
}

/// `ferry plugins new`, then the project's own `cargo test` (the kit's mock host), its
/// wasm build and `ferry run job.toml` against the demo platform; the totals are checked
/// against SQL on the generated source, and `ferry plugins test` passes the component.
#[test]
fn a_scaffolded_plugin_builds_tests_and_exports_the_demo_platform() {
    let dir = tempfile::tempdir().unwrap();
    let files = ["Cargo.toml", "src/lib.rs", "job.toml", "README.md", ".gitignore"];
    let project = scaffold(dir.path(), "balances", "rust", &files, "cargo build --target wasm32-wasip2 --release");
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

    export_and_check_totals(&project, "balances");
    assert_plugins_test_passes(&wasm);
}

/// componentize-py: `$FERRY_COMPONENTIZE_PY`, else `target/componentize` (tests/run.sh
/// installs it there). Missing fails the test, as a missing fastavro does.
fn componentize_py() -> std::path::PathBuf {
    let path = std::env::var_os("FERRY_COMPONENTIZE_PY")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/componentize/bin/componentize-py"));
    assert!(path.is_file(), "componentize-py is missing at {}: run tests/run.sh, or install tests/py/componentize.txt", path.display());
    path
}

/// The Python example built into a component, cached by the sha256 of its source, the
/// WIT and componentize-py's version (a build takes tens of seconds; the component is
/// ~18 MB).
fn python_plugin() -> std::path::PathBuf {
    use sha2::{Digest, Sha256};
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tool = componentize_py();
    let version = Command::new(&tool).arg("--version").output().unwrap();
    let mut h = Sha256::new();
    h.update(&version.stdout);
    for file in ["examples/plugin-python-monthly/app.py", "examples/plugin-python-monthly/wit/computing.wit", "wit/ferry.wit"] {
        h.update(std::fs::read(root.join(file)).unwrap());
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("py-components");
    let wasm = dir.join(format!("monthly_activity-{}.wasm", &hex::encode(h.finalize())[..16]));
    if !wasm.is_file() {
        std::fs::create_dir_all(&dir).unwrap();
        let partial = wasm.with_extension(format!("{}.partial", std::process::id()));
        // The contract with the example's blob-free world appended (same package).
        let wit = dir.join(format!("wit-{}", std::process::id()));
        std::fs::create_dir_all(&wit).unwrap();
        let mut text = std::fs::read_to_string(root.join("wit/ferry.wit")).unwrap();
        text += &std::fs::read_to_string(root.join("examples/plugin-python-monthly/wit/computing.wit")).unwrap();
        std::fs::write(wit.join("ferry.wit"), text).unwrap();
        let out = Command::new(&tool)
            .arg("-d")
            .arg(&wit)
            .args(["-w", "computing-plugin", "componentize", "app", "-p", "examples/plugin-python-monthly", "-o"])
            .arg(&partial)
            .current_dir(root)
            .output()
            .unwrap();
        assert!(out.status.success(), "componentize-py failed:\n{}{}", stdout(&out), stderr(&out));
        std::fs::rename(&partial, &wasm).unwrap();
        std::fs::remove_dir_all(&wit).unwrap();
    }
    wasm
}

/// Runs the `monthly_activity` plugin `wasm` on platform `p` into `out_dir` (under the
/// platform's directory) and returns its records as `account month n debits credits`.
fn monthly(p: &Platform, wasm: &Path, out_dir: &str) -> Vec<String> {
    let job = p.job(
        out_dir,
        "format = \"jsonl\"\ngzip = false",
        &format!("[[resource]]\nname = \"monthly_activity\"\nplugin = \"{}\"", wasm.display()),
    );
    let text = std::fs::read_to_string(&job).unwrap().replace("dir = \"out\"", &format!("dir = \"{out_dir}\""));
    std::fs::write(&job, text).unwrap();
    let out = crate::common::run(&job);
    assert!(out.status.success(), "{}", stderr(&out));
    let snap = &crate::common::snapshots(&p.dir.path().join(out_dir))[0];
    let file = snap.join("monthly_activity.jsonl");
    assert!(file.is_file(), "no monthly_activity.jsonl in {}", snap.display());
    let mut got = Vec::new();
    for line in std::fs::read_to_string(file).unwrap().lines() {
        let r: serde_json::Value = serde_json::from_str(line).unwrap();
        got.push(format!("{} {} {} {} {}", r["account_guid"], r["month"], r["transactions"], r["debits"], r["credits"]).replace('"', ""));
    }
    got
}

/// `monthly_activity` computed from the source with exact cents, the same shape.
fn monthly_from_sql(db: &Path) -> Vec<String> {
    let db = rusqlite::Connection::open(db).unwrap();
    // The window "all" still ends at the snapshot's as_of.
    let as_of = chrono::DateTime::parse_from_rfc3339("2026-03-31T14:30:22Z").unwrap().timestamp_micros();
    let mut q = db
        .prepare(
            "SELECT account_guid, strftime('%Y-%m', transacted_at / 1000000, 'unixepoch'), type, amount FROM transactions \
             WHERE transacted_at < ?1",
        )
        .unwrap();
    let mut want: BTreeMap<(String, String), (i64, i128, i128)> = BTreeMap::new();
    let rows =
        q.query_map([as_of], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?)));
    for row in rows.unwrap() {
        let (account, month, kind, amount) = row.unwrap();
        let w = want.entry((account, month)).or_default();
        let cents = ferry_wire::decimal::parse(amount.as_bytes(), 38, 2).unwrap();
        w.0 += 1;
        if kind == "CREDIT" { w.2 += cents } else { w.1 += cents }
    }
    let text = |c| ferry_wire::decimal::to_text(c, 2);
    want.into_iter().map(|((a, m), (n, d, c))| format!("{a} {m} {n} {} {}", text(d), text(c))).collect()
}

fn assert_same(got: &[String], want: &[String], what: &str) {
    assert!(want.len() > 100, "{}", want.len());
    if let Some(i) = (0..got.len().max(want.len())).find(|&i| got.get(i) != want.get(i)) {
        panic!("{what}: {} records, {} expected; first difference at {i}: {:?} vs {:?}", got.len(), want.len(), got.get(i), want.get(i));
    }
}

/// A plugin in Python, built by the test, exports through ferry like any component; its
/// records are the totals computed here from the SQLite source, and its Rust twin's
/// (`examples/plugin-monthly-activity`, the benchmark's other half).
#[test]
fn a_python_plugin_computes_monthly_activity_that_matches_sql() {
    let p = Platform::new(0.05, 21);
    let want = monthly_from_sql(&p.db());
    assert_same(&monthly(&p, &python_plugin(), "out-py"), &want, "python");
    assert_same(&monthly(&p, &plugin("ferry-example-monthly-activity"), "out-rust"), &want, "rust");
}

/// The JavaScript example's `node_modules` (componentize-js): `$FERRY_JS_MODULES`, else
/// `target/js` (tests/run.sh installs it there). Missing fails the test.
fn js_modules() -> std::path::PathBuf {
    let dir = std::env::var_os("FERRY_JS_MODULES")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/js"));
    assert!(
        dir.join("node_modules/@bytecodealliance/componentize-js/package.json").is_file(),
        "componentize-js is missing under {}: run tests/run.sh, or npm install --ignore-scripts there from examples/plugin-js-monthly/package.json",
        dir.display()
    );
    dir
}

/// The JavaScript example built into a component, cached by the sha256 of its sources, the
/// WIT and componentize-js's package.json (a build takes ~45 s; the component is ~12 MB).
fn js_plugin() -> std::path::PathBuf {
    use sha2::{Digest, Sha256};
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let modules = js_modules();
    let example = root.join("examples/plugin-js-monthly");
    let mut h = Sha256::new();
    h.update(std::fs::read(modules.join("node_modules/@bytecodealliance/componentize-js/package.json")).unwrap());
    for file in [
        "examples/plugin-js-monthly/app.js",
        "examples/plugin-js-monthly/build.mjs",
        "examples/plugin-python-monthly/wit/computing.wit",
        "wit/ferry.wit",
    ] {
        h.update(std::fs::read(root.join(file)).unwrap());
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("js-components");
    let wasm = dir.join(format!("monthly_activity-{}.wasm", &hex::encode(h.finalize())[..16]));
    if !wasm.is_file() {
        let work = dir.join(format!("build-{}", std::process::id()));
        std::fs::create_dir_all(&work).unwrap();
        // The script resolves componentize-js from where it sits: beside node_modules.
        let script = modules.join(format!("build-{}.mjs", std::process::id()));
        std::fs::copy(example.join("build.mjs"), &script).unwrap();
        let out =
            Command::new("node").arg(&script).arg(work.join("monthly_activity.wasm")).env("FERRY_JS_EXAMPLE", &example).output().unwrap();
        std::fs::remove_file(&script).unwrap();
        assert!(out.status.success(), "componentize-js failed:\n{}{}", stdout(&out), stderr(&out));
        std::fs::rename(work.join("monthly_activity.wasm"), &wasm).unwrap();
        std::fs::remove_dir_all(&work).unwrap();
    }
    wasm
}

/// The same resource in JavaScript (componentize-js), built by the test, checked against SQL.
#[test]
fn a_javascript_plugin_computes_monthly_activity_that_matches_sql() {
    let p = Platform::new(0.05, 22);
    assert_same(&monthly(&p, &js_plugin(), "out-js"), &monthly_from_sql(&p.db()), "javascript");
}

/// Runs a scaffolded project's `job.toml` (the demo platform, generated under the project)
/// and checks its records, per currency `(accounts, balance)`, against SQL on the source.
fn export_and_check_totals(project: &Path, name: &str) {
    let out = ferry().arg("run").arg(project.join("job.toml")).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let snap = std::fs::read_dir(project.join("out")).unwrap().flatten().map(|e| e.path()).find(|p| p.is_dir()).unwrap();
    let mut got = BTreeMap::new();
    for line in std::fs::read_to_string(snap.join(format!("{name}.jsonl"))).unwrap().lines() {
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
    assert!(want.values().map(|w| w.0).sum::<i64>() > 100, "{want:?}");
    assert_eq!(got, want);
}

/// `ferry plugins test` passes a component and reports its own memory.
fn assert_plugins_test_passes(wasm: &Path) {
    let out = plugins_test(wasm, None, &["--scale", "0.02"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    assert!(text.contains("peak linear memory of the plugin") && text.trim_end().ends_with("PASS"), "{text}");
}

/// `ferry plugins new NAME --lang LANG` into a fresh directory; checks its files and the
/// next steps it prints.
fn scaffold(dir: &Path, name: &str, lang: &str, files: &[&str], build: &str) -> std::path::PathBuf {
    let project = dir.join(name);
    let out = ferry().args(["plugins", "new", name, "--lang", lang, "--dir"]).arg(&project).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(build), "{}", stdout(&out));
    for file in files {
        assert!(project.join(file).is_file(), "{lang}: {file} was not written");
    }
    project
}

/// A scaffolded project's component at `project/wasm`, built by `build` unless a build of
/// the same sources with the same tool (`tool_id`) is cached under `kind` (these builds
/// take tens of seconds; the components are 12 to 20 MB).
fn cached_build(kind: &str, project: &Path, sources: &[&str], tool_id: &[u8], wasm: &str, build: impl FnOnce()) {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(tool_id);
    for file in sources {
        h.update(file.as_bytes());
        h.update(std::fs::read(project.join(file)).unwrap());
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(kind);
    let cached = dir.join(format!("scaffold-{}.wasm", &hex::encode(h.finalize())[..16]));
    let built = project.join(wasm);
    if cached.is_file() {
        std::fs::create_dir_all(built.parent().unwrap()).unwrap();
        std::fs::copy(&cached, &built).unwrap();
        return;
    }
    build();
    assert!(built.is_file(), "the build wrote no {}", built.display());
    std::fs::create_dir_all(&dir).unwrap();
    let partial = cached.with_extension(format!("{}.partial", std::process::id()));
    std::fs::copy(&built, &partial).unwrap();
    std::fs::rename(&partial, &cached).unwrap();
}

/// `ferry plugins new --lang python`: the project's own `build.py` names componentize-py
/// and how to install it when it is missing, then builds the component with it; the
/// export of the demo platform matches SQL and `ferry plugins test` passes it.
#[test]
fn a_scaffolded_python_plugin_builds_and_exports_the_demo_platform() {
    let dir = tempfile::tempdir().unwrap();
    let files = ["app.py", "build.py", "wit/ferry.wit", "job.toml", "README.md", ".gitignore"];
    let project = scaffold(dir.path(), "balances-py", "python", &files, "python3 build.py");
    let python = |tool: &Path| Command::new("python3").arg("build.py").env("COMPONENTIZE_PY", tool).current_dir(&project).output().unwrap();

    let out = python(&dir.path().join("no-such-componentize-py"));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stderr(&out);
    assert!(text.contains("componentize-py not found") && text.contains("pip install componentize-py==0.25.1"), "{text}");

    // `ferry plugins new` names the build tool when PATH lacks it.
    let bare = dir.path().join("bare-path");
    std::fs::create_dir(&bare).unwrap();
    let out = ferry()
        .args(["plugins", "new", "other", "--lang", "py", "--dir"])
        .arg(dir.path().join("other"))
        .env("PATH", &bare)
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(text.contains("note: componentize-py is not on PATH") && text.contains("pip install componentize-py==0.25.1"), "{text}");

    let tool = componentize_py();
    let version = Command::new(&tool).arg("--version").output().unwrap().stdout;
    cached_build("py-components", &project, &files[..3], &version, "build/balances_py.wasm", || {
        let out = python(&tool);
        assert!(out.status.success(), "build.py failed:\n{}{}", stdout(&out), stderr(&out));
    });
    export_and_check_totals(&project, "balances-py");
    assert_plugins_test_passes(&project.join("build/balances_py.wasm"));
}

/// `ferry plugins new --lang js`: `node build.mjs` names componentize-js and how to
/// install it when `node_modules` lacks it, then builds with the one tests/run.sh
/// installs; the export of the demo platform matches SQL and `ferry plugins test` passes.
#[test]
fn a_scaffolded_javascript_plugin_builds_and_exports_the_demo_platform() {
    let dir = tempfile::tempdir().unwrap();
    let files = ["app.js", "build.mjs", "package.json", "wit/ferry.wit", "job.toml", "README.md", ".gitignore"];
    let project = scaffold(dir.path(), "balances-js", "js", &files, "npm run build");
    let package: serde_json::Value = serde_json::from_slice(&std::fs::read(project.join("package.json")).unwrap()).unwrap();
    assert_eq!(package["devDependencies"]["@bytecodealliance/componentize-js"], "0.23.0");
    let node = || Command::new("node").arg("build.mjs").current_dir(&project).output().unwrap();

    let out = node();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stderr(&out);
    assert!(text.contains("componentize-js not found") && text.contains("npm install --ignore-scripts"), "{text}");

    let modules = js_modules();
    let tool = std::fs::read(modules.join("node_modules/@bytecodealliance/componentize-js/package.json")).unwrap();
    cached_build("js-components", &project, &files[..4], &tool, "build/balances_js.wasm", || {
        // What `npm install --ignore-scripts` would put there, offline.
        std::os::unix::fs::symlink(modules.join("node_modules"), project.join("node_modules")).unwrap();
        let out = node();
        assert!(out.status.success(), "build.mjs failed:\n{}{}", stdout(&out), stderr(&out));
    });
    export_and_check_totals(&project, "balances-js");
    assert_plugins_test_passes(&project.join("build/balances_js.wasm"));
}
