//! `[smtp]` and `[[notification]]` in the service config: as written, and validated.
//! Secrets (the SMTP password, a webhook's signing secret) are read from an environment
//! variable or a file named in the config, never written in it, and are kept in a
//! [`Secret`] whose `Debug` shows nothing.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

/// `[smtp]`: the mail server notification emails go through.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpFile {
    /// The server's host name (checked against its TLS certificate).
    pub host: String,
    /// Default: 465 with `security = "tls"`, 587 with "starttls", 25 with "none".
    pub port: Option<u16>,
    /// "starttls" (the default), "tls" (implicit TLS, port 465) or "none" (plain text:
    /// only for a relay on this machine).
    pub security: Option<Security>,
    /// The login, if the server wants one; the password comes from `password_env` or
    /// `password_file`.
    pub username: Option<String>,
    /// The environment variable holding the SMTP password.
    pub password_env: Option<String>,
    /// A file holding the SMTP password (relative to this file; trailing newline ignored).
    pub password_file: Option<String>,
    /// The sender, e.g. "ferry <ferry@example.com>".
    pub from: String,
    /// Give up on one attempt after this long ("30s", the default).
    pub timeout: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    Tls,
    Starttls,
    None,
}

/// One `[[notification]]`: who hears of which snapshots.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationFile {
    /// A name for the records and the API (letters, digits, `_` and `-`).
    pub name: String,
    /// The events: ["completed", "failed"] (the default: both).
    pub on: Option<Vec<EventKind>>,
    /// Only snapshots of these jobs (default: every job).
    pub jobs: Option<Vec<String>>,
    /// Only snapshots these schedules started (default: any snapshot, scheduled or not).
    pub schedules: Option<Vec<String>>,
    /// Mail these addresses (needs `[smtp]`).
    pub email: Option<Vec<String>>,
    /// POST a signed JSON body to this URL (http or https).
    pub webhook: Option<String>,
    /// The environment variable holding the webhook's signing secret.
    pub secret_env: Option<String>,
    /// A file holding the webhook's signing secret (relative to this file).
    pub secret_file: Option<String>,
    /// Attempts in all, retries included, on a timeout, a connection failure or a 5xx
    /// answer (5, the default; 1 to 20).
    pub max_attempts: Option<u32>,
    /// The wait before the first retry, doubled before each next one ("2s", the default).
    pub retry_backoff: Option<String>,
    /// Give up on one attempt after this long ("10s", the default).
    pub timeout: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Completed,
    Failed,
}

/// A secret read from the environment or a file; shown nowhere.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Debug, Clone)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub credentials: Option<(String, SecretSlot)>,
    pub from: lettre::message::Mailbox,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub enum Target {
    Email(Vec<lettre::message::Mailbox>),
    Webhook { url: reqwest::Url, secret: SecretSlot },
}

#[derive(Debug, Clone)]
pub struct Notification {
    pub name: String,
    pub on: Vec<EventKind>,
    pub jobs: Vec<String>,
    pub schedules: Vec<String>,
    pub target: Target,
    pub max_attempts: u32,
    pub backoff: Duration,
    pub timeout: Duration,
}

impl Notification {
    /// Whether this notification is about a snapshot of `job` (started by `schedule`).
    pub fn matches(&self, kind: EventKind, job: &str, schedule: Option<&str>) -> bool {
        self.on.contains(&kind)
            && (self.jobs.is_empty() || self.jobs.iter().any(|j| j == job))
            && (self.schedules.is_empty() || schedule.is_some_and(|s| self.schedules.iter().any(|n| n == s)))
    }

    pub fn kind(&self) -> &'static str {
        match self.target {
            Target::Email(_) => "email",
            Target::Webhook { .. } => "webhook",
        }
    }
}

/// The validated notification settings.
#[derive(Debug, Clone, Default)]
pub struct NotifyConfig {
    /// The base URL links are built from, without a trailing `/`.
    pub public_url: Option<String>,
    pub smtp: Option<Smtp>,
    pub notifications: Vec<Arc<Notification>>,
}

