//! `ferry plugins test PLUGIN.wasm [--job JOB]`: runs one plugin the way a job would,
//! against the demo platform (or a job's source), and reports what a reviewer wants:
//! its describe output, the grants it asks, checks of its declaration, the records it
//! exported (validated against its schema by the host, the first few shown), time and
//! memory, and the first record that does not fit. The exit status says whether all
//! passed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use ferry::job::Job;
use ferry::run::{RunOptions, run};
use ferry::runtime::{self, Events, Level, Origin, Runtime};

/// Why the test could not start (a failing plugin is a report, not one of these).
#[derive(Debug, thiserror::Error)]
pub enum PluginTestError {
    #[error("option {0:?} is not KEY=VALUE; write it like `--option mode=fast`")]
    Option(String),
    #[error("job {} has no [source] table; give a job file with one, or leave out --job for the demo platform", .0.display())]
    NoSource(PathBuf),
}

pub struct TestArgs {
    pub wasm: PathBuf,
    pub job: Option<PathBuf>,
    pub options: Vec<String>,
    /// Scale of the demo platform when no job is given.
    pub scale: f64,
}

/// Log lines from the plugin, kept for the report.
#[derive(Default)]
struct Logs(std::sync::Mutex<Vec<String>>);

impl Events for Logs {
    fn log(&self, _resource: &str, level: Level, message: &str) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(format!("{}: {message}", format!("{level:?}").to_lowercase()));
    }

    fn progress(&self, _resource: &str, _done: u64, _total: Option<u64>) {}
}

/// Runs the test and prints the report; `Ok(false)` when a check failed.
pub fn main(args: TestArgs) -> Result<bool> {
    let wasm = std::fs::canonicalize(&args.wasm).with_context(|| format!("cannot read plugin {}", args.wasm.display()))?;
    let bytes = std::fs::read(&wasm).with_context(|| format!("cannot read plugin {}", wasm.display()))?;
    let runtime = Runtime::new(runtime::default_cache_dir()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let plugin = runtime.load(Origin::Path(wasm.clone()), &bytes)?;
    let info = &plugin.info;
    let mut ok = true;

    println!("plugin     {}", wasm.display());
    println!("sha256     {}", plugin.sha256);
    println!("describe   {} {} ({:?}): {}", info.name, info.version, plugin.contract, info.description);
    println!("main table {}", info.main_table);
    println!("key        {}", info.key.as_deref().unwrap_or("-"));
    println!("window     {}", info.window_column.as_deref().unwrap_or("-"));
    println!("created    {}", info.created_column.as_deref().unwrap_or("- (exported whole, whenever rows were created)"));
    let schema: serde_json::Value = serde_json::from_str(&info.schema)?;
    let fields: Vec<(String, String)> = schema["fields"]
        .as_array()
        .map(|a| a.iter().map(|f| (f["name"].as_str().unwrap_or("?").to_string(), f["type"].to_string())).collect())
        .unwrap_or_default();
    println!("fields     {}", fields.len());
    for (name, ty) in &fields {
        let from = info.copied.iter().find(|c| &c.field == name).map(|c| format!(" <- column {}", c.column)).unwrap_or_default();
        println!("  {name}: {ty}{from}");
    }
    println!("grants     (tables and columns it may read)");
    for g in &info.tables {
        println!("  {}: {}", g.table, g.columns.join(", "));
    }

    println!("checks");
    for (passed, what) in declaration_checks(info, &fields) {
        ok &= passed;
        println!("  {} {what}", if passed { "ok  " } else { "FAIL" });
    }

    let dir = tempfile::tempdir()?;
    let job_path = write_job(&args, info.name.as_str(), &wasm, dir.path())?;
    let job = Job::load(&job_path)?;
    let logs = Arc::new(Logs::default());
    let options = RunOptions {
        events: logs.clone(),
        progress: None,
        cache_dir: runtime::default_cache_dir(),
        parallelism: 1,
        started: Instant::now(),
        shard: None,
    };
    let started = Instant::now();
    let result = run(&job, &options);
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "export     against {}",
        args.job.as_ref().map_or_else(|| format!("the demo platform (scale {})", args.scale), |j| j.display().to_string())
    );
    for line in logs.0.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        println!("  log {}", super::printable(line));
    }
    match result {
        Ok(report) => {
            let r = &report.manifest.resources[0];
            if let Some(e) = &r.error {
                ok = false;
                println!("  FAIL export failed ({}): {}", e.kind, super::printable(&e.message));
            } else {
                println!("  ok   {} records, every one valid against the schema (checked by the host)", r.records);
                let first = r.files.first().map(|f| report.snapshot_dir.join(&f.path));
                if let Some(text) = first.and_then(|p| std::fs::read_to_string(p).ok()) {
                    for line in text.lines().take(3) {
                        println!("  record {}", super::printable(line));
                    }
                }
                print_costs(seconds, &r.timings, job.resources.first().map(|r| r.limits));
            }
        }
        Err(e) => {
            ok = false;
            let text = e.to_string();
            println!("  FAIL {}", super::printable(&text));
            if text.contains("denied") {
                println!("       the plugin read a table or column it did not declare: add it to describe (`.reads`), or stop reading it");
            }
            if text.contains("schema") || text.contains("bad data") {
                println!("       a record does not fit the schema: the message names the record and field");
            }
            println!("  time {seconds:.2}s");
        }
    }
    if let Some(peak) = peak_rss() {
        println!("process    {} peak resident (this process: host, compiled code and plugin)", super::size(peak));
    }
    println!("{}", if ok { "PASS" } else { "FAIL" });
    Ok(ok)
}

