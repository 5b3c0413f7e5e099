//! `ferry verify DIR`: checks a snapshot the way its recipient would, with nothing but
//! the snapshot: every part's size and sha256 and its end-of-archive blocks, every member
//! in exactly the part the manifest names, every file's size and sha256, gzip integrity,
//! and every Avro/CSV/JSONL/Parquet file decoded to count its records. Everything streams.
//!
//! The manifest is untrusted input: every file it names is opened through the snapshot
//! directory's capability ([`ConfinedDir`]), so neither a crafted name nor a symlink
//! swapped in while `verify` runs can make it read outside the snapshot.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::encrypt::{AGE_SUFFIX, Identities};
use super::sign::{SIGNATURE_FILE, VerifyingKey};
use super::{ConfinedDir, FileEntry, MANIFEST, MANIFEST_FORMAT_VERSION, Manifest, Plaintext, Status};

/// One thing checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub ok: bool,
    pub subject: String,
    pub detail: String,
}

/// Everything `verify` checked, in order.
#[derive(Debug, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
    /// The manifest's status (an incomplete snapshot can still be intact).
    pub status: Option<Status>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.findings.iter().all(|f| f.ok)
    }

    pub(crate) fn push(&mut self, ok: bool, subject: impl Into<String>, detail: impl Into<String>) {
        self.findings.push(Finding { ok, subject: subject.into(), detail: detail.into() });
    }
}

/// The largest manifest `verify` reads: a manifest lists files, a few hundred bytes
/// each, so 64 MiB is hundreds of thousands of files; a bigger one is refused before it
/// fills memory.
pub const MAX_MANIFEST_BYTES: u64 = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("{path} cannot be read ({source}); is {} a ferry snapshot directory?", path.parent().map(|p| p.display().to_string()).unwrap_or_default())]
    Manifest { path: PathBuf, source: io::Error },
    #[error("{path} is not a regular file (a symlink, directory, device or FIFO); a snapshot's manifest is a plain file")]
    ManifestNotAFile { path: PathBuf },
    #[error("{path} is larger than {MAX_MANIFEST_BYTES} bytes, more than any ferry manifest; it is not one")]
    ManifestTooLarge { path: PathBuf },
    #[error("{path} is not a ferry manifest: {source}")]
    ManifestJson { path: PathBuf, source: serde_json::Error },
}

/// Hashes and counts what a reader hands out.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Decodes a file's records and returns how many there are.
fn count_records(path: &str, raw: impl Read) -> Result<u64, String> {
    let (plain, gz): (Box<dyn Read>, bool) = match path.strip_suffix(".gz") {
        Some(_) => (Box::new(flate2::read::MultiGzDecoder::new(raw)), true),
        None => (Box::new(raw), false),
    };
    let name = path.strip_suffix(".gz").unwrap_or(path);
    let what = |e: &dyn std::fmt::Display| if gz { format!("gzip or content is corrupt: {e}") } else { format!("content is corrupt: {e}") };
    let split = name.rsplit_once('.').map(|(_, ext)| ext).unwrap_or("");
    match split {
        "avro" => {
            let reader = apache_avro::Reader::new(plain).map_err(|e| what(&e))?;
            let mut n = 0;
            for record in reader {
                record.map_err(|e| what(&e))?;
                n += 1;
            }
            Ok(n)
        }
        "csv" => {
            let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(plain);
            let mut n = 0;
            let mut record = csv::ByteRecord::new();
            while reader.read_byte_record(&mut record).map_err(|e| what(&e))? {
                n += 1;
            }
            Ok(n)
        }
        "jsonl" => {
            let mut n = 0;
            for line in BufReader::new(plain).lines() {
                let line = line.map_err(|e| what(&e))?;
                serde_json::from_str::<serde::de::IgnoredAny>(&line).map_err(|e| what(&e))?;
                n += 1;
            }
            Ok(n)
        }
        "parquet" => count_parquet(plain).map_err(|e| what(&e)),
        other => Err(format!("unknown file type .{other}")),
    }
}

