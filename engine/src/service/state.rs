//! What every handler shares, in one struct.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::config::ServiceConfig;
use super::error::ApiError;
use super::jobs::Jobs;
use super::metrics::Metrics;
use super::runner::Runner;
use crate::catalog::{Catalog, CatalogError};

#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

pub struct Inner {
    pub config: ServiceConfig,
    pub jobs: Jobs,
    /// The handlers' catalog connection (the run queue has its own). SQLite calls block,
    /// so they run on tokio's blocking pool through [`AppState::db`].
    catalog: Mutex<Catalog>,
    pub runner: Runner,
    pub metrics: Metrics,
    /// S3 connections for delivered snapshots, one per job and bucket.
    pub s3: Mutex<HashMap<String, crate::s3::S3>>,
    /// The `ferry` binary, for estimates.
    pub exe: std::path::PathBuf,
    /// The time schedules and retention go by (a test build can set it).
    pub clock: Arc<dyn super::schedule::clock::Clock>,
    /// The snapshots page's logged-in browsers.
    pub sessions: super::page::session::Sessions,
}

impl AppState {
    pub fn new(
        config: ServiceConfig,
        jobs: Jobs,
        runner: Runner,
        exe: std::path::PathBuf,
        clock: Arc<dyn super::schedule::clock::Clock>,
    ) -> Result<AppState, CatalogError> {
        let catalog = Catalog::open(&config.output_dir)?;
        let sessions = super::page::session::Sessions::new(config.session_timeout);
        Ok(AppState(Arc::new(Inner {
            config,
            jobs,
            catalog: Mutex::new(catalog),
            runner,
            metrics: Metrics::default(),
            s3: Mutex::new(HashMap::new()),
            exe,
            clock,
            sessions,
        })))
    }

    /// The handlers' catalog connection, for background work already off the async
    /// workers (the scheduler, the retention purge).
    pub fn catalog(&self) -> std::sync::MutexGuard<'_, Catalog> {
        self.0.catalog.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` with the catalog, off the async workers.
    pub async fn db<T: Send + 'static>(&self, f: impl FnOnce(&mut Catalog) -> Result<T, ApiError> + Send + 'static) -> Result<T, ApiError> {
        let state = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut catalog = state.0.catalog.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            f(&mut catalog)
        })
        .await
        .map_err(|e| ApiError::Internal(format!("catalog task failed: {e}")))?
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
