//! Every name in an output root and in a snapshot, in one place: the published
//! snapshot directory, its staging directory and lock, the manifest, tar parts, and a
//! resource's files. The run, the catalog, `verify` and S3 delivery all ask here, so a
//! name is spelled once.

use std::path::{Path, PathBuf};

/// The manifest, written last into a snapshot (locally and in S3).
pub const MANIFEST: &str = "manifest.json";
/// Where the manifest is written before its rename.
pub(crate) const MANIFEST_TMP: &str = ".manifest.json.tmp";
/// A staging directory's lock: the pid and start time of the run writing it.
pub(crate) const LOCK: &str = ".pid";
const STAGING_PREFIX: &str = ".staging-";
/// Attachment resources write their records (the index of their files) under this
/// suffix, beside the folder of the files themselves.
const INDEX_SUFFIX: &str = "_index";

/// The names of one output root.
#[derive(Debug, Clone)]
pub struct SnapshotLayout {
    root: PathBuf,
}

impl SnapshotLayout {
    pub fn new(root: &Path) -> Self {
        SnapshotLayout { root: root.to_path_buf() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A published snapshot's directory.
    pub fn snapshot_dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Where a snapshot is built before it is published.
    pub fn staging_dir(&self, id: &str) -> PathBuf {
        self.root.join(Self::staging_name(id))
    }

    /// The name of a snapshot's staging directory in its output root.
    pub fn staging_name(id: &str) -> String {
        format!("{STAGING_PREFIX}{id}")
    }

    /// The snapshot id a staging directory's name holds, if it is one.
    pub fn staging_id(name: &str) -> Option<&str> {
        name.strip_prefix(STAGING_PREFIX)
    }
}

/// The folder of a sharded snapshot holding each shard's manifest
/// (`shards/shard-0003-of-0004.<attempt>.json`), beside the parts; `assemble` reads them.
pub const SHARDS_DIR: &str = "shards";

/// One worker's place in a sharded run: `index` of `count` (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// `shard-0003-of-0004`: the shard's staging directory and manifest name.
    pub fn name(&self) -> String {
        format!("shard-{:04}-of-{:04}", self.index, self.count)
    }

    /// `shard0003of0004`: in the names of the shard's files and parts, so shards never
    /// write the same name and a rerun finds its own files.
    pub fn tag(&self) -> String {
        format!("shard{:04}of{:04}", self.index, self.count)
    }

    /// The shard manifest's name for one attempt.
    pub fn manifest_name(&self, attempt: &str) -> String {
        format!("{}.{attempt}.json", self.name())
    }

    /// `(shard, attempt)` from a shard manifest's name.
    pub fn parse_manifest_name(name: &str) -> Option<(Shard, String)> {
        let rest = name.strip_prefix("shard-")?.strip_suffix(".json")?;
        let (index, rest) = rest.split_once("-of-")?;
        let (count, attempt) = rest.split_once('.')?;
        let shard = Shard { index: index.parse().ok()?, count: count.parse().ok()? };
        Some((shard, attempt.to_string()))
    }
}

/// A shard's record files: `NAME.shard0003of0004`, so the stem stays unique per shard.
pub fn shard_stem(stem: &str, shard: Option<Shard>) -> String {
    match shard {
        Some(s) => format!("{stem}.{}", s.tag()),
        None => stem.to_string(),
    }
}

/// `dir/manifest.json`.
pub fn manifest_path(snapshot_dir: &Path) -> PathBuf {
    snapshot_dir.join(MANIFEST)
}

/// `snapshot_{kind}_part{N}_{stamp}.tar`, ION's part names.
pub fn part_name(kind: &str, number: usize, stamp: &str) -> String {
    format!("snapshot_{kind}_part{number}_{stamp}.tar")
}

/// The stem of a resource's record files: its name, or `<name>_index` for a resource
/// that exports attachments (its records index the files).
pub fn records_stem(resource: &str, attachments: bool) -> String {
    if attachments { format!("{resource}{INDEX_SUFFIX}") } else { resource.to_string() }
}

/// The folder a resource's attachment files are written under.
pub fn attachments_dir(resource: &str) -> &str {
    resource
}

/// A resource's file names: `NAME.EXT`, or numbered `NAME-NNNNN.EXT` when split.
#[derive(Debug, Clone)]
pub struct FileNames {
    stem: String,
    /// `avro`, `csv.gz`, ...
    ext: String,
}

impl FileNames {
    pub fn new(stem: &str, extension: &str, gzip: bool) -> Self {
        FileNames { stem: stem.to_string(), ext: format!("{extension}{}", if gzip { ".gz" } else { "" }) }
    }