/// Time, the plugin's own memory and the limits it ran under.
fn print_costs(seconds: f64, t: &ferry::package::StageTimes, limits: Option<runtime::Limits>) {
    let limits = limits.unwrap_or_default();
    println!(
        "  time {seconds:.2}s (in the plugin {:.2}s; the host reading the source {:.2}s, validating {:.2}s; limit {}s)",
        t.plugin_seconds,
        t.source_wait_seconds,
        t.validate_seconds,
        limits.time.as_secs()
    );
    let cap = super::size(limits.memory_bytes);
    match t.plugin_memory_bytes {
        Some(peak) => println!("memory     {} peak linear memory of the plugin (limit {cap} per memory)", super::size(peak)),
        None => println!("memory     - (not measured; limit {cap} per memory)"),
    }
    println!("fuel       not metered: the time limit is enforced by epoch interruption");
}

/// Checks of the declaration alone: the names it uses exist where they must.
fn declaration_checks(info: &runtime::ResourceInfo, fields: &[(String, String)]) -> Vec<(bool, String)> {
    let field = |n: &str| fields.iter().any(|(f, _)| f == n);
    let main: Vec<&String> = info.tables.iter().filter(|g| g.table == info.main_table).flat_map(|g| &g.columns).collect();
    let mut checks = vec![(!fields.is_empty(), "the schema has fields".to_string())];
    if let Some(k) = &info.key {
        checks.push((field(k), format!("key `{k}` is a field")));
    }
    for r in &info.references {
        checks.push((field(&r.field), format!("reference field `{}` (to {}.{}) is a field", r.field, r.resource, r.key)));
    }
    for c in &info.copied {
        checks.push((
            field(&c.field) && main.contains(&&c.column),
            format!("copied field `{}` is a field and its column `{}` is granted on `{}`", c.field, c.column, info.main_table),
        ));
    }
    for (what, col) in [("window", &info.window_column), ("created", &info.created_column)] {
        if let Some(c) = col {
            checks.push((main.contains(&c), format!("{what} column `{c}` is granted on `{}`", info.main_table)));
        }
    }
    checks
}

/// A job exporting only this plugin, into `dir`, from the demo platform or `--job`'s source.
fn write_job(args: &TestArgs, name: &str, wasm: &Path, dir: &Path) -> Result<PathBuf> {
    let mut job = toml::Table::new();
    match &args.job {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read job {}", path.display()))?;
            let mut given: toml::Table = text.parse().with_context(|| format!("job {} is not TOML", path.display()))?;
            let base = std::fs::canonicalize(path)?.parent().map(Path::to_path_buf).unwrap_or_default();
            let mut source =
                given.remove("source").and_then(|s| s.as_table().cloned()).ok_or_else(|| PluginTestError::NoSource(path.clone()))?;
            for key in ["sqlite", "blobs"] {
                if let Some(toml::Value::String(p)) = source.get(key).cloned()
                    && !p.contains("://")
                {
                    source.insert(key.into(), base.join(p).display().to_string().into());
                }
            }
            job.insert("source".into(), source.into());
            if let Some(limits) = given.remove("limits") {
                job.insert("limits".into(), limits);
            }
            if let Some(s) = given.remove("snapshot") {
                job.insert("snapshot".into(), s);
            }
        }
        None => {
            let demo = runtime::default_cache_dir().unwrap_or_else(std::env::temp_dir).join(format!("plugins-test-demo-{}", args.scale));
            let mut source = toml::Table::new();
            source.insert("sqlite".into(), demo.join("platform.db").display().to_string().into());
            source.insert("blobs".into(), demo.join("blobs").display().to_string().into());
            let mut spec = toml::Table::new();
            spec.insert("seed".into(), 42.into());
            spec.insert("scale".into(), args.scale.into());
            source.insert("demo".into(), spec.into());
            job.insert("source".into(), source.into());
        }
    }
    let snapshot = job.entry("snapshot").or_insert_with(|| toml::Table::new().into());
    if let Some(s) = snapshot.as_table_mut() {
        s.insert("name".into(), "plugins-test".into());
        s.entry("as_of").or_insert_with(|| "2026-03-31T14:30:22Z".into());
        s.remove("description");
    }
    let mut output = toml::Table::new();
    output.insert("dir".into(), dir.join("out").display().to_string().into());
    output.insert("format".into(), "jsonl".into());
    output.insert("gzip".into(), false.into());
    output.insert("archive".into(), "none".into());
    job.insert("output".into(), output.into());
    let mut resource = toml::Table::new();
    resource.insert("name".into(), name.into());
    resource.insert("plugin".into(), wasm.display().to_string().into());
    let mut options = toml::Table::new();
    for o in &args.options {
        let (k, v) = o.split_once('=').ok_or_else(|| PluginTestError::Option(o.clone()))?;
        options.insert(k.into(), v.into());
    }
    if !options.is_empty() {
        resource.insert("options".into(), options.into());
    }
    job.insert("resource".into(), toml::Value::Array(vec![resource.into()]));
    let path = dir.join("job.toml");
    std::fs::write(&path, toml::to_string(&job)?)?;
    Ok(path)
}

/// This process's peak resident memory (Linux `VmHWM`), if known.
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?.trim().strip_suffix("kB")?.trim().parse::<u64>().ok()?;
    Some(kb * 1024)
}
