//! The catalog's side of a run: the three points where `run` tells it what happened.

use std::fmt::Display;
use std::path::Path;

use super::{Catalog, CatalogError, NewSnapshot, disk};
use crate::job::Job;

/// A run's entry in its output root's catalog.
pub struct Recorder {
    catalog: Catalog,
    id: String,
}

impl Recorder {
    /// Records the snapshot `pending` before anything is written, after settling runs in
    /// this output root that died (so a killed run is failed, and its staging removed,
    /// before the next one starts).
    pub fn begin(job: &Job, id: &str) -> Result<Recorder, CatalogError> {
        let mut catalog = Catalog::open(&job.output_dir)?;
        catalog.reconcile()?;
        catalog.insert_pending(&NewSnapshot {
            id: id.into(),
            name: job.name.clone(),
            description: job.description.clone(),
            resources: job.resources.iter().map(|r| r.name.clone()).collect(),
            as_of: super::timestamp(job.as_of),
            retention: job.retention,
            job: Some(std::path::absolute(&job.path).unwrap_or_else(|_| job.path.clone()).display().to_string()),
        })?;
        Ok(Recorder { catalog, id: id.into() })
    }

    /// Whether the catalog records snapshot `id` as failed.
    pub fn is_failed(&self, id: &str) -> bool {
        self.catalog.get(id).is_ok_and(|r| r.id == id && r.status == super::SnapshotStatus::Failed)
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Creates the staging directory with `create` and records the snapshot in progress.
    /// Two ferry processes never create staging directories at the same moment (see
    /// `Catalog::set_in_progress`).
    pub fn stage<T, E: From<CatalogError>>(&mut self, create: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
        self.catalog.set_in_progress(&self.id, create)
    }

    /// Records how the run ended and hands its result back. A run that says it
    /// published is recorded `completed` only when the manifest and every part and file
    /// are found in place; otherwise it is recorded `failed` and the run fails.
    pub fn finish<T, E>(mut self, result: Result<T, E>, published_dir: impl FnOnce(&T) -> &Path) -> Result<T, E>
    where
        E: Display + From<CatalogError>,
    {
        match result {
            Ok(value) => {
                let dir = published_dir(&value);
                let reason = match disk::inspect_published(dir) {
                    Some(Ok(published)) => {
                        self.catalog.complete(&self.id, &published, "published")?;
                        return Ok(value);
                    }
                    Some(Err(reason)) => reason,
                    None => format!("{} has no manifest.json", dir.display()),
                };
                self.catalog.fail_at(&self.id, &reason, &super::timestamp(chrono::Utc::now()))?;
                Err(CatalogError::NotWhole { id: self.id.clone(), reason }.into())
            }
            Err(error) => {
                // The run's own error matters more than a catalog that cannot record it;
                // the next reconcile settles the entry from disk then.
                let _ = self.catalog.fail_at(&self.id, &error.to_string(), &super::timestamp(chrono::Utc::now()));
                Err(error)
            }
        }
    }
}
