//! Schedules: snapshots of a configured job on a cadence, each slot run at most once.
//!
//! ```text
//! every second: for each [[schedule]] ─ decide(now, catalog's floor, cadence) ─▶ Idle
//!                                                                            └─▶ record slot (+ request, one transaction) ─▶ run queue
//! ```
//!
//! A slot whose job still has a run queued or going is skipped and recorded `busy`
//! rather than queued behind it: the next slot comes anyway, and queued-up runs of one
//! job would only export the same data twice. A paused schedule records its slots
//! `paused`. See [`slots`] for the exactly-once rule and catch-up.

pub mod cadence;
pub mod clock;
pub mod config;
pub mod slots;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use self::clock::Clock;
use self::config::Schedule;
use self::slots::{Decision, Known, Outcome};
use crate::catalog::{Catalog, CatalogError, NewRequest, SlotRecord, timestamp};
use crate::service::jobs::{Narrowing, ServiceJob};
use crate::service::state::AppState;

/// How often the scheduler looks at its schedules.
const TICK: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum ScheduleRunError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("schedule {schedule:?}: job {job:?} is not configured")]
    NoJob { schedule: String, job: String },
}

/// Why a due slot's run could not be prepared (recorded as the slot's `error` detail).
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error("job {job:?} no longer derives a run (`{field}`: {message}); fix the job file and restart")]
    Derive { job: String, field: &'static str, message: String },
    #[error("cannot write the run's job file {path}: {source}; check that the output root is writable")]
    Write { path: std::path::PathBuf, source: std::io::Error },
}

/// Starts the scheduler's loop (nothing to do without schedules).
pub fn start(state: AppState) {
    if state.config.schedules.is_empty() {
        return;
    }
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(TICK);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            let st = state.clone();
            let started = tokio::task::spawn_blocking(move || {
                let mut catalog = st.catalog();
                tick(&st, &mut catalog)
            })
            .await;
            match started {
                Ok(Ok(n)) if n > 0 => state.runner.wake(),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "schedule tick failed"),
                Err(e) => tracing::error!(error = %e, "schedule tick panicked"),
            }
        }
    });
}

/// One tick over every schedule: returns how many runs it queued.
pub fn tick(state: &AppState, catalog: &mut Catalog) -> Result<usize, ScheduleRunError> {
    let now = state.clock.now();
    let mut queued = 0;
    for s in &state.config.schedules {
        let record = catalog.schedule_seen(&s.name, &timestamp(now))?;
        let known = Known {
            floor: floor(&record.first_seen, catalog.last_slot(&s.name)?.as_ref()),
            paused: record.paused_at.is_some(),
            busy: catalog.job_busy(&s.job)?,
        };
        let Decision::Record { slot, outcome } = slots::decide(now, known, &s.cadence, s.catch_up, s.grace) else { continue };
        let slot_text = timestamp(slot);
        let job = state.jobs.get(&s.job).ok_or_else(|| ScheduleRunError::NoJob { schedule: s.name.clone(), job: s.job.clone() })?;
        let (outcome, request, detail) = if outcome.runs() {
            match prepare(state, s, job, slot, outcome) {
                Ok(new) => (outcome, Some(new), None),
                Err(why) => (Outcome::Error, None, Some(why.to_string())),
            }
        } else {
            let detail = match outcome {
                Outcome::Busy => Some(format!("a run of job {:?} was still queued or going; skipped", s.job)),
                Outcome::Missed => Some("the server was down across this slot; catch_up = \"skip\"".to_string()),
                Outcome::Paused => Some("the schedule is paused".to_string()),
                _ => None,
            };
            (outcome, None, detail)
        };
        let recorded = catalog.record_slot(&s.name, &slot_text, outcome.as_str(), request.as_ref(), detail.as_deref())?;
        match (&request, recorded) {
            (Some(r), true) => {
                queued += 1;
                tracing::info!(schedule = %s.name, slot = %slot_text, outcome = outcome.as_str(), request = %r.id, "scheduled run queued");
            }
            (Some(r), false) => {
                // Another server on this root recorded the slot first.
                let _ = std::fs::remove_file(&r.job_file);
            }
            (None, true) => {
                tracing::warn!(schedule = %s.name, slot = %slot_text, outcome = outcome.as_str(), detail = ?detail, "scheduled slot not run");
            }
            (None, false) => {}
        }
    }
    Ok(queued)
}