/// Decodes every row of a Parquet file. Its footer is at the end, so the stream is staged
/// to an unnamed temporary file (disk bounded by the file's size, memory by a page); the
/// rows decoded must also match the footer's count.
fn count_parquet(mut plain: impl Read) -> Result<u64, String> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let mut staged = tempfile::tempfile().map_err(|e| format!("cannot stage the file in the temporary directory: {e}"))?;
    io::copy(&mut plain, &mut staged).map_err(|e| e.to_string())?;
    let reader = SerializedFileReader::new(staged).map_err(|e| e.to_string())?;
    let footer = reader.metadata().file_metadata().num_rows();
    let mut n = 0u64;
    for row in reader.get_row_iter(None).map_err(|e| e.to_string())? {
        row.map_err(|e| e.to_string())?;
        n += 1;
    }
    if i64::try_from(n).ok() != Some(footer) {
        return Err(format!("{n} rows decoded, the footer says {footer}"));
    }
    Ok(n)
}

/// Checks one file's bytes against its manifest entry.
fn check_file(report: &mut Report, subject: String, entry: &FileEntry, raw: impl Read) {
    let mut hashing = Hashing { inner: raw, hasher: Sha256::new(), bytes: 0 };
    // An attachment is the bytes as uploaded: size and sha256 are all there is to check.
    let counted = if entry.is_attachment() { Ok(entry.records) } else { count_records(&entry.path, &mut hashing) };
    // Whatever the decoder left unread still counts toward the hash and size.
    let drained = io::copy(&mut hashing, &mut io::sink());
    let sha = hex::encode(hashing.hasher.finalize());
    let mut problems = Vec::new();
    if let Err(e) = drained {
        problems.push(format!("read failed: {e}"));
    }
    if hashing.bytes != entry.bytes {
        problems.push(format!("{} bytes, manifest says {}", hashing.bytes, entry.bytes));
    }
    if sha != entry.sha256 {
        problems.push(format!("sha256 {sha}, manifest says {}", entry.sha256));
    }
    match counted {
        Ok(n) if n != entry.records => problems.push(format!("{n} records, manifest says {}", entry.records)),
        Ok(_) => {}
        Err(e) => problems.push(e),
    }
    if problems.is_empty() {
        report.push(true, subject, format!("{} records, {} bytes, sha256 ok", entry.records, entry.bytes));
    } else {
        report.push(false, subject, problems.join("; "));
    }
}

/// The size and sha256 of a file's first `max + 1` bytes (one more than stated, so a
/// longer file shows as one).
fn sha256_file(file: File, max: u64) -> io::Result<(u64, String)> {
    let mut h = Hashing { inner: file.take(max.saturating_add(1)), hasher: Sha256::new(), bytes: 0 };
    io::copy(&mut h, &mut io::sink())?;
    Ok((h.bytes, hex::encode(h.hasher.finalize())))
}

/// Whether a tar file ends with its two zero end-of-archive blocks.
fn ends_with_end_blocks(mut f: File) -> io::Result<bool> {
    let len = f.metadata()?.len();
    if len < 1024 {
        return Ok(false);
    }
    f.seek(SeekFrom::End(-1024))?;
    let mut tail = vec![0u8; 1024];
    f.read_exact(&mut tail)?;
    Ok(tail.iter().all(|&b| b == 0))
}

