//! Retention in the service: expired snapshots are purged on their own, and a snapshot
//! is removed the same way whether it expired or an admin deleted it: the copy delivered
//! to S3 first (every object under its prefix), then its local directory and the
//! catalog's mark. Removing the bucket's copy first means a failure there leaves the
//! snapshot listed, so the next purge (or delete) tries again instead of forgetting
//! objects in the bucket.

use std::time::Duration;

use serde::Deserialize;

use crate::catalog::{Catalog, CatalogError, SnapshotRecord};
use crate::s3::{RemovalError, S3, S3Error, S3Url};
use crate::service::state::AppState;

/// `[retention]` in the service config.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionFile {
    /// How often the service purges snapshots past their job's `retention` ("1h", the
    /// default), on disk and in the bucket they were delivered to.
    pub purge_every: Option<String>,
}

/// The default time between two purges.
pub const DEFAULT_PURGE_EVERY: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub enum PurgeError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Delivered(#[from] RemovalError),
}

/// Why a snapshot is removed.
#[derive(Debug, Clone, Copy)]
pub enum Why {
    Deleted,
    Expired,
}

/// Removes a snapshot everywhere: its delivered copy, its directory, and marks it
/// deleted (or purged) in the catalog. `job` is the configured job that made it (its
/// `[s3]` settings reach the bucket); without one the `AWS_*` environment applies.
pub fn remove(state: &AppState, c: &mut Catalog, s: &SnapshotRecord, job: Option<&str>, why: Why) -> Result<usize, PurgeError> {
    let removed = remove_delivered(state, s, job)?;
    match why {
        Why::Deleted => {
            c.delete(&s.id)?;
        }
        Why::Expired => c.purge_one(s)?,
    }
    Ok(removed)
}

/// Removes the objects of a delivered snapshot from its bucket: how many were removed
/// (0 for a snapshot kept on disk).
fn remove_delivered(state: &AppState, s: &SnapshotRecord, job: Option<&str>) -> Result<usize, PurgeError> {
    Ok(crate::s3::remove_delivered(&s.path, &s.id, |base| connect(state, job, base))?)
}

/// A connection to the bucket with the job's settings, cached per job, bucket and prefix.
fn connect(state: &AppState, job: Option<&str>, url: &S3Url) -> Result<S3, S3Error> {
    let key = format!("{}|{}|{}", job.unwrap_or("-"), url.bucket, url.prefix);
    if let Some(s3) = state.s3.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return Ok(s3.clone());
    }
    let settings = job.and_then(|j| state.jobs.get(j)).map(|j| j.job.s3.clone()).unwrap_or_default();
    let s3 = S3::connect(url, &settings)?;
    state.s3.lock().unwrap_or_else(|p| p.into_inner()).insert(key, s3.clone());
    Ok(s3)
}

/// Purges every snapshot past its retention at the service clock's now; returns the ids.
pub fn purge_expired(state: &AppState, c: &mut Catalog) -> Result<Vec<String>, PurgeError> {
    let now = state.clock.now();
    let mut purged = Vec::new();
    for s in c.expired(now, None)? {
        let job = s.job.as_deref().and_then(|file| c.request_by_job_file(file).ok().flatten()).map(|r| r.job);
        match remove(state, c, &s, job.as_deref(), Why::Expired) {
            Ok(objects) => {
                tracing::info!(snapshot = %s.id, expired = %s.expires_at, objects, "expired snapshot purged");
                purged.push(s.id.clone());
            }
            // One snapshot's failure does not hold up the others; it is tried again.
            Err(e) => tracing::error!(snapshot = %s.id, error = %e, "cannot purge an expired snapshot"),
        }
    }
    Ok(purged)
}

/// Starts the purge loop.
pub fn start(state: AppState) {
    let every = state.config.purge_every;
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            let st = state.clone();
            let done = tokio::task::spawn_blocking(move || {
                let mut c = st.catalog();
                purge_expired(&st, &mut c)
            })
            .await;
            match done {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "retention purge failed"),
                Err(e) => tracing::error!(error = %e, "retention purge panicked"),
            }
        }
    });
}
