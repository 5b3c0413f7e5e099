//! Notifications when a snapshot completes or fails: mail over SMTP and signed JSON
//! webhooks, each retried with backoff, every attempt recorded in the catalog and shown
//! by `GET /api/v1/snapshots/{id}/notifications`.
//!
//! ```text
//! run queue: request finished ─id─▶ dispatcher ─▶ event (catalog) ─▶ each matching [[notification]]:
//!     attempt 1 ─fail─▶ wait backoff ─▶ attempt 2 ─▶ …   (each attempt recorded)
//! ```
//!
//! Notifying happens after the run is settled and never writes to the snapshot or its
//! request: a notification that fails leaves the snapshot's status as it was. Secrets
//! stay in [`config::Secret`]s; errors are recorded without URLs' query strings.

pub mod config;
pub mod email;
pub mod webhook;

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc::UnboundedReceiver;

use self::config::{EventKind, Notification, Target};
use crate::catalog::{Catalog, NotificationAttempt, RequestState, SnapshotStatus, timestamp};
use crate::service::error::ApiError;
use crate::service::state::AppState;

/// The event a notification tells of: the JSON body of a webhook, the content of a mail.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// `snapshot.completed` or `snapshot.failed`.
    pub event: &'static str,
    /// The API's id of the snapshot (`/api/v1/snapshots/{id}`).
    pub snapshot_id: String,
    pub name: String,
    pub job: String,
    /// The schedule that started it, if one did.
    pub schedule: Option<String>,
    /// `completed` or `failed`.
    pub status: &'static str,
    /// Completed with resources left out (`on_error = "continue"`).
    pub incomplete: bool,
    pub records: Option<u64>,
    pub files: Option<u64>,
    pub parts: Option<u64>,
    pub bytes: Option<u64>,
    pub created_at: String,
    pub completed_at: Option<String>,
    pub expires_at: Option<String>,
    /// The snapshot's page, from the config's `public_url`.
    pub url: String,
    /// The API's list of its files with their download URLs (needs a token).
    pub files_url: String,
    pub error: Option<String>,
}

impl Event {
    fn kind(&self) -> EventKind {
        if self.status == "completed" { EventKind::Completed } else { EventKind::Failed }
    }
}

/// Where a snapshot's page is, under the public URL.
pub fn snapshot_page(public_url: &str, id: &str) -> String {
    format!("{public_url}/snapshots/{id}")
}

/// Why an attempt failed. Never holds a secret: URLs are shown without their query.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("cannot build the mail: {0}")]
    Message(#[from] lettre::error::Error),
    #[error("cannot set up the SMTP connection to {host}: {reason}")]
    SmtpSetup { host: String, reason: String },
    #[error("SMTP delivery through {host}:{port} failed: {source}")]
    Smtp { host: String, port: u16, source: lettre::transport::smtp::Error },
    #[error("SMTP delivery through {host}:{port} timed out after {after:?}")]
    SmtpTimeout { host: String, port: u16, after: Duration },
    #[error("the webhook {url} did not answer within {after:?}")]
    Timeout { url: String, after: Duration },
    #[error("cannot reach the webhook {url}: {source}")]
    Connect { url: String, source: reqwest::Error },
    #[error("the webhook {url} has no signing secret loaded; set its `secret_env` variable or `secret_file` and restart")]
    NoSecret { url: String },
    #[error("the webhook {url} answered {status}")]
    Status { url: String, status: u16 },
}

impl NotifyError {
    /// Whether another attempt may do better: timeouts, connection failures, 5xx answers
    /// and transient SMTP errors.
    pub fn retryable(&self) -> bool {
        match self {
            NotifyError::Message(_) | NotifyError::SmtpSetup { .. } | NotifyError::NoSecret { .. } => false,
            NotifyError::Smtp { source, .. } => !source.is_permanent(),
            NotifyError::SmtpTimeout { .. } | NotifyError::Timeout { .. } | NotifyError::Connect { .. } => true,
            NotifyError::Status { status, .. } => *status >= 500 || *status == 429,
        }
    }

    pub fn http_status(&self) -> Option<u16> {
        match self {
            NotifyError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Sends the notifications of every request the run queue reports finished.
pub fn start(state: AppState, mut finished: UnboundedReceiver<String>) {
    tokio::spawn(async move {
        let client = match webhook::client() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "cannot set up the webhook client; webhooks are off");
                reqwest::Client::new()
            }
        };
        while let Some(id) = finished.recv().await {
            if state.config.notify.notifications.is_empty() {
                continue;
            }
            let st = state.clone();
            let event = state.db(move |c| event(&st, c, &id)).await;
            let event = match event {
                Ok(Some(e)) => Arc::new(e),
                Ok(None) => continue,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read a finished run for its notifications");
                    continue;
                }
            };
            for n in &state.config.notify.notifications {
                if n.matches(event.kind(), &event.job, event.schedule.as_deref()) {
                    tokio::spawn(deliver(state.clone(), client.clone(), n.clone(), event.clone()));
                }
            }
        }
    });
}