/// The manifest's bytes: a regular file (not a symlink, nor a device that never ends),
/// at most [`MAX_MANIFEST_BYTES`].
fn read_manifest(dir: &ConfinedDir) -> Result<Vec<u8>, VerifyError> {
    let path = dir.display(MANIFEST);
    let io_err = |source| VerifyError::Manifest { path: path.clone(), source };
    let not_a_file = || VerifyError::ManifestNotAFile { path: path.clone() };
    if dir.dir().symlink_metadata(MANIFEST).map_err(io_err)?.is_symlink() {
        return Err(not_a_file());
    }
    let file = dir.open_untrusted(MANIFEST).map_err(io_err)?;
    // The type of what was opened, not of what a name pointed at a moment before.
    if !file.metadata().map_err(io_err)?.is_file() {
        return Err(not_a_file());
    }
    let mut text = Vec::new();
    file.take(MAX_MANIFEST_BYTES + 1).read_to_end(&mut text).map_err(io_err)?;
    if text.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(VerifyError::ManifestTooLarge { path });
    }
    Ok(text)
}

/// Opens a file the manifest names, checked as a recipient must check a snapshot it does
/// not trust: the name is a plain relative path with no symlink on the way, the open
/// itself is confined to the snapshot directory (a symlink swapped in after the check
/// still cannot lead out), and what was opened is a regular file, not a device
/// (`/dev/zero` never ends). Returns the file and its size.
fn resolve(dir: &ConfinedDir, name: &str) -> Result<(File, u64), String> {
    use std::path::Component;
    let plain = !name.is_empty() && !name.contains('\0') && Path::new(name).components().all(|c| matches!(c, Component::Normal(_)));
    if !plain {
        return Err(format!("the manifest names {name:?}, which leaves the snapshot directory or is not a plain relative path; refused"));
    }
    let unreadable = |e: io::Error| format!("is in the manifest but cannot be read: {e}");
    let mut path = PathBuf::new();
    let mut parts = Path::new(name).components().peekable();
    while let Some(part) = parts.next() {
        path.push(part);
        let meta = dir.dir().symlink_metadata(&path).map_err(unreadable)?;
        if meta.is_symlink() {
            return Err("is a symlink; a snapshot holds only regular files, refused".into());
        }
        if parts.peek().is_none() && !meta.is_file() {
            return Err("is not a regular file (a directory, device or FIFO); refused".into());
        }
    }
    let file = dir.open_untrusted(name).map_err(unreadable)?;
    let meta = file.metadata().map_err(unreadable)?;
    if !meta.is_file() {
        return Err("is not a regular file (a directory, device or FIFO); refused".into());
    }
    Ok((file, meta.len()))
}

/// Opens a snapshot directory for reading.
fn open_snapshot(dir: &Path) -> Result<ConfinedDir, VerifyError> {
    ConfinedDir::open(dir).map_err(|source| VerifyError::Manifest { path: dir.join(MANIFEST), source })
}

/// Reads a snapshot's manifest, checked as `verify` checks it.
pub(crate) fn load_manifest(dir: &Path) -> Result<Manifest, VerifyError> {
    let text = read_manifest(&open_snapshot(dir)?)?;
    serde_json::from_slice(&text).map_err(|source| VerifyError::ManifestJson { path: dir.join(MANIFEST), source })
}

pub fn verify(dir: &Path) -> Result<Report, VerifyError> {
    verify_with(dir, &Keys::default())
}

/// What the recipient holds beyond the snapshot (`ferry verify --identity/--key`).
#[derive(Default)]
pub struct Keys {
    /// Decrypts encrypted parts and files, so their content is checked too.
    pub identity: Option<Identities>,
    /// The signer's public key: `manifest.json.minisig` must verify with it.
    pub key: Option<VerifyingKey>,
}

