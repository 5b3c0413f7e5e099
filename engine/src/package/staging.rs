//! Staging and atomic publish: a run writes into `<dir>/.staging-<id>/`, writes the
//! manifest there last, then renames the directory to `<dir>/<id>`. A crash at any
//! moment leaves either no snapshot directory or a complete one; leftovers are only
//! ever `.staging-*` directories, which the next run removes.
//!
//! Both the output root and the staging directory are held as capabilities
//! ([`ConfinedDir`]): every file of the snapshot is created, read, renamed and removed
//! by a name beneath them, never through a path that a swapped symlink could redirect.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::layout::{self, ProcessId, SnapshotLayout};
use super::{ConfinedDir, DELIVERY_RECORD, DeliveryRecord, MANIFEST, Manifest};

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
    root: ConfinedDir,
    dir: ConfinedDir,
    id: String,
    published: bool,
}

impl Staging {
    pub fn create(output_dir: &Path, snapshot_id: &str) -> Result<Self, StagingError> {
        Self::create_in(output_dir, snapshot_id, true)
    }

    /// A shard's staging directory in the shared snapshot directory `dir`. Other shards
    /// create theirs there at the same moment, so only this shard's own leftover (of a
    /// killed attempt) is removed, never another's that has no lock yet.
    pub fn create_shard(dir: &Path, shard: &str) -> Result<Self, StagingError> {
        Self::create_in(dir, shard, false)
    }

    fn create_in(output_dir: &Path, snapshot_id: &str, clean_all: bool) -> Result<Self, StagingError> {
        fn create_err(path: &Path) -> impl FnOnce(io::Error) -> StagingError + '_ {
            move |source| StagingError::Create { path: path.into(), source }
        }
        fs::create_dir_all(output_dir).map_err(create_err(output_dir))?;
        let root = ConfinedDir::open(output_dir).map_err(create_err(output_dir))?;
        let name = SnapshotLayout::staging_name(snapshot_id);
        if clean_all {
            clean_leftovers(&root);
        } else if !lock_alive(&root, &name) {
            let _ = root.remove_dir_all(&name);
        }
        let path = root.display(&name);
        root.dir().create_dir(&name).map_err(create_err(&path))?;
        let dir = ConfinedDir::open(&path).map_err(create_err(&path))?;
        let staging = Staging { root, dir, id: snapshot_id.into(), published: false };
        staging.write(layout::LOCK, ProcessId::current().to_lock_text().as_bytes())?;
        Ok(staging)
    }

    /// The staging directory's path, for messages and for readers outside the run.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The staging directory as a capability: where every file of the snapshot goes.
    pub fn files(&self) -> &ConfinedDir {
        &self.dir
    }

    /// Writes `name` durably.
    fn write(&self, name: &str, bytes: &[u8]) -> Result<(), StagingError> {
        let write = || -> io::Result<()> {
            let mut file = self.dir.create(name)?;
            file.write_all(bytes)?;
            file.sync_all()
        };
        write().map_err(|source| StagingError::Write { path: self.dir.display(name), source })
    }

    /// Writes `delivery.json` (durably): where the snapshot was uploaded and what.
    pub fn record_delivery(&self, record: &DeliveryRecord) -> Result<(), StagingError> {
        let mut text = serde_json::to_vec_pretty(record).expect("a delivery record serializes");
        text.push(b'\n');
        self.write(DELIVERY_RECORD, &text)
    }

    /// Writes `manifest.json.minisig` (the manifest's signature) before `publish`.
    pub fn add_signature(&self, signature: &str) -> Result<(), StagingError> {
        self.write(super::sign::SIGNATURE_FILE, signature.as_bytes())
    }

    /// Writes the manifest (durably) and renames the staging directory into place.
    pub fn publish(mut self, manifest: &Manifest) -> Result<PathBuf, StagingError> {
        let write_err = |source| StagingError::Write { path: self.dir.display(MANIFEST), source };
        self.dir.remove_file(layout::LOCK).map_err(write_err)?;
        self.write(layout::MANIFEST_TMP, &manifest.to_json())?;
        self.dir.rename(layout::MANIFEST_TMP, MANIFEST).and_then(|()| self.dir.sync()).map_err(write_err)?;
        let (from, to) = (SnapshotLayout::staging_name(&self.id), self.id.clone());
        self.root.dir().rename(&from, self.root.dir(), &to).map_err(|source| StagingError::Publish {
            from: self.root.display(&from),
            to: self.root.display(&to),
            source,
        })?;
        let _ = self.root.sync();
        self.published = true;
        Ok(self.root.display(&to))
    }
}

