//! Showing a run's progress: bars on a terminal (indicatif), plain lines otherwise, or
//! JSON lines for machines. Everything goes to stderr; stdout keeps the run's result.

use std::collections::HashMap;
use std::io::IsTerminal as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, HumanCount, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use ferry::progress::Progress;
use ferry::runtime::{Events, Level};

/// How `ferry run` shows progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Bars when stderr is a terminal, plain lines otherwise.
    Auto,
    Bars,
    Plain,
    /// One JSON object per line on stderr (logs too).
    Json,
    /// Only warnings and errors.
    None,
}

/// Plain lines are printed at most this often per resource.
const PLAIN_EVERY: Duration = Duration::from_secs(2);
/// JSON progress events are sent at most this often per resource.
const JSON_EVERY: Duration = Duration::from_millis(250);

struct Resource {
    bar: Option<ProgressBar>,
    expected: Option<u64>,
    started: Instant,
    last: Instant,
}

pub struct Display {
    mode: Mode,
    verbose: bool,
    multi: Option<MultiProgress>,
    resources: Mutex<HashMap<String, Resource>>,
    last_plugin_report: Mutex<Instant>,
}

impl Display {
    pub fn new(mode: Mode, verbose: bool) -> Display {
        let mode = match mode {
            Mode::Auto if std::io::stderr().is_terminal() => Mode::Bars,
            Mode::Auto => Mode::Plain,
            m => m,
        };
        let multi = (mode == Mode::Bars).then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10)));
        Display { mode, verbose, multi, resources: Mutex::new(HashMap::new()), last_plugin_report: Mutex::new(Instant::now()) }
    }

    /// A line for people, printed above the bars when there are bars.
    fn line(&self, text: &str) {
        match &self.multi {
            Some(m) => {
                let _ = m.println(text);
            }
            None => eprintln!("{text}"),
        }
    }

    fn json(&self, value: serde_json::Value) {
        eprintln!("{value}");
    }
}

fn rate(records: u64, since: Instant) -> f64 {
    records as f64 / since.elapsed().as_secs_f64().max(1e-3)
}

fn eta(expected: Option<u64>, records: u64, since: Instant) -> Option<f64> {
    let r = rate(records, since);
    expected.filter(|_| r > 0.0).map(|e| e.saturating_sub(records) as f64 / r)
}

impl Events for Display {
    fn log(&self, resource: &str, level: Level, message: &str) {
        let level_name = format!("{level:?}").to_lowercase();
        match self.mode {
            Mode::Json => self.json(json!({"event": "log", "resource": resource, "level": level_name, "message": message})),
            Mode::None if level < Level::Warn => {}
            _ if level >= Level::Info || self.verbose => self.line(&format!("[{resource}] {level_name}: {message}")),
            _ => {}
        }
    }

    /// The plugin's own reports: the host counts records itself, so these only show
    /// with `--verbose`.
    fn progress(&self, resource: &str, done: u64, total: Option<u64>) {
        if !self.verbose {
            return;
        }
        let mut last = self.last_plugin_report.lock().unwrap();
        if last.elapsed() >= Duration::from_millis(500) {
            *last = Instant::now();
            match (self.mode, total) {
                (Mode::Json, _) => self.json(json!({"event": "plugin_progress", "resource": resource, "done": done, "total": total})),
                (_, Some(t)) => self.line(&format!("[{resource}] plugin reports {done}/{t} records")),
                (_, None) => self.line(&format!("[{resource}] plugin reports {done} records")),
            }
        }
    }
}