/// [`verify`], plus the signature check with `keys.key` and the content of encrypted
/// parts and files with `keys.identity`.
pub fn verify_with(path: &Path, keys: &Keys) -> Result<Report, VerifyError> {
    let dir = &open_snapshot(path)?;
    let text = read_manifest(dir)?;
    let manifest: Manifest =
        serde_json::from_slice(&text).map_err(|source| VerifyError::ManifestJson { path: dir.display(MANIFEST), source })?;
    let mut report = Report { status: Some(manifest.status), ..Report::default() };
    if let Some(key) = &keys.key {
        check_signature(&mut report, path, key);
    }
    if manifest.format_version > MANIFEST_FORMAT_VERSION {
        report.push(
            false,
            "manifest",
            format!("format_version {} is newer than this ferry reads ({MANIFEST_FORMAT_VERSION}); upgrade ferry", manifest.format_version),
        );
        return Ok(report);
    }
    for r in &manifest.resources {
        let sum: u64 = r.files.iter().map(|f| f.records).sum();
        if sum != r.records {
            report.push(false, format!("resource {}", r.name), format!("files hold {sum} records, resource says {}", r.records));
        }
    }
    // Where each file should be: (archive or "" for loose) -> member -> entry.
    let mut expected: BTreeMap<String, BTreeMap<String, &FileEntry>> = BTreeMap::new();
    for f in manifest.resources.iter().flat_map(|r| &r.files) {
        expected.entry(f.archive.clone().unwrap_or_default()).or_default().insert(f.path.clone(), f);
    }
    let archives: BTreeSet<&str> = manifest.archives.iter().map(|a| a.name.as_str()).collect();
    for name in expected.keys().filter(|k| !k.is_empty()) {
        if !archives.contains(name.as_str()) {
            report.push(false, name.clone(), "files name this part, but the manifest's archives do not list it");
        }
    }

    for archive in &manifest.archives {
        // A part lies beside the manifest: its name is one plain component.
        let part = match resolve(dir, &archive.name) {
            Ok(_) if archive.name.contains('/') => {
                report.push(false, archive.name.clone(), "a tar part's name must not contain `/`; refused");
                continue;
            }
            Ok((_, len)) if len != archive.bytes => {
                // Never read past what the manifest states.
                report.push(false, archive.name.clone(), format!("{len} bytes, manifest says {}", archive.bytes));
                continue;
            }
            Ok((file, _)) => file,
            Err(e) => {
                report.push(false, archive.name.clone(), e);
                continue;
            }
        };
        // Each read below gets its own handle (a clone would share the offset).
        let reopen = || dir.open_file(&archive.name);
        match sha256_file(part, archive.bytes) {
            Err(e) => {
                report.push(false, archive.name.clone(), format!("cannot read: {e}"));
                continue;
            }
            Ok((bytes, sha)) => {
                let mut problems = Vec::new();
                if bytes != archive.bytes {
                    problems.push(format!("{bytes} bytes, manifest says {}", archive.bytes));
                }
                if sha != archive.sha256 {
                    problems.push(format!("sha256 {sha}, manifest says {}", archive.sha256));
                }
                if archive.plaintext.is_none() && !reopen().and_then(ends_with_end_blocks).unwrap_or(false) {
                    problems.push("the end-of-archive blocks are missing (truncated?)".into());
                }
                let ok = problems.is_empty();
                report.push(
                    ok,
                    archive.name.clone(),
                    if ok { format!("{bytes} bytes, sha256 ok, end-of-archive ok") } else { problems.join("; ") },
                );
            }
        }
        let members = expected.get(&archive.name).cloned().unwrap_or_default();
        let mut seen = BTreeSet::new();
        let mut sealed = match (&archive.plaintext, &keys.identity) {
            (None, _) => None,
            (Some(_), None) => {
                report.push(
                    true,
                    archive.name.clone(),
                    "encrypted: its members were not checked (pass --identity KEY to decrypt and check them)",
                );
                continue;
            }
            (Some(plain), Some(identity)) => match reopen().and_then(|part| open_sealed(part, identity)) {
                Ok(reader) => Some((plain, reader)),
                Err(e) => {
                    report.push(false, archive.name.clone(), format!("cannot decrypt: {e}"));
                    continue;
                }
            },
        };
        let walk = (|| -> io::Result<()> {
            let reader: Box<dyn Read + '_> = match &mut sealed {
                Some((_, reader)) => Box::new(reader),
                None => Box::new(reopen()?.take(archive.bytes)),
            };
            let mut tar = tar::Archive::new(reader);
            for entry in tar.entries()? {
                let entry = entry?;
                let name = entry.path()?.to_string_lossy().into_owned();
                let subject = format!("{}:{name}", archive.name);
                match members.get(&name) {
                    Some(f) if seen.insert(name.clone()) => check_file(&mut report, subject, f, entry),
                    Some(_) => report.push(false, subject, "appears twice in the part"),
                    None => report.push(false, subject, "is not in the manifest for this part (extra member)"),
                }
            }
            Ok(())
        })();
        if let Err(e) = walk {
            report.push(false, archive.name.clone(), format!("the tar cannot be read to its end: {e}"));
        }
        for name in members.keys().filter(|m| !seen.contains(*m)) {
            report.push(false, format!("{}:{name}", archive.name), "is in the manifest but missing from the part");
        }
        if let Some((plain, reader)) = sealed {
            check_plaintext_part(&mut report, &archive.name, plain, reader);
        }
    }

    if let Some(loose) = expected.get("") {
        for (name, f) in loose {
            match resolve(dir, name) {
                Ok((_, len)) if len != f.bytes => report.push(false, name.clone(), format!("{len} bytes, manifest says {}", f.bytes)),
                // One byte past the stated size, so a file that grows while read still shows it.
                Ok((file, _)) if f.plaintext.is_some() => {
                    check_sealed_file(&mut report, name.clone(), f, file.take(f.bytes + 1), keys.identity.as_ref());
                }
                Ok((file, _)) => check_file(&mut report, name.clone(), f, file.take(f.bytes + 1)),
                Err(e) => report.push(false, name.clone(), e),
            }
        }
    }
    let known: BTreeSet<String> = expected.get("").map(|m| m.keys().cloned().collect()).unwrap_or_default();
    if let Ok(entries) = dir.dir().entries() {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            // Loose attachments live in folders: every file under them must be listed.
            if e.file_type().is_ok_and(|t| t.is_dir()) && known.iter().any(|k| k.starts_with(&format!("{name}/"))) {
                unlisted_files(&mut report, dir, &name, &known);
                continue;
            }
            // A sharded snapshot keeps its shard manifests (which `assemble` checked) in `shards/`.
            let shard_manifests = name == super::layout::SHARDS_DIR && e.file_type().is_ok_and(|t| t.is_dir());
            if name != MANIFEST && name != SIGNATURE_FILE && !shard_manifests && !known.contains(&name) && !archives.contains(name.as_str())
            {
                report.push(false, name, "is in the snapshot directory but not in the manifest");
            }
        }
    }
    Ok(report)
}

