//! Attachments: the files a platform's users uploaded, every version of each, streamed
//! from the blob store into the snapshot.
//!
//! A plugin that imports `ferry:plugin/blobs` names, per version, the attachment, the
//! file name and the blob; the [`AttachmentWriter`] here decides the archive path (see
//! [`naming`]), streams the blob in fixed-size chunks while hashing it, checks size and
//! sha256 against the version record, and writes it under the staging directory:
//!
//! ```text
//! <resource>/<UID>_<file name>/<SID>_<version>     one per version, byte-identical to its blob
//! <resource>/versions/<UID>_<file name>.json       the attachment's version list (from the plugin)
//! ```
//!
//! The run then packs them into `snapshot_attachments_partN_<stamp>.tar` parts. The
//! plugin's records (the index, `<resource>_index.<ext>`) map every archived path back
//! to its attachment, owner and sha256. When the run packs tar parts, members are not
//! staged as files but appended to the resource's spool (`package::spool`), which the
//! packer reads in order.

pub mod naming;

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use crate::package::ConfinedDir;
use crate::package::spool::{SPOOL, SpoolWriter};
use crate::runtime::{AttachmentFailure, AttachmentSink, AttachmentVersion, Stored};
use crate::source::{BlobError, BlobStore};

/// Bytes moved per read: large enough for full-speed sequential I/O, small enough that a
/// 2 GiB blob costs the same memory as a 2 KiB one.
pub const CHUNK_BYTES: usize = 1 << 20;

/// Streams one resource's attachments into `<staging>/<resource>/`.
pub struct AttachmentWriter {
    store: Arc<dyn BlobStore>,
    /// The staging directory, as a capability: members are created beneath it, never
    /// through a path that could lead elsewhere.
    staging: ConfinedDir,
    root: String,
    /// uid -> (file name, folder): one folder per attachment, one name per uid.
    folders: HashMap<String, (String, String)>,
    /// Case-folded id token -> uid, to keep tokens distinct on case-insensitive disks.
    tokens: HashMap<String, String>,
    /// (uid, sid) already copied, and uids whose versions JSON is written.
    copied: HashSet<(String, String)>,
    versions: HashSet<String>,
    buf: Vec<u8>,
    /// Everything written, in order: member paths relative to the staging directory.
    pub files: Vec<Stored>,
    members: Members,
    /// Where spooled members go, created with the first one.
    spool: Option<SpoolWriter>,
}

/// How copies are staged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Members {
    /// A file per member, which stays in the snapshot as it is (`archive = "none"`).
    Loose,
    /// Every member in the resource's spool, in order, for the packer to put in tar
    /// parts (see `package::spool`).
    Spooled,
}

/// Where the member being copied goes.
enum Dest {
    File(PathBuf, File),
    /// In the spool, from this offset.
    Spool(u64),
}

impl AttachmentWriter {
    pub fn new(store: Arc<dyn BlobStore>, staging: &ConfinedDir, resource: &str, members: Members) -> Self {
        AttachmentWriter {
            store,
            staging: staging.clone(),
            root: crate::package::layout::attachments_dir(resource).to_string(),
            folders: HashMap::new(),
            tokens: HashMap::new(),
            copied: HashSet::new(),
            versions: HashSet::new(),
            buf: Vec::new(),
            files: Vec::new(),
            members,
            spool: None,
        }
    }

    /// The attachment's folder, assigned on first sight of its uid.
    fn folder(&mut self, uid: &str, file_name: &str) -> Result<String, AttachmentFailure> {
        if let Some((name, folder)) = self.folders.get(uid) {
            if name != file_name {
                return Err(AttachmentFailure::Refused(format!(
                    "attachment {uid} was named {name:?} and now {file_name:?}; an attachment has one file name"
                )));
            }
            return Ok(folder.clone());
        }
        let mut token = naming::id_token(uid);
        // Ids that differ only by ASCII case would share a folder on a case-insensitive
        // disk: later ones get `~2`, `~3`, ... (deterministic: the plugin reads in key order).
        let mut n = 1;
        while self.tokens.get(&naming::fold(&token)).is_some_and(|other| other != uid) {
            n += 1;
            token = format!("{}~{n}", naming::id_token(uid));
        }
        self.tokens.insert(naming::fold(&token), uid.to_string());
        let folder = naming::folder(&token, file_name);
        self.folders.insert(uid.to_string(), (file_name.to_string(), folder.clone()));
        Ok(folder)
    }