/// What is wrong with `public_url`, `[smtp]` or a `[[notification]]`.
#[derive(Debug, thiserror::Error)]
pub enum NotifyConfigError {
    #[error("{0:?} is not an http(s) URL; write the address people reach the service at, e.g. \"https://ferry.example.com\"")]
    PublicUrl(String),
    #[error("is required with [[notification]]: links in mails and webhooks are built from it")]
    NoPublicUrl,
    #[error("the environment variable {0} is not set; export it, or use the `_file` form")]
    EnvMissing(String),
    #[error("cannot read {path}: {source}")]
    File { path: std::path::PathBuf, source: std::io::Error },
    #[error("is empty; a secret must have some content")]
    EmptySecret,
    #[error("give exactly one of `{0}_env` and `{0}_file`")]
    SecretSource(&'static str),
    #[error("is set without `username`; set both or neither")]
    PasswordWithoutUser,
    #[error("{value:?} is not a mailbox ({reason}); write it as \"ops@example.com\" or \"Ops <ops@example.com>\"")]
    Mailbox { value: String, reason: String },
    #[error("{0:?} is not a notification name; use 1 to 64 letters, digits, _ and -")]
    Name(String),
    #[error("{0:?} is listed twice; give each notification its own name")]
    Duplicate(String),
    #[error("give exactly one of `email` and `webhook`")]
    Target,
    #[error("is empty; list at least one address")]
    NoRecipient,
    #[error("`email` needs an [smtp] table: the server the mails go through")]
    NoSmtp,
    #[error("{value:?} is not an http(s) URL ({reason})")]
    Webhook { value: String, reason: String },
    #[error("is required for a webhook: the receiver checks the signature with it (see README, \"Webhooks\")")]
    NoSecret,
    #[error("{name:?} is not a configured {what}; use one of: {known}")]
    Unknown { name: String, what: &'static str, known: String },
    #[error("is empty; list \"completed\", \"failed\" or both")]
    NoEvents,
    #[error("{0} is out of range; use 1 to 20")]
    Attempts(u32),
    #[error("{0}")]
    Duration(String),
}

type Keyed = (String, NotifyConfigError);

/// Where a secret comes from; read by [`NotifyConfig::load_secrets`] when the server
/// starts, so commands that only read the config (`ferry tokens`, `ferry schedules`) do
/// not need it.
#[derive(Debug, Clone)]
pub struct SecretSlot {
    /// The config key, for errors: `smtp.password`, `notification[0].secret`.
    key: String,
    env: Option<String>,
    file: Option<std::path::PathBuf>,
    value: Option<Secret>,
}

impl SecretSlot {
    /// The secret, once loaded.
    pub fn get(&self) -> Option<&Secret> {
        self.value.as_ref()
    }

    fn load(&mut self) -> Result<(), Keyed> {
        let text = match (&self.env, &self.file) {
            (Some(var), _) => std::env::var(var).map_err(|_| (format!("{}_env", self.key), NotifyConfigError::EnvMissing(var.clone())))?,
            (None, Some(path)) => std::fs::read_to_string(path)
                .map_err(|source| (format!("{}_file", self.key), NotifyConfigError::File { path: path.clone(), source }))?,
            (None, None) => return Err((self.key.clone(), NotifyConfigError::EmptySecret)),
        };
        let text = text.trim_end_matches(['\n', '\r']).to_string();
        if text.is_empty() {
            return Err((self.key.clone(), NotifyConfigError::EmptySecret));
        }
        self.value = Some(Secret(text));
        Ok(())
    }
}

fn secret(base: &Path, env: Option<&str>, file: Option<&str>, what: &'static str, key: &str) -> Result<Option<SecretSlot>, Keyed> {
    match (env, file) {
        (None, None) => Ok(None),
        (Some(_), Some(_)) => Err((key.into(), NotifyConfigError::SecretSource(what))),
        (env, file) => Ok(Some(SecretSlot { key: key.into(), env: env.map(Into::into), file: file.map(|f| base.join(f)), value: None })),
    }
}

impl NotifyConfig {
    /// Reads every secret from its variable or file: an error names the key and the
    /// variable or file, never a value.
    pub fn load_secrets(&mut self) -> Result<(), Keyed> {
        if let Some((_, slot)) = self.smtp.as_mut().and_then(|s| s.credentials.as_mut()) {
            slot.load()?;
        }
        for n in &mut self.notifications {
            if let Target::Webhook { secret, .. } = &mut Arc::make_mut(n).target {
                secret.load()?;
            }
        }
        Ok(())
    }
}

fn mailbox(s: &str, key: &str) -> Result<lettre::message::Mailbox, Keyed> {
    s.parse()
        .map_err(|e: lettre::address::AddressError| (key.into(), NotifyConfigError::Mailbox { value: s.into(), reason: e.to_string() }))
}

fn duration(v: Option<&str>, default: u64, key: &str) -> Result<Duration, Keyed> {
    match v {
        None => Ok(Duration::from_secs(default)),
        Some(t) => match crate::job::parse_duration(t) {
            Ok(d) if !d.is_zero() => Ok(d),
            Ok(_) => Err((key.into(), NotifyConfigError::Duration("is 0; use a positive time such as \"10s\"".into()))),
            Err(m) => Err((key.into(), NotifyConfigError::Duration(m))),
        },
    }
}

/// Validates the notification settings; `base` is the config file's directory, `jobs`
/// and `schedules` the configured names. Errors come with the key they are about.
pub fn build(
    base: &Path,
    public_url: Option<&str>,
    smtp: Option<&SmtpFile>,
    files: &[NotificationFile],
    jobs: &[&str],
    schedules: &[&str],
) -> Result<NotifyConfig, Keyed> {
    let public_url = match public_url {
        None => None,
        Some(u) => {
            let ok = reqwest::Url::parse(u).is_ok_and(|p| matches!(p.scheme(), "http" | "https") && p.host().is_some());
            if !ok {
                return Err(("public_url".into(), NotifyConfigError::PublicUrl(u.into())));
            }
            Some(u.trim_end_matches('/').to_string())
        }
    };
    if !files.is_empty() && public_url.is_none() {
        return Err(("public_url".into(), NotifyConfigError::NoPublicUrl));
    }
    let smtp = match smtp {
        None => None,
        Some(s) => {
            let security = s.security.unwrap_or(Security::Starttls);
            let password = secret(base, s.password_env.as_deref(), s.password_file.as_deref(), "password", "smtp.password")?;
            let credentials = match (&s.username, password) {
                (Some(u), Some(p)) => Some((u.clone(), p)),
                (None, Some(_)) => return Err(("smtp.password_env".into(), NotifyConfigError::PasswordWithoutUser)),
                (_, None) => None,
            };
            Some(Smtp {
                host: s.host.clone(),
                port: s.port.unwrap_or(match security {
                    Security::Tls => 465,
                    Security::Starttls => 587,
                    Security::None => 25,
                }),
                security,
                credentials,
                from: mailbox(&s.from, "smtp.from")?,
                timeout: duration(s.timeout.as_deref(), 30, "smtp.timeout")?,
            })
        }
    };
    let mut notifications: Vec<Arc<Notification>> = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let key = |k: &str| format!("notification[{i}].{k}");
        if f.name.is_empty() || f.name.len() > 64 || !f.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            return Err((key("name"), NotifyConfigError::Name(f.name.clone())));
        }
        if notifications.iter().any(|n| n.name == f.name) {
            return Err((key("name"), NotifyConfigError::Duplicate(f.name.clone())));
        }
        let on = f.on.clone().unwrap_or_else(|| vec![EventKind::Completed, EventKind::Failed]);
        if on.is_empty() {
            return Err((key("on"), NotifyConfigError::NoEvents));
        }
        for (names, known, what, k) in [(&f.jobs, jobs, "job", "jobs"), (&f.schedules, schedules, "schedule", "schedules")] {
            for n in names.iter().flatten() {
                if !known.contains(&n.as_str()) {
                    return Err((key(k), NotifyConfigError::Unknown { name: n.clone(), what, known: known.join(", ") }));
                }
            }
        }
        let target = match (&f.email, &f.webhook) {
            (Some(to), None) => {
                if smtp.is_none() {
                    return Err((key("email"), NotifyConfigError::NoSmtp));
                }
                if to.is_empty() {
                    return Err((key("email"), NotifyConfigError::NoRecipient));
                }
                if f.secret_env.is_some() || f.secret_file.is_some() {
                    return Err((key("secret_env"), NotifyConfigError::Target));
                }
                Target::Email(to.iter().map(|t| mailbox(t, &key("email"))).collect::<Result<_, _>>()?)
            }
            (None, Some(url)) => {
                let parsed = reqwest::Url::parse(url)
                    .map_err(|e| e.to_string())
                    .and_then(|u| if matches!(u.scheme(), "http" | "https") { Ok(u) } else { Err(format!("the scheme is {}", u.scheme())) })
                    .map_err(|reason| (key("webhook"), NotifyConfigError::Webhook { value: url.clone(), reason }))?;
                let secret = secret(base, f.secret_env.as_deref(), f.secret_file.as_deref(), "secret", &key("secret"))?
                    .ok_or_else(|| (key("secret_env"), NotifyConfigError::NoSecret))?;
                Target::Webhook { url: parsed, secret }
            }
            _ => return Err((key("email"), NotifyConfigError::Target)),
        };
        let max_attempts = f.max_attempts.unwrap_or(5);
        if !(1..=20).contains(&max_attempts) {
            return Err((key("max_attempts"), NotifyConfigError::Attempts(max_attempts)));
        }
        notifications.push(Arc::new(Notification {
            name: f.name.clone(),
            on,
            jobs: f.jobs.clone().unwrap_or_default(),
            schedules: f.schedules.clone().unwrap_or_default(),
            target,
            max_attempts,
            backoff: duration(f.retry_backoff.as_deref(), 2, &key("retry_backoff"))?,
            timeout: duration(f.timeout.as_deref(), 10, &key("timeout"))?,
        }));
    }
    Ok(NotifyConfig { public_url, smtp, notifications })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> (Option<SmtpFile>, Vec<NotificationFile>) {
        #[derive(Deserialize)]
        struct F {
            smtp: Option<SmtpFile>,
            #[serde(default)]
            notification: Vec<NotificationFile>,
        }
        let f: F = toml::from_str(toml_text).unwrap();
        (f.smtp, f.notification)
    }