impl Progress for Display {
    fn started(&self, resource: &str, expected: Option<u64>) {
        let now = Instant::now();
        let bar = self.multi.as_ref().map(|m| {
            let bar = match expected {
                Some(n) => ProgressBar::new(n).with_style(
                    ProgressStyle::with_template(
                        "{prefix:>14.bold} [{bar:32.cyan/blue}] {human_pos:>9}/{human_len:<9} {msg} eta {eta:>3}",
                    )
                    .expect("a valid template")
                    .progress_chars("=> "),
                ),
                None => ProgressBar::new_spinner().with_style(
                    ProgressStyle::with_template("{prefix:>14.bold} {spinner} {human_pos:>9} records {msg}").expect("a valid template"),
                ),
            };
            let bar = m.add(bar);
            bar.set_prefix(resource.to_string());
            bar.set_message(format!("{:>10} {:>8} rec/s", HumanBytes(0).to_string(), 0));
            bar
        });
        match self.mode {
            Mode::Json => self.json(json!({"event": "start", "resource": resource, "expected": expected})),
            Mode::Plain => match expected {
                Some(n) => self.line(&format!("[{resource}] started: {} records expected", HumanCount(n))),
                None => self.line(&format!("[{resource}] started")),
            },
            _ => {}
        }
        self.resources.lock().unwrap().insert(resource.into(), Resource { bar, expected, started: now, last: now });
    }

    fn advanced(&self, resource: &str, records: u64, bytes: u64) {
        let mut resources = self.resources.lock().unwrap();
        let Some(r) = resources.get_mut(resource) else { return };
        if let Some(bar) = &r.bar {
            bar.set_position(records);
            // indicatif's own {per_sec} prints a float with all its digits; this is a count.
            bar.set_message(format!("{:>10} {:>8} rec/s", HumanBytes(bytes).to_string(), HumanCount(rate(records, r.started) as u64).to_string()));
            return;
        }
        let every = if self.mode == Mode::Json { JSON_EVERY } else { PLAIN_EVERY };
        if r.last.elapsed() < every {
            return;
        }
        r.last = Instant::now();
        let (per_second, eta) = (rate(records, r.started), eta(r.expected, records, r.started));
        match self.mode {
            Mode::Json => self.json(json!({
                "event": "progress", "resource": resource, "records": records, "expected": r.expected,
                "bytes": bytes, "records_per_second": per_second.round(), "eta_seconds": eta.map(|e| (e * 10.0).round() / 10.0),
            })),
            Mode::Plain => {
                let of = r.expected.map(|e| format!("/{} ({:.0}%)", HumanCount(e), records as f64 * 100.0 / e.max(1) as f64)).unwrap_or_default();
                let eta = eta.map(|e| format!(", eta {e:.0}s")).unwrap_or_default();
                self.line(&format!("[{resource}] {}{of} records, {}, {} records/s{eta}", HumanCount(records), HumanBytes(bytes), HumanCount(per_second as u64)));
            }
            _ => {}
        }
    }

    fn finished(&self, resource: &str, outcome: Result<(u64, u64), &str>) {
        let r = self.resources.lock().unwrap().remove(resource);
        let seconds = r.as_ref().map(|r| r.started.elapsed().as_secs_f64()).unwrap_or(0.0);
        if let Some(bar) = r.as_ref().and_then(|r| r.bar.as_ref()) {
            match outcome {
                Ok((records, bytes)) => {
                    bar.set_length(records);
                    bar.set_position(records);
                    bar.finish_with_message(format!("{:>10} written in {seconds:.1}s", HumanBytes(bytes).to_string()));
                }
                Err(_) => bar.abandon_with_message("failed"),
            }
            return;
        }
        match (self.mode, outcome) {
            (Mode::Json, Ok((records, bytes))) => {
                self.json(json!({"event": "done", "resource": resource, "records": records, "bytes": bytes, "seconds": seconds}));
            }
            (Mode::Json, Err(e)) => self.json(json!({"event": "failed", "resource": resource, "error": e, "seconds": seconds})),
            (Mode::Plain, Ok((records, bytes))) => {
                self.line(&format!("[{resource}] done: {} records, {} written in {seconds:.1}s", HumanCount(records), HumanBytes(bytes)));
            }
            // The run's error report says why.
            (Mode::Plain, Err(_)) => self.line(&format!("[{resource}] failed after {seconds:.1}s")),
            _ => {}
        }
    }
}