/// The event of a finished request: `None` when it never ran (deleted while queued).
fn event(state: &AppState, c: &Catalog, id: &str) -> Result<Option<Event>, ApiError> {
    let Some(r) = c.request(id)? else { return Ok(None) };
    if r.state != RequestState::Finished || (r.deleted_at.is_some() && r.started_at.is_none()) {
        return Ok(None);
    }
    let s = match &r.snapshot_id {
        Some(sid) => Some(c.get(sid)?),
        None => None,
    };
    let schedule = c.slot_of_request(id)?.map(|s| s.schedule);
    let completed = s.as_ref().is_some_and(|s| s.status == SnapshotStatus::Completed);
    let base = state.config.notify.public_url.clone().unwrap_or_default();
    let files_of = |s: &crate::catalog::SnapshotRecord| s.files.map(|f| f + s.parts.unwrap_or(0));
    Ok(Some(Event {
        event: if completed { "snapshot.completed" } else { "snapshot.failed" },
        snapshot_id: r.id.clone(),
        name: s.as_ref().map_or_else(|| r.name.clone(), |s| s.name.clone()),
        job: r.job.clone(),
        schedule,
        status: if completed { "completed" } else { "failed" },
        incomplete: s.as_ref().is_some_and(|s| s.incomplete),
        records: s.as_ref().and_then(|s| s.records),
        files: s.as_ref().and_then(files_of),
        parts: s.as_ref().and_then(|s| s.parts),
        bytes: s.as_ref().and_then(|s| s.bytes),
        created_at: r.created_at.clone(),
        completed_at: s.as_ref().and_then(|s| s.completed_at.clone()).or(r.finished_at.clone()),
        expires_at: s.as_ref().filter(|_| completed).map(|s| s.expires_at.clone()),
        url: snapshot_page(&base, &r.id),
        files_url: format!("{base}/api/v1/snapshots/{}/files", r.id),
        error: if completed {
            s.as_ref().and_then(|s| s.error.clone())
        } else {
            s.as_ref().and_then(|s| s.error.clone()).or(r.error.clone())
        },
    }))
}

/// Delivers one notification of one event: attempts with doubling waits between them,
/// until one succeeds, one fails for good, or `max_attempts` are spent.
async fn deliver(state: AppState, client: reqwest::Client, n: Arc<Notification>, event: Arc<Event>) {
    let delivery_id = uuid::Uuid::new_v4().to_string();
    let body = serde_json::to_vec(&*event).unwrap_or_default();
    let mut wait = n.backoff;
    for attempt in 1..=n.max_attempts {
        let result = match &n.target {
            Target::Email(to) => match &state.config.notify.smtp {
                Some(smtp) => email::send(smtp, to, &event).await,
                None => Err(NotifyError::SmtpSetup { host: "-".into(), reason: "no [smtp] table".into() }),
            },
            Target::Webhook { url, secret } => webhook::post(&client, url, secret, &event, &body, &delivery_id, n.timeout).await,
        };
        let (status, error, retry) = match &result {
            Ok(status) => (*status, None, false),
            Err(e) => (e.http_status(), Some(e.to_string()), e.retryable()),
        };
        let last = !retry || attempt == n.max_attempts;
        let record = NotificationAttempt {
            notification: n.name.clone(),
            kind: n.kind().into(),
            event: event.event.into(),
            delivery_id: delivery_id.clone(),
            attempt,
            at: timestamp(chrono::Utc::now()),
            outcome: if result.is_ok() { "delivered" } else { "failed" }.into(),
            http_status: status,
            error: error.clone(),
            last,
        };
        match &error {
            None => tracing::info!(notification = %n.name, snapshot = %event.snapshot_id, attempt, "notification delivered"),
            Some(e) => {
                tracing::warn!(notification = %n.name, snapshot = %event.snapshot_id, attempt, last, error = %e, "notification failed");
            }
        }
        let id = event.snapshot_id.clone();
        if let Err(e) = state.db(move |c| c.record_notification(&id, &record).map_err(Into::into)).await {
            tracing::error!(error = %e, "cannot record a notification attempt");
        }
        if last {
            return;
        }
        tokio::time::sleep(wait).await;
        wait = wait.saturating_mul(2);
    }
}
