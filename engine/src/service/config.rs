//! The service's configuration file (`ferry serve --config service.toml`): raw serde
//! types (unknown keys refused) and their validation into a [`ServiceConfig`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::job::parse_duration;

/// `service.toml` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceFile {
    /// Address to listen on, e.g. "127.0.0.1:8080" (default); `--listen` overrides it.
    pub listen: Option<String>,
    /// The output root: its catalog holds the history, the tokens and the requests, and
    /// every job's snapshots are written under it (it overrides the jobs' own
    /// `[output] dir`; a job delivering to `s3://` keeps its bucket and records here).
    /// Relative to this file.
    pub output_dir: String,
    /// How many runs may go at once (default 1); the rest wait in request order.
    pub max_concurrent_runs: Option<usize>,
    /// PEM certificate chain: with `tls_key`, the service speaks HTTPS only.
    pub tls_cert: Option<String>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<String>,
    /// Allow plain HTTP on an address other than loopback (default false).
    #[serde(default)]
    pub allow_plain_http: bool,
    /// Time limits of the HTTP side.
    #[serde(default)]
    pub limits: LimitsFile,
    /// The jobs a client may request, by name.
    #[serde(default, rename = "job")]
    pub jobs: Vec<JobEntryFile>,
    /// The address people reach the service at, e.g. "https://ferry.example.com": links
    /// in notification mails and webhooks are built from it (required with
    /// `[[notification]]`).
    pub public_url: Option<String>,
    /// Snapshots of a job on a cadence (weekly, monthly or cron), each slot run once.
    #[serde(default, rename = "schedule")]
    pub schedules: Vec<super::schedule::config::ScheduleFile>,
    /// The mail server notification emails go through.
    pub smtp: Option<super::notify::config::SmtpFile>,
    /// Who hears of completed and failed snapshots: email or a signed webhook.
    #[serde(default, rename = "notification")]
    pub notifications: Vec<super::notify::config::NotificationFile>,
    /// The automatic purge of expired snapshots.
    #[serde(default)]
    pub retention: super::retention::RetentionFile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsFile {
    /// A client must send its request headers within this time ("10s", the default).
    pub header_read_timeout: Option<String>,
    /// `POST /api/v1/estimates` gives up after this long ("120s", the default).
    pub estimate_timeout: Option<String>,
    /// A snapshots-page session lasts this long after logging in ("8h", the default).
    pub session_timeout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobEntryFile {
    /// The name clients use in `{"job": ...}`: letters, digits, `_` and `-`.
    pub name: String,
    /// The job file, relative to this file.
    pub file: String,
}

/// A validated service configuration.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub path: PathBuf,
    pub listen: SocketAddr,
    /// Absolute and canonical (created when missing).
    pub output_dir: PathBuf,
    pub max_concurrent_runs: usize,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub allow_plain_http: bool,
    pub header_read_timeout: Duration,
    pub estimate_timeout: Duration,
    pub session_timeout: Duration,
    pub jobs: Vec<(String, PathBuf)>,
    pub schedules: Vec<super::schedule::config::Schedule>,
    pub notify: super::notify::config::NotifyConfig,
    /// How often expired snapshots are purged.
    pub purge_every: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the service config {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}; the keys are documented in examples/service.toml")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: `{key}`: {message}")]
    Invalid { path: PathBuf, key: String, message: String },
    #[error("cannot create the output root {path}: {source}; check that it is writable or change `output_dir`")]
    Root { path: PathBuf, source: std::io::Error },
}

/// Where the service listens unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

