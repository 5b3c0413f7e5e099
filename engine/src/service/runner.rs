//! The run queue: requests run in request order, at most `max_concurrent_runs` at once,
//! each as a `ferry run --progress json` child process, so a crash, a memory cap or a
//! kill of a run never takes the server down.
//!
//! One thread owns the queue and the children. Each child is started with
//! `PR_SET_PDEATHSIG = SIGKILL`, so it dies with the server (even a SIGKILLed one; the
//! signal follows the death of the thread that started it, and this thread lives as long
//! as the server). The next server start then settles such runs `failed` through the
//! catalog (their process is gone), and runs the requests still queued.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read as _};
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::catalog::{Catalog, CatalogError, RequestRecord, RequestState};
use crate::package::ProcessId;

/// How often a run's progress is written to the catalog.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);
/// The end of a run's stderr kept for its error (the last plain-text lines).
const TAIL_BYTES: usize = 4096;

enum Msg {
    Wake,
    Line { id: String, line: String },
    Exited { id: String, tail: String },
}

/// The handle handlers use to tell the queue a request arrived.
#[derive(Clone)]
pub struct Runner {
    tx: mpsc::Sender<Msg>,
}

impl Runner {
    pub fn wake(&self) {
        let _ = self.tx.send(Msg::Wake);
    }
}

struct Running {
    child: Child,
    job_file: PathBuf,
    resources: serde_json::Map<String, Value>,
    last_write: Instant,
}

/// Told the id of every request whose run is over (its notifications go out).
pub type Finished = tokio::sync::mpsc::UnboundedSender<String>;

/// Settles what a previous server left, then starts the queue's thread.
pub fn start(root: PathBuf, max_concurrent: usize, exe: PathBuf, finished: Finished) -> Result<Runner, CatalogError> {
    let mut catalog = Catalog::open(&root)?;
    recover(&mut catalog, &finished)?;
    let (tx, rx) = mpsc::channel();
    let runner = Runner { tx: tx.clone() };
    std::thread::Builder::new()
        .name("ferry-runs".into())
        .spawn(move || Queue { catalog, rx, tx, max_concurrent, exe, running: HashMap::new(), finished }.run())
        .map_err(|e| CatalogError::Remove { path: root, source: e })?;
    Ok(runner)
}

/// Runs a previous server was running when it stopped: their children were killed with
/// it (or are killed now, if one outlived it), their snapshots settled `failed` by the
/// catalog, and their requests finished.
fn recover(catalog: &mut Catalog, finished: &Finished) -> Result<(), CatalogError> {
    let orphans = catalog.requests_in(RequestState::Running)?;
    for r in &orphans {
        if let Some(pid) = r.pid {
            stop_orphan(ProcessId { pid, start: r.pid_start });
        }
    }
    catalog.reconcile()?;
    for r in orphans {
        let error = r.snapshot_id.is_none().then_some("the server stopped before the run recorded its snapshot; request it again");
        catalog.request_finished(&r.id, error)?;
        let _ = finished.send(r.id.clone());
        tracing::warn!(request = %r.id, snapshot = ?r.snapshot_id, "run stopped with the previous server; settled");
    }
    Ok(())
}