    fn err(public_url: Option<&str>, toml_text: &str) -> (String, String) {
        let (smtp, n) = parse(toml_text);
        let (key, e) = build(Path::new("."), public_url, smtp.as_ref(), &n, &["demo"], &["weekly"]).unwrap_err();
        (key, e.to_string())
    }

    const HOOK: &str = "[[notification]]\nname = \"h\"\nwebhook = \"https://hooks.example.test/x\"\nsecret_env = \"FERRY_UNIT_SECRET\"\n";

    #[test]
    fn links_need_a_public_url() {
        assert_eq!(err(None, HOOK).0, "public_url");
        assert!(err(Some("ftp://x"), HOOK).1.contains("\"ftp://x\" is not an http(s) URL"));
        let (smtp, n) = parse(HOOK);
        let ok = build(Path::new("."), Some("https://ferry.example.test/"), smtp.as_ref(), &n, &["demo"], &[]).unwrap();
        assert_eq!(ok.public_url.as_deref(), Some("https://ferry.example.test"));
    }

    #[test]
    fn targets_and_filters_are_checked() {
        let url = Some("https://ferry.example.test");
        assert_eq!(
            err(url, "[[notification]]\nname = \"m\"\nemail = [\"ops@example.test\"]\n").1,
            "`email` needs an [smtp] table: the server the mails go through"
        );
        assert_eq!(
            err(url, "[[notification]]\nname = \"h\"\nwebhook = \"https://x.test/\"\n"),
            ("notification[0].secret_env".into(), NotifyConfigError::NoSecret.to_string())
        );
        let (key, msg) = err(url, &format!("{HOOK}jobs = [\"nightly\"]\n"));
        assert_eq!(key, "notification[0].jobs");
        assert!(msg.contains("\"nightly\" is not a configured job; use one of: demo"), "{msg}");
        let (key, _) = err(url, &format!("{HOOK}secret_file = \"s\"\n"));
        assert_eq!(key, "notification[0].secret");
        let (key, msg) = err(url, &format!("{HOOK}max_attempts = 0\n"));
        assert_eq!((key.as_str(), msg.as_str()), ("notification[0].max_attempts", "0 is out of range; use 1 to 20"));
    }

    #[test]
    fn secrets_are_read_at_load_and_never_shown() {
        let (smtp, n) = parse(HOOK);
        let mut c = build(Path::new("."), Some("https://ferry.example.test"), smtp.as_ref(), &n, &["demo"], &[]).unwrap();
        // Not read by build: a command that only reads the config does not need it.
        let (key, e) = c.load_secrets().unwrap_err();
        assert_eq!(key, "notification[0].secret_env");
        assert!(e.to_string().contains("FERRY_UNIT_SECRET is not set"));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret"), "s3cr3t-value\n").unwrap();
        let file_hook = "[[notification]]\nname = \"h\"\nwebhook = \"https://hooks.example.test/x\"\nsecret_file = \"secret\"\n";
        let (smtp, n) = parse(file_hook);
        let mut c = build(dir.path(), Some("https://ferry.example.test"), smtp.as_ref(), &n, &["demo"], &[]).unwrap();
        c.load_secrets().unwrap();
        let Target::Webhook { secret, .. } = &c.notifications[0].target else { panic!("a webhook") };
        assert_eq!(secret.get().unwrap().expose(), "s3cr3t-value");
        assert!(!format!("{c:?}").contains("s3cr3t"), "Debug shows the secret");
    }
}