/// Flags every file under the folder `prefix` of the snapshot that the manifest does not
/// list (as `prefix/...`).
fn unlisted_files(report: &mut Report, dir: &ConfinedDir, prefix: &str, known: &BTreeSet<String>) {
    let Ok(entries) = dir.dir().read_dir(prefix) else { return };
    for e in entries.flatten() {
        let name = format!("{prefix}/{}", e.file_name().to_string_lossy());
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            unlisted_files(report, dir, &name, known);
        } else if !known.contains(&name) {
            report.push(false, name, "is in the snapshot directory but not in the manifest");
        }
    }
}

// -- Trust (issue 19): signatures and encrypted content --

/// The signature over `manifest.json` must verify with the given key.
fn check_signature(report: &mut Report, dir: &Path, key: &VerifyingKey) {
    match super::sign::verify_manifest(dir, key) {
        Ok(comment) => report.push(true, SIGNATURE_FILE, format!("signature ok ({comment})")),
        Err(e) => report.push(false, SIGNATURE_FILE, e.to_string()),
    }
}

/// The plaintext of an encrypted part, hashed as it is read, its last 1 KiB kept (for
/// the end-of-archive blocks).
struct PlainPart {
    inner: Box<dyn Read>,
    hasher: Sha256,
    bytes: u64,
    tail: Vec<u8>,
}