/// Waits for a previous server's child to die of its parent-death signal; kills it if
/// it outlived its server (same pid and start time: the same process).
fn stop_orphan(process: ProcessId) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while process.is_alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if process.is_alive() {
        // SAFETY: kill(2) with a pid checked above to be the run this service started.
        unsafe { libc::kill(process.pid as i32, libc::SIGKILL) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while process.is_alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

struct Queue {
    catalog: Catalog,
    rx: mpsc::Receiver<Msg>,
    tx: mpsc::Sender<Msg>,
    max_concurrent: usize,
    exe: PathBuf,
    running: HashMap<String, Running>,
    finished: Finished,
}

impl Queue {
    fn run(mut self) {
        loop {
            if let Err(e) = self.fill() {
                tracing::error!(error = %e, "cannot start queued runs");
            }
            let msg = match self.rx.recv_timeout(Duration::from_secs(1)) {
                Ok(m) => m,
                Err(mpsc::RecvTimeoutError::Timeout) => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            };
            let result = match msg {
                Msg::Wake => Ok(()),
                Msg::Line { id, line } => self.progress(&id, &line),
                Msg::Exited { id, tail } => self.exited(&id, &tail),
            };
            if let Err(e) = result {
                tracing::error!(error = %e, "catalog update failed");
            }
        }
    }

    /// Starts queued requests, oldest first, while slots are free.
    fn fill(&mut self) -> Result<(), CatalogError> {
        if self.running.len() >= self.max_concurrent {
            return Ok(());
        }
        let queued = self.catalog.requests_in(RequestState::Queued)?;
        for r in queued.into_iter().take(self.max_concurrent - self.running.len()) {
            if !self.catalog.claim_request(&r.id)? {
                continue;
            }
            match self.spawn(&r) {
                Ok(child) => {
                    let pid = child.id();
                    self.catalog.request_pid(&r.id, pid, ProcessId::of(pid).start)?;
                    tracing::info!(request = %r.id, job = %r.job, pid, "run started");
                    self.running.insert(
                        r.id.clone(),
                        Running { child, job_file: r.job_file.clone().into(), resources: Default::default(), last_write: Instant::now() },
                    );
                }
                Err(e) => {
                    tracing::error!(request = %r.id, error = %e, "cannot start the run");
                    self.catalog.request_finished(&r.id, Some(&format!("cannot start `ferry run`: {e}")))?;
                    let _ = self.finished.send(r.id.clone());
                }
            }
        }
        Ok(())
    }

    fn spawn(&self, r: &RequestRecord) -> std::io::Result<Child> {
        let mut cmd = Command::new(&self.exe);
        cmd.arg("run").arg(&r.job_file).args(["--progress", "json"]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        let parent = std::process::id();
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The server died between fork and prctl: the signal will never come.
                if libc::getppid() as u32 != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn()?;
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, id) = (self.tx.clone(), r.id.clone());
        std::thread::Builder::new().name("ferry-run-log".into()).spawn(move || read_stderr(stderr, id, &tx))?;
        Ok(child)
    }

    fn progress(&mut self, id: &str, line: &str) -> Result<(), CatalogError> {
        let Some(run) = self.running.get_mut(id) else { return Ok(()) };
        let Ok(event) = serde_json::from_str::<Value>(line) else { return Ok(()) };
        let (Some(kind), Some(resource)) = (event["event"].as_str(), event["resource"].as_str()) else { return Ok(()) };
        let entry = run.resources.entry(resource.to_string()).or_insert_with(|| json!({"state": "running", "records": 0, "bytes": 0}));
        match kind {
            "start" => entry["expected"] = event["expected"].clone(),
            "progress" => {
                for key in ["records", "bytes", "expected", "records_per_second", "eta_seconds"] {
                    entry[key] = event[key].clone();
                }
            }
            "done" => {
                entry["state"] = "done".into();
                entry["records"] = event["records"].clone();
                entry["bytes"] = event["bytes"].clone();
                entry["eta_seconds"] = 0.into();
            }
            "failed" => entry["state"] = "failed".into(),
            _ => return Ok(()),
        }
        let finished = kind == "done" || kind == "failed";
        if run.last_write.elapsed() >= PROGRESS_EVERY || finished {
            run.last_write = Instant::now();
            let summary = summarize(&run.resources);
            self.catalog.request_progress(id, &summary)?;
        }
        Ok(())
    }

    fn exited(&mut self, id: &str, tail: &str) -> Result<(), CatalogError> {
        let Some(mut run) = self.running.remove(id) else { return Ok(()) };
        let status = run.child.wait();
        if !run.resources.is_empty() {
            self.catalog.request_progress(id, &summarize(&run.resources))?;
        }
        // A run killed from outside (memory, OOM killer, kill -9) left its snapshot
        // pending or in progress: the catalog settles it now its process is gone.
        self.catalog.reconcile()?;
        let request = self.catalog.request(id)?;
        let error = match (&request, &status) {
            (Some(r), _) if r.snapshot_id.is_some() => None,
            (_, Ok(s)) => {
                Some(format!("{} ({s})", if tail.trim().is_empty() { "the run failed before recording its snapshot" } else { tail.trim() }))
            }
            (_, Err(e)) => Some(format!("the run's exit was lost: {e}")),
        };
        self.catalog.request_finished(id, error.as_deref())?;
        let _ = self.finished.send(id.to_string());
        // The derived job may hold the job's S3 keys: kept no longer than the run.
        let _ = std::fs::remove_file(&run.job_file);
        tracing::info!(request = %id, status = ?status.ok(), snapshot = ?request.and_then(|r| r.snapshot_id), "run finished");
        Ok(())
    }
}

/// The run's progress as the API shows it: per resource, and in total.
fn summarize(resources: &serde_json::Map<String, Value>) -> Value {
    let sum = |key: &str| resources.values().filter_map(|r| r[key].as_u64()).sum::<u64>();
    let expected: Option<u64> = resources.values().map(|r| r["expected"].as_u64()).sum();
    let eta = resources
        .values()
        .filter(|r| r["state"] == "running")
        .filter_map(|r| r["eta_seconds"].as_f64())
        .fold(None, |m: Option<f64>, e| Some(m.map_or(e, |m| m.max(e))));
    json!({"records": sum("records"), "bytes": sum("bytes"), "expected_records": expected, "eta_seconds": eta, "resources": resources})
}

/// Forwards a run's stderr lines; at the end, says it exited with the last plain lines
/// (the run's error report) as its tail.
fn read_stderr(stderr: std::process::ChildStderr, id: String, tx: &mpsc::Sender<Msg>) {
    let mut reader = BufReader::new(stderr);
    let mut tail = String::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        // Bounded: a line longer than this is cut (progress lines are far shorter).
        match reader.by_ref().take(64 * 1024).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line).trim_end().to_string();
        if text.starts_with('{') {
            let _ = tx.send(Msg::Line { id: id.clone(), line: text });
        } else if !text.is_empty() {
            tail.push_str(&text);
            tail.push('\n');
            if tail.len() > TAIL_BYTES {
                let cut = tail.len() - TAIL_BYTES;
                let cut = (cut..tail.len()).find(|&i| tail.is_char_boundary(i)).unwrap_or(tail.len());
                tail.drain(..cut);
            }
        }
    }
    let _ = tx.send(Msg::Exited { id, tail });
}
