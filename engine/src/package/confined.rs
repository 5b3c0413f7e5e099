//! A snapshot's directory as a capability (cap-std): every file in it is reached by a
//! name beneath it, resolved by the kernel relative to the directory's handle, so no
//! name — `..`, an absolute path, or a symlink swapped in between a check and an open —
//! can lead outside it. The staging directory a run writes, and the snapshot `verify`
//! reads (its manifest is untrusted input), are both opened this way.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cap_std::ambient_authority;
use cap_std::fs::{Dir, OpenOptions};

/// One directory, opened once; cheap to clone (the handle is shared).
#[derive(Clone)]
pub struct ConfinedDir {
    /// Where the directory was when it was opened: for messages only, never reopened.
    path: PathBuf,
    dir: Arc<Dir>,
}

impl std::fmt::Debug for ConfinedDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ConfinedDir({})", self.path.display())
    }
}

impl ConfinedDir {
    /// Opens `path` (the one ambient lookup; everything after is relative to it).
    pub fn open(path: &Path) -> io::Result<Self> {
        Ok(ConfinedDir { path: path.to_path_buf(), dir: Arc::new(Dir::open_ambient_dir(path, ambient_authority())?) })
    }

    /// The path the directory was opened at, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `name` as a path under [`Self::path`], for messages.
    pub fn display(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// The capability itself, for code that walks or opens subdirectories.
    pub fn dir(&self) -> &Dir {
        &self.dir
    }

    /// Creates (or truncates) the file `name`.
    pub fn create(&self, name: &str) -> io::Result<File> {
        Ok(self.dir.open_with(name, OpenOptions::new().write(true).create(true).truncate(true))?.into_std())
    }

    /// Opens the file `name` for reading.
    pub fn open_file(&self, name: &str) -> io::Result<File> {
        Ok(self.dir.open(name)?.into_std())
    }

    /// Opens `name` for reading without blocking on what is not a regular file (a FIFO
    /// swapped in would otherwise wait for a writer forever): the caller checks the
    /// opened handle's type. Reads from a regular file are unaffected.
    pub fn open_untrusted(&self, name: &str) -> io::Result<File> {
        let mut options = OpenOptions::new();
        options.read(true);
        #[cfg(unix)]
        cap_std::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
        Ok(self.dir.open_with(name, &options)?.into_std())
    }

    pub fn remove_file(&self, name: &str) -> io::Result<()> {
        self.dir.remove_file(name)
    }

    pub fn remove_dir_all(&self, name: &str) -> io::Result<()> {
        self.dir.remove_dir_all(name)
    }

    pub fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.dir.rename(from, &self.dir, to)
    }

    /// Names of the entries directly inside (those that are valid UTF-8).
    pub fn names(&self) -> io::Result<Vec<String>> {
        Ok(self.dir.entries()?.flatten().filter_map(|e| e.file_name().into_string().ok()).collect())
    }

    /// Removes the directory `name` and every empty directory under it, bottom up;
    /// directories that still hold files stay.
    pub fn remove_empty_dirs(&self, name: &str) {
        remove_empty(&self.dir, Path::new(name));
    }

    /// Flushes the directory's entries (new names, renames) to disk.
    pub fn sync(&self) -> io::Result<()> {
        File::open(&self.path)?.sync_all()
    }
}

fn remove_empty(root: &Dir, dir: &Path) {
    let Ok(entries) = root.read_dir(dir) else { return };
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            remove_empty(root, &dir.join(e.file_name()));
        }
    }
    let _ = root.remove_dir(dir);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_leave_the_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let inside = tmp.path().join("snapshot");
        std::fs::create_dir(&inside).unwrap();
        std::fs::write(tmp.path().join("secret"), b"outside").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(tmp.path().join("secret"), inside.join("link")).unwrap();
        let dir = ConfinedDir::open(&inside).unwrap();
        assert!(dir.open_file("../secret").is_err(), "`..` escapes");
        assert!(dir.open_file(tmp.path().join("secret").to_str().unwrap()).is_err(), "an absolute path escapes");
        #[cfg(unix)]
        assert!(dir.open_file("link").is_err(), "a symlink out escapes");
        assert!(dir.create("../planted").is_err(), "a file is created outside");
        assert!(!tmp.path().join("planted").exists());
        dir.create("ok").unwrap();
        assert!(inside.join("ok").is_file());
    }
}