/// The time before which no slot is considered: the schedule's first sighting or its
/// last recorded slot, whichever is later.
fn floor(first_seen: &str, last: Option<&SlotRecord>) -> DateTime<Utc> {
    let parse = |s: &str| DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc));
    let first = parse(first_seen).unwrap_or(DateTime::<Utc>::MIN_UTC);
    last.and_then(|l| parse(&l.slot)).map_or(first, |l| l.max(first))
}

/// Writes the run's job file (the whole job, no narrowing) and describes its request.
fn prepare(state: &AppState, s: &Schedule, job: &ServiceJob, slot: DateTime<Utc>, outcome: Outcome) -> Result<NewRequest, PrepareError> {
    let id = uuid::Uuid::new_v4().to_string();
    let root = &state.config.output_dir;
    let path = crate::service::routes::snapshots::job_file(root, "jobs", &id);
    let (text, derived) = job.derive(&Narrowing::default(), None, None, root, &path).map_err(|r| PrepareError::Derive {
        job: job.name.clone(),
        field: r.field,
        message: r.message,
    })?;
    crate::service::routes::snapshots::write_private(&path, &text).map_err(|source| PrepareError::Write { path: path.clone(), source })?;
    Ok(NewRequest {
        id,
        job: job.name.clone(),
        params: serde_json::json!({"schedule": s.name, "slot": timestamp(slot), "outcome": outcome.as_str()}),
        name: derived.name.clone(),
        description: derived.description.clone(),
        requested_by: Some(format!("schedule:{}", s.name)),
        job_file: path.display().to_string(),
    })
}

/// A schedule as `GET /api/v1/schedules` and `ferry schedules list` show it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ScheduleView {
    pub name: String,
    pub job: String,
    /// `weekly`, `monthly` or `cron`.
    pub cadence: String,
    /// For people: "every Monday at 02:30 (Europe/Berlin)".
    pub description: String,
    pub time_zone: String,
    /// `once` or `skip`.
    pub catch_up: String,
    pub paused: bool,
    pub paused_at: Option<String>,
    pub paused_by: Option<String>,
    /// The next slots, in the schedule's time zone (none are run while paused).
    pub next_runs: Vec<String>,
    /// The latest slot acted on.
    #[schema(value_type = Option<Object>)]
    pub last_slot: Option<SlotRecord>,
}

/// How many next runs a view lists.
pub const NEXT_RUNS: usize = 3;

pub fn view(s: &Schedule, catalog: &Catalog, now: DateTime<Utc>) -> Result<ScheduleView, CatalogError> {
    let record = catalog.schedule_record(&s.name)?;
    let last = catalog.last_slot(&s.name)?;
    let tz = s.cadence.tz();
    let next_runs =
        s.cadence.upcoming(now, NEXT_RUNS).into_iter().map(|t| t.with_timezone(&tz).to_rfc3339_opts(SecondsFormat::Secs, true)).collect();
    Ok(ScheduleView {
        name: s.name.clone(),
        job: s.job.clone(),
        cadence: s.cadence.kind().into(),
        description: s.cadence.describe(),
        time_zone: tz.name().into(),
        catch_up: match s.catch_up {
            slots::CatchUp::Once => "once".into(),
            slots::CatchUp::Skip => "skip".into(),
        },
        paused: record.as_ref().is_some_and(|r| r.paused_at.is_some()),
        paused_at: record.as_ref().and_then(|r| r.paused_at.clone()),
        paused_by: record.and_then(|r| r.paused_by),
        next_runs,
        last_slot: last,
    })
}

/// Every configured schedule's view.
pub fn views(schedules: &[Schedule], catalog: &Catalog, clock: &Arc<dyn Clock>) -> Result<Vec<ScheduleView>, CatalogError> {
    let now = clock.now();
    schedules.iter().map(|s| view(s, catalog, now)).collect()
}