    /// The only file of an unsplit resource.
    pub fn whole(&self) -> String {
        format!("{}.{}", self.stem, self.ext)
    }

    /// The `n`th (1-based) file of a split resource.
    pub fn numbered(&self, n: usize) -> String {
        format!("{}-{n:05}.{}", self.stem, self.ext)
    }

    /// Whether `name` is one of this resource's files, whole or numbered.
    pub fn owns(&self, name: &str) -> bool {
        let Some(stem) = name.strip_suffix(&self.ext).and_then(|s| s.strip_suffix('.')) else { return false };
        stem == self.stem
            || stem
                .strip_prefix(self.stem.as_str())
                .and_then(|rest| rest.strip_prefix('-'))
                .is_some_and(|n| n.len() == 5 && n.bytes().all(|b| b.is_ascii_digit()))
    }
}

/// A process, named so that a reused pid is not mistaken for it: the pid and its start
/// time (clock ticks after boot, `/proc/PID/stat` field 22).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessId {
    pub pid: u32,
    pub start: Option<u64>,
}

impl ProcessId {
    pub fn current() -> Self {
        Self::of(std::process::id())
    }

    /// Another process (a child this one started), with its start time.
    pub fn of(pid: u32) -> Self {
        ProcessId { pid, start: process_start(pid) }
    }

    /// Whether that very process is still running: not exited, not a zombie, and the
    /// pid not taken over by another process since.
    pub fn is_alive(&self) -> bool {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)) else { return false };
        // A killed process its parent has not reaped yet is a zombie: dead all the same.
        let state = stat.rfind(')').and_then(|i| stat[i + 1..].split_whitespace().next());
        if matches!(state, Some("Z" | "X")) {
            return false;
        }
        match (self.start, process_start(self.pid)) {
            (Some(recorded), Some(now)) => recorded == now,
            // Without a recorded start time, a live pid is taken at its word.
            _ => true,
        }
    }

    /// `"pid start"` (or `"pid"`), as a lock file holds it.
    pub fn to_lock_text(self) -> String {
        match self.start {
            Some(start) => format!("{} {start}", self.pid),
            None => self.pid.to_string(),
        }
    }

    pub fn parse_lock_text(text: &str) -> Option<Self> {
        let mut words = text.split_whitespace();
        let pid = words.next()?.parse().ok()?;
        let start = words.next().and_then(|s| s.parse().ok());
        Some(ProcessId { pid, start })
    }
}

/// The process's start time, `/proc/PID/stat` field 22.
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses; fields after it don't.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_own_only_their_files() {
        let names = FileNames::new("transactions", "avro", true);
        assert_eq!(names.whole(), "transactions.avro.gz");
        assert_eq!(names.numbered(7), "transactions-00007.avro.gz");
        assert!(names.owns("transactions.avro.gz") && names.owns("transactions-00007.avro.gz"));
        for other in
            ["transactions.avro", "transactions-7.avro.gz", "transactions_index.avro.gz", "transactions-0000x.avro.gz", "users.avro.gz"]
        {
            assert!(!names.owns(other), "{other}");
        }
    }

    #[test]
    fn a_reused_pid_is_not_alive() {
        let me = ProcessId::current();
        assert!(me.is_alive());
        assert_eq!(ProcessId::parse_lock_text(&me.to_lock_text()), Some(me));
        let reused = ProcessId { start: me.start.map(|s| s + 1), ..me };
        assert!(!reused.is_alive(), "same pid, another start time: another process");
        assert!(!ProcessId { pid: u32::MAX - 1, start: None }.is_alive());
    }
}