    /// Where member `member` of `size` bytes goes: its own file, or the spool.
    fn open_member(&mut self, member: &str, size: u64) -> Result<Dest, AttachmentFailure> {
        if self.members == Members::Loose {
            let (path, file) = self.create(member)?;
            return Ok(Dest::File(path, file));
        }
        let output = |e: std::io::Error| AttachmentFailure::Output(format!("staging attachment {member}: {e}"));
        if self.spool.is_none() {
            self.staging.dir().create_dir_all(&self.root).map_err(output)?;
            self.spool = Some(SpoolWriter::create(&self.staging, &format!("{}/{SPOOL}", self.root)).map_err(output)?);
        }
        let spool = self.spool.as_mut().expect("created above");
        Ok(Dest::Spool(spool.begin(member, size).map_err(output)?))
    }

    fn write_member(&mut self, dest: &mut Dest, data: &[u8]) -> std::io::Result<()> {
        match dest {
            Dest::File(_, file) => file.write_all(data),
            Dest::Spool(_) => self.spool.as_mut().expect("a spooled member has its spool").write_all(data),
        }
    }

    /// Removes a member whose bytes turned out wrong.
    fn drop_member(&mut self, dest: Dest) {
        match dest {
            Dest::File(path, file) => {
                drop(file);
                let _ = std::fs::remove_file(path);
            }
            Dest::Spool(start) => {
                let _ = self.spool.as_mut().map(|s| s.rollback(start));
            }
        }
    }

    /// Makes a member whole: a loose file is synced, as nothing rewrites it later.
    fn close_member(&self, dest: &Dest) -> std::io::Result<()> {
        match dest {
            Dest::File(_, file) => file.sync_all(),
            Dest::Spool(_) => Ok(()),
        }
    }

    /// Writes out the spool so the packer can read it; call once the plugin is done.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.spool.as_mut().map_or(Ok(()), SpoolWriter::flush)
    }

    fn create(&mut self, member: &str) -> Result<(PathBuf, File), AttachmentFailure> {
        let path = self.staging.display(member);
        let output = |e: std::io::Error| AttachmentFailure::Output(format!("writing {}: {e}", path.display()));
        let dir = self.staging.dir();
        dir.create_dir_all(Path::new(member).parent().expect("members have a folder")).map_err(output)?;
        let file = dir.open_with(member, cap_std::fs::OpenOptions::new().write(true).create_new(true)).map_err(output)?;
        Ok((path, file.into_std()))
    }
}