impl Read for PlainPart {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        self.tail.extend_from_slice(&buf[..n]);
        if self.tail.len() > 64 * 1024 {
            self.tail.drain(..self.tail.len() - 1024);
        }
        Ok(n)
    }
}

fn open_sealed(part: File, identity: &Identities) -> io::Result<PlainPart> {
    let inner = Box::new(identity.decrypt(BufReader::new(part))?);
    Ok(PlainPart { inner, hasher: Sha256::new(), bytes: 0, tail: Vec::new() })
}

/// After its members were walked: the rest of the decrypted part, its size, sha256 and
/// end-of-archive blocks against the manifest's plaintext entry.
fn check_plaintext_part(report: &mut Report, name: &str, plain: &Plaintext, mut reader: PlainPart) {
    let subject = format!("{name} (decrypted)");
    if let Err(e) = io::copy(&mut reader, &mut io::sink()) {
        report.push(false, subject, format!("cannot decrypt to its end (truncated or tampered?): {e}"));
        return;
    }
    let sha = hex::encode(reader.hasher.finalize());
    let mut problems = Vec::new();
    if reader.bytes != plain.bytes {
        problems.push(format!("{} bytes, manifest says {}", reader.bytes, plain.bytes));
    }
    if sha != plain.sha256 {
        problems.push(format!("sha256 {sha}, manifest says {}", plain.sha256));
    }
    if reader.tail.len() < 1024 || reader.tail[reader.tail.len() - 1024..].iter().any(|&b| b != 0) {
        problems.push("the end-of-archive blocks are missing (truncated?)".into());
    }
    let ok = problems.is_empty();
    report.push(ok, subject, if ok { format!("{} bytes, sha256 ok, end-of-archive ok", plain.bytes) } else { problems.join("; ") });
}

/// An encrypted loose file: what is stored against `entry`, then (with an identity) its
/// plaintext against `entry.plaintext`, decoded to count its records.
fn check_sealed_file(report: &mut Report, subject: String, entry: &FileEntry, raw: impl Read, identity: Option<&Identities>) {
    let plain = entry.plaintext.as_ref().expect("called for encrypted files");
    let mut stored = Hashing { inner: BufReader::new(raw), hasher: Sha256::new(), bytes: 0 };
    match identity {
        None => report.push(
            true,
            format!("{subject} (decrypted)"),
            "encrypted: its content was not checked (pass --identity KEY to decrypt and check it)",
        ),
        Some(identity) => match identity.decrypt(&mut stored) {
            Ok(reader) => {
                let inner = FileEntry {
                    path: entry.path.strip_suffix(AGE_SUFFIX).unwrap_or(&entry.path).to_string(),
                    bytes: plain.bytes,
                    sha256: plain.sha256.clone(),
                    plaintext: None,
                    ..entry.clone()
                };
                check_file(report, format!("{subject} (decrypted)"), &inner, reader);
            }
            Err(e) => report.push(false, format!("{subject} (decrypted)"), format!("cannot decrypt: {e}")),
        },
    }
    let drained = io::copy(&mut stored, &mut io::sink());
    let sha = hex::encode(stored.hasher.finalize());
    let mut problems = Vec::new();
    if let Err(e) = drained {
        problems.push(format!("read failed: {e}"));
    }
    if stored.bytes != entry.bytes {
        problems.push(format!("{} bytes, manifest says {}", stored.bytes, entry.bytes));
    }
    if sha != entry.sha256 {
        problems.push(format!("sha256 {sha}, manifest says {}", entry.sha256));
    }
    let ok = problems.is_empty();
    report.push(ok, subject, if ok { format!("{} bytes, sha256 ok", entry.bytes) } else { problems.join("; ") });
}