impl ServiceFile {
    /// Validates into a [`ServiceConfig`]; paths resolve against the file's directory.
    pub fn build(self, path: &Path) -> Result<ServiceConfig, ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid { path: path.into(), key: key.into(), message };
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let resolve = |p: &str| if Path::new(p).is_absolute() { PathBuf::from(p) } else { base.join(p) };
        let listen = parse_listen(self.listen.as_deref().unwrap_or(DEFAULT_LISTEN)).map_err(|m| invalid("listen", m))?;
        let max_concurrent_runs = match self.max_concurrent_runs {
            Some(0) => return Err(invalid("max_concurrent_runs", "is 0; use 1 or more".into())),
            Some(n) if n > 64 => {
                return Err(invalid("max_concurrent_runs", format!("{n} is more than 64; each run is a process using every core")));
            }
            n => n.unwrap_or(1),
        };
        let tls = match (self.tls_cert, self.tls_key) {
            (Some(c), Some(k)) => Some((resolve(&c), resolve(&k))),
            (None, None) => None,
            (Some(_), None) => return Err(invalid("tls_key", "is missing while `tls_cert` is set; give both or neither".into())),
            (None, Some(_)) => return Err(invalid("tls_cert", "is missing while `tls_key` is set; give both or neither".into())),
        };
        let duration = |key: &str, v: &Option<String>, default: u64| -> Result<Duration, ConfigError> {
            match v {
                None => Ok(Duration::from_secs(default)),
                Some(t) => match parse_duration(t) {
                    Ok(d) if !d.is_zero() => Ok(d),
                    Ok(_) => Err(invalid(key, "is 0; use a positive time such as \"10s\"".into())),
                    Err(m) => Err(invalid(key, m)),
                },
            }
        };
        let header_read_timeout = duration("limits.header_read_timeout", &self.limits.header_read_timeout, 10)?;
        let estimate_timeout = duration("limits.estimate_timeout", &self.limits.estimate_timeout, 120)?;
        let session_timeout = duration("limits.session_timeout", &self.limits.session_timeout, 8 * 3600)?;
        if self.jobs.is_empty() {
            return Err(invalid("job", "no job is configured; add [[job]] name = \"nightly\" and file = \"jobs/nightly.toml\"".into()));
        }
        let mut jobs: Vec<(String, PathBuf)> = Vec::new();
        for (i, j) in self.jobs.iter().enumerate() {
            if j.name.is_empty() || j.name.len() > 64 || !j.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
                return Err(invalid(
                    &format!("job[{i}].name"),
                    format!("{:?} is not a job name; use 1 to 64 letters, digits, _ and -", j.name),
                ));
            }
            if jobs.iter().any(|(n, _)| n == &j.name) {
                return Err(invalid(&format!("job[{i}].name"), format!("{:?} is listed twice; give each job its own name", j.name)));
            }
            jobs.push((j.name.clone(), resolve(&j.file)));
        }
        let names: Vec<&str> = jobs.iter().map(|(n, _)| n.as_str()).collect();
        let schedules = super::schedule::config::build(&self.schedules, &names).map_err(|(key, e)| invalid(&key, e.to_string()))?;
        let schedule_names: Vec<&str> = schedules.iter().map(|s| s.name.as_str()).collect();
        let notify = super::notify::config::build(
            &base,
            self.public_url.as_deref(),
            self.smtp.as_ref(),
            &self.notifications,
            &names,
            &schedule_names,
        )
        .map_err(|(key, e)| invalid(&key, e.to_string()))?;
        let purge_every = match &self.retention.purge_every {
            None => super::retention::DEFAULT_PURGE_EVERY,
            Some(_) => duration("retention.purge_every", &self.retention.purge_every, 0)?,
        };
        let root = resolve(&self.output_dir);
        std::fs::create_dir_all(&root).map_err(|source| ConfigError::Root { path: root.clone(), source })?;
        let output_dir = root.canonicalize().map_err(|source| ConfigError::Root { path: root.clone(), source })?;
        Ok(ServiceConfig {
            path: path.into(),
            listen,
            output_dir,
            max_concurrent_runs,
            tls,
            allow_plain_http: self.allow_plain_http,
            header_read_timeout,
            estimate_timeout,
            session_timeout,
            jobs,
            schedules,
            notify,
            purge_every,
        })
    }
}

impl ServiceConfig {
    /// Reads and validates a service config file.
    pub fn load(path: &Path) -> Result<ServiceConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
        let file: ServiceFile = toml::from_str(&text)
            .map_err(|e| ConfigError::Parse { path: path.into(), message: e.to_string().trim().replace('\n', " ") })?;
        file.build(path)
    }

    /// Reads the notification secrets (SMTP password, webhook secrets) from their
    /// variables or files; `ferry serve` does, commands that only read the config do not.
    pub fn load_secrets(&mut self) -> Result<(), ConfigError> {
        self.notify.load_secrets().map_err(|(key, e)| ConfigError::Invalid { path: self.path.clone(), key, message: e.to_string() })
    }

    /// Refuses plain HTTP off loopback unless the config allows it.
    pub fn check_listen(&self) -> Result<(), ConfigError> {
        if self.tls.is_none() && !self.listen.ip().is_loopback() && !self.allow_plain_http {
            return Err(ConfigError::Invalid {
                path: self.path.clone(),
                key: "listen".into(),
                message: format!(
                    "{} is not a loopback address and no TLS is configured; set tls_cert and tls_key, or allow_plain_http = true behind a TLS proxy",
                    self.listen
                ),
            });
        }
        Ok(())
    }
}

/// "127.0.0.1:8080", "[::1]:8080" or "localhost:8080".
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    let s2 = s.strip_prefix("localhost:").map(|p| format!("127.0.0.1:{p}"));
    s2.as_deref().unwrap_or(s).parse().map_err(|e| format!("{s:?} is not an address and port ({e}); write it like \"127.0.0.1:8080\""))
}