impl AttachmentSink for AttachmentWriter {
    fn copy(&mut self, v: &AttachmentVersion) -> Result<Stored, AttachmentFailure> {
        let (uid, sid) = (&v.uid, &v.sid);
        if !self.copied.insert((uid.clone(), sid.clone())) {
            return Err(AttachmentFailure::Refused(format!("attachment {uid} version {sid} was copied twice; copy each version once")));
        }
        let folder = self.folder(uid, &v.file_name)?;
        let member = format!("{}/{folder}/{}", self.root, naming::version_file(sid, v.version));
        let blob = |e: BlobError| match e {
            BlobError::Missing { .. } => AttachmentFailure::Missing(format!("attachment {uid} version {sid}: {e}")),
            BlobError::Io { .. } => AttachmentFailure::Output(format!("attachment {uid} version {sid}: {e}")),
            _ => AttachmentFailure::Refused(format!("attachment {uid} version {sid}: {e}")),
        };
        let (mut reader, len) = self.store.open(&v.blob_key).map_err(blob)?;
        if let Some(len) = len
            && len != v.size
        {
            return Err(AttachmentFailure::Mismatch(format!(
                "attachment {uid} version {sid}: blob `{}` holds {len} bytes, but its version record says {}; the blob or the record is corrupt",
                v.blob_key, v.size
            )));
        }
        let mut dest = self.open_member(&member, v.size)?;
        let output = |e: std::io::Error| AttachmentFailure::Output(format!("writing attachment {uid} version {sid}: {e}"));
        let mut buf = std::mem::take(&mut self.buf);
        buf.resize(CHUNK_BYTES, 0);
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let copied = loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(blob(BlobError::Io { key: v.blob_key.clone(), store: self.store.describe(), source: e })),
            };
            hasher.update(&buf[..n]);
            if let Err(e) = self.write_member(&mut dest, &buf[..n]) {
                break Err(output(e));
            }
            size += n as u64;
        };
        self.buf = buf;
        let sha256 = hex::encode(hasher.finalize());
        let copied = copied.and_then(|()| {
            if size != v.size || !sha256.eq_ignore_ascii_case(&v.sha256) {
                return Err(AttachmentFailure::Mismatch(format!(
                    "attachment {uid} version {sid}: blob `{}` has {size} bytes with sha256 {sha256}, but its version record says {} bytes with sha256 {}; the blob or the record is corrupt",
                    v.blob_key, v.size, v.sha256
                )));
            }
            self.close_member(&dest).map_err(output)
        });
        if let Err(e) = copied {
            self.drop_member(dest);
            return Err(e);
        }
        let stored = Stored { path: member, size, sha256 };
        self.files.push(stored.clone());
        Ok(stored)
    }

    fn write_versions(&mut self, uid: &str, file_name: &str, json: &[u8]) -> Result<Stored, AttachmentFailure> {
        if !self.versions.insert(uid.to_string()) {
            return Err(AttachmentFailure::Refused(format!("the versions of attachment {uid} were written twice; write them once")));
        }
        if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(json) {
            return Err(AttachmentFailure::Refused(format!("the versions of attachment {uid} are not JSON ({e}); send a JSON document")));
        }
        let folder = self.folder(uid, file_name)?;
        let member = format!("{}/versions/{folder}.json", self.root);
        let mut dest = self.open_member(&member, json.len() as u64)?;
        let output = |e: std::io::Error| AttachmentFailure::Output(format!("writing the versions of attachment {uid}: {e}"));
        self.write_member(&mut dest, json).and_then(|()| self.close_member(&dest)).map_err(output)?;
        let stored = Stored { path: member, size: json.len() as u64, sha256: hex::encode(Sha256::digest(json)) };
        self.files.push(stored.clone());
        Ok(stored)
    }
}

/// Lets the run keep a handle on the writer while the runtime drives it.
pub struct SharedWriter(pub Arc<Mutex<AttachmentWriter>>);

impl AttachmentSink for SharedWriter {
    fn copy(&mut self, v: &AttachmentVersion) -> Result<Stored, AttachmentFailure> {
        self.0.lock().expect("the writer never panics while locked").copy(v)
    }