impl Staging {
    /// Publishes a shard (`ferry run --shard i/N`) into the shared snapshot directory
    /// (this staging's output root): the shard's manifests of earlier attempts go first,
    /// then every file of this shard's earlier attempts (their names hold `tag`), then
    /// this attempt's files and folders move in, and its shard manifest `name` is
    /// written last, so a shard manifest always lists files that are there.
    pub fn publish_shard(mut self, shard: &str, tag: &str, name: &str, manifest: &[u8]) -> Result<PathBuf, StagingError> {
        let root = self.root.path().to_path_buf();
        let shards = root.join(layout::SHARDS_DIR);
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StagingError::Write { path, source }
        };
        fs::create_dir_all(&shards).map_err(io(&shards))?;
        for old in fs::read_dir(&shards).map_err(io(&shards))?.flatten() {
            if old.file_name().to_string_lossy().starts_with(&format!("{shard}.")) {
                fs::remove_file(old.path()).map_err(io(&old.path()))?;
            }
        }
        for old in fs::read_dir(&root).map_err(io(&root))?.flatten() {
            if old.file_name().to_string_lossy().contains(tag) && old.file_type().is_ok_and(|t| t.is_file()) {
                fs::remove_file(old.path()).map_err(io(&old.path()))?;
            }
        }
        self.dir.remove_file(layout::LOCK).map_err(io(&self.dir.display(layout::LOCK)))?;
        move_into(self.dir.path(), &root)?;
        let tmp = shards.join(format!(".{name}.tmp"));
        let write = || -> io::Result<()> {
            let mut file = fs::File::create(&tmp)?;
            file.write_all(manifest)?;
            file.sync_all()?;
            fs::rename(&tmp, shards.join(name))?;
            fs::File::open(&shards)?.sync_all()
        };
        write().map_err(io(&shards.join(name)))?;
        let _ = fs::remove_dir_all(self.dir.path());
        self.published = true;
        Ok(shards.join(name))
    }
}

/// Moves every file under `from` to the same place under `to` (folders merge).
fn move_into(from: &Path, to: &Path) -> Result<(), StagingError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| StagingError::Write { path, source }
    };
    for entry in fs::read_dir(from).map_err(io(from))?.flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            fs::create_dir_all(&target).map_err(io(&target))?;
            move_into(&entry.path(), &target)?;
        } else {
            fs::rename(entry.path(), &target).map_err(|source| StagingError::Publish { from: entry.path(), to: target.clone(), source })?;
        }
    }
    Ok(())
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.published {
            let _ = self.root.remove_dir_all(&SnapshotLayout::staging_name(&self.id));
        }
    }
}

/// Removes the staging directories of runs that died in `dir` (a sharded snapshot's
/// directory: shards killed mid-run).
pub(crate) fn remove_dead_staging(dir: &Path) {
    if let Ok(dir) = ConfinedDir::open(dir) {
        clean_leftovers(&dir);
    }
}

/// Whether the staging directory `name` is locked by a live process.
fn lock_alive(root: &ConfinedDir, name: &str) -> bool {
    let lock = root.dir().read_to_string(Path::new(name).join(layout::LOCK)).ok();
    lock.as_deref().and_then(ProcessId::parse_lock_text).is_some_and(|p| p.is_alive())
}

/// Removes staging directories of runs that died. A staging directory still being
/// written by a live run is skipped: its lock names a live process (pid and start time,
/// so a reused pid does not keep a dead run's directory).
fn clean_leftovers(root: &ConfinedDir) {
    let Ok(names) = root.names() else { return };
    for name in names.iter().filter(|n| SnapshotLayout::staging_id(n).is_some()) {
        if !lock_alive(root, name) {
            let _ = root.remove_dir_all(name);
        }
    }
}
