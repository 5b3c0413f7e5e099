//! Staging and atomic publish: a run writes into `<dir>/.staging-<id>/`, writes the
//! manifest there last, then renames the directory to `<dir>/<id>`. A crash at any
//! moment leaves either no snapshot directory or a complete one; leftovers are only
//! ever `.staging-*` directories, which the next run removes.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::layout::{self, ProcessId, SnapshotLayout};
use super::{DELIVERY_RECORD, DeliveryRecord, Manifest};

#[derive(Debug, thiserror::Error)]
pub enum StagingError {
    #[error("cannot create the output directory {path}: {source}; check that it is writable or change `[output] dir`")]
    Create { path: PathBuf, source: io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot publish {from} as {to}: {source}")]
    Publish { from: PathBuf, to: PathBuf, source: io::Error },
}

/// A snapshot being built. Dropped without `publish`, it removes itself.
pub struct Staging {
    dir: PathBuf,
    final_dir: PathBuf,
    published: bool,
}

impl Staging {
    pub fn create(output_dir: &Path, snapshot_id: &str) -> Result<Self, StagingError> {
        let create = |path: &Path| fs::create_dir_all(path).map_err(|source| StagingError::Create { path: path.into(), source });
        create(output_dir)?;
        clean_leftovers(output_dir);
        let layout = SnapshotLayout::new(output_dir);
        let dir = layout.staging_dir(snapshot_id);
        create(&dir)?;
        let lock = layout::lock_path(&dir);
        fs::write(&lock, ProcessId::current().to_lock_text()).map_err(|source| StagingError::Write { path: lock, source })?;
        Ok(Staging { dir, final_dir: layout.snapshot_dir(snapshot_id), published: false })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `delivery.json` (durably): where the snapshot was uploaded and what.
    pub fn record_delivery(&self, record: &DeliveryRecord) -> Result<(), StagingError> {
        let path = self.dir.join(DELIVERY_RECORD);
        let write = || -> io::Result<()> {
            let mut file = fs::File::create(&path)?;
            serde_json::to_writer_pretty(&mut file, record)?;
            file.write_all(b"\n")?;
            file.sync_all()
        };
        write().map_err(|source| StagingError::Write { path: path.clone(), source })
    }

    /// Writes the manifest (durably) and renames the staging directory into place.
    pub fn publish(mut self, manifest: &Manifest) -> Result<PathBuf, StagingError> {
        let path = layout::manifest_path(&self.dir);
        let tmp = layout::manifest_tmp_path(&self.dir);
        let write = || -> io::Result<()> {
            fs::remove_file(layout::lock_path(&self.dir))?;
            let mut file = fs::File::create(&tmp)?;
            file.write_all(&manifest.to_json())?;
            file.sync_all()?;
            fs::rename(&tmp, &path)?;
            fs::File::open(&self.dir)?.sync_all()
        };
        write().map_err(|source| StagingError::Write { path: path.clone(), source })?;
        fs::rename(&self.dir, &self.final_dir)
            .map_err(|source| StagingError::Publish { from: self.dir.clone(), to: self.final_dir.clone(), source })?;
        if let Some(parent) = self.final_dir.parent() {
            let _ = fs::File::open(parent).and_then(|d| d.sync_all());
        }
        self.published = true;
        Ok(self.final_dir.clone())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.published {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Removes staging directories of runs that died. A staging directory still being
/// written by a live run is skipped: its lock names a live process (pid and start time,
/// so a reused pid does not keep a dead run's directory).
fn clean_leftovers(output_dir: &Path) {
    let Ok(entries) = fs::read_dir(output_dir) else { return };
    for entry in entries.flatten() {
        if SnapshotLayout::staging_id(&entry.file_name().to_string_lossy()).is_none() {
            continue;
        }
        let lock = fs::read_to_string(layout::lock_path(&entry.path())).ok();
        let alive = lock.as_deref().and_then(ProcessId::parse_lock_text).is_some_and(|p| p.is_alive());
        if !alive {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}