    fn write_versions(&mut self, uid: &str, file_name: &str, json: &[u8]) -> Result<Stored, AttachmentFailure> {
        self.0.lock().expect("the writer never panics while locked").write_versions(uid, file_name, json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::DirBlobStore;

    fn version(uid: &str, name: &str, sid: &str, key: &str, data: &[u8]) -> AttachmentVersion {
        AttachmentVersion {
            uid: uid.into(),
            file_name: name.into(),
            sid: sid.into(),
            version: 1,
            blob_key: key.into(),
            size: data.len() as u64,
            sha256: hex::encode(Sha256::digest(data)),
        }
    }

    #[test]
    fn copies_check_bytes_and_keep_names_apart() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = dir.path().join("blobs");
        std::fs::create_dir_all(&blobs).unwrap();
        std::fs::write(blobs.join("a"), b"alpha").unwrap();
        let staging = dir.path().join("staging");
        std::fs::create_dir(&staging).unwrap();
        let store = Arc::new(DirBlobStore::open(&blobs).unwrap());
        let mut w = AttachmentWriter::new(store, &ConfinedDir::open(&staging).unwrap(), "attachments", Members::Loose);

        let s = w.copy(&version("ATT-1", "report.pdf", "V1", "a", b"alpha")).unwrap();
        assert_eq!(s.path, "attachments/ATT-1_report.pdf/V1_1");
        assert_eq!(std::fs::read(staging.join(&s.path)).unwrap(), b"alpha");
        // Same name, ids differing only by case: distinct folders.
        let t = w.copy(&version("att-1", "REPORT.pdf", "V2", "a", b"alpha")).unwrap();
        assert_eq!(t.path, "attachments/att-1~2_REPORT.pdf/V2_1");
        assert!(matches!(w.copy(&version("ATT-1", "report.pdf", "V1", "a", b"alpha")), Err(AttachmentFailure::Refused(_))));

        let missing = w.copy(&version("ATT-2", "x", "V3", "nope", b"")).unwrap_err();
        assert!(matches!(&missing, AttachmentFailure::Missing(m) if m.contains("ATT-2") && m.contains("V3")), "{missing}");
        let mut bad = version("ATT-3", "x", "V4", "a", b"alpha");
        bad.sha256 = hex::encode(Sha256::digest(b"other"));
        let e = w.copy(&bad).unwrap_err();
        assert!(matches!(&e, AttachmentFailure::Mismatch(m) if m.contains("ATT-3") && m.contains("V4")), "{e}");
        assert!(!staging.join("attachments/ATT-3_x/V4_1").exists(), "a mismatched copy must not stay");

        let j = w.write_versions("ATT-1", "report.pdf", b"[]").unwrap();
        assert_eq!(j.path, "attachments/versions/ATT-1_report.pdf.json");
        assert!(matches!(w.write_versions("ATT-9", "y", b"{not json"), Err(AttachmentFailure::Refused(_))));
        assert_eq!(w.files.len(), 3);
    }

    /// Spooled members come back from the spool in the writer's order, byte for byte; a
    /// copy whose bytes are wrong leaves nothing in it.
    #[test]
    fn spooled_copies_read_back_in_order_without_the_refused_one() {
        use crate::package::spool::SpoolReader;
        let dir = tempfile::tempdir().unwrap();
        let blobs = dir.path().join("blobs");
        std::fs::create_dir_all(&blobs).unwrap();
        let big: Vec<u8> = (0..3 * CHUNK_BYTES as u32 + 7).map(|i| (i % 251) as u8).collect();
        std::fs::write(blobs.join("a"), b"alpha").unwrap();
        std::fs::write(blobs.join("big"), &big).unwrap();
        std::fs::create_dir(dir.path().join("staging")).unwrap();
        let staging = ConfinedDir::open(&dir.path().join("staging")).unwrap();
        let store = Arc::new(DirBlobStore::open(&blobs).unwrap());
        let mut w = AttachmentWriter::new(store, &staging, "attachments", Members::Spooled);
        w.copy(&version("ATT-1", "a.txt", "V1", "a", b"alpha")).unwrap();
        let mut wrong = version("ATT-2", "big.bin", "V2", "big", &big);
        wrong.sha256 = hex::encode(Sha256::digest(b"other"));
        assert!(matches!(w.copy(&wrong), Err(AttachmentFailure::Mismatch(_))));
        w.copy(&version("ATT-2", "big.bin", "V3", "big", &big)).unwrap();
        w.write_versions("ATT-1", "a.txt", b"[1]").unwrap();
        w.flush().unwrap();
        assert!(!dir.path().join("staging/attachments/ATT-1_a.txt").exists(), "a spooled member has no file of its own");

        let mut spool = SpoolReader::open(&staging, &format!("attachments/{SPOOL}")).unwrap();
        let want: [&[u8]; 3] = [b"alpha", &big, b"[1]"];
        for (stored, want) in w.files.iter().zip(want) {
            let mut got = Vec::new();
            spool.next_member(&stored.path, stored.size).unwrap().read_to_end(&mut got).unwrap();
            assert!(got == want, "{}: {} bytes read back", stored.path, got.len());
        }
        assert!(spool.at_end().unwrap());
    }
}
