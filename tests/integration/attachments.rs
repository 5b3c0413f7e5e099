//! Attachments end to end: every version of every attachment archived once and
//! byte-identical, the index complete, hostile names harmless after a real `tar -x`,
//! broken blobs reported by uid and sid, and a 2 GiB blob streamed in bounded memory.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use apache_avro::types::Value;
use sha2::{Digest, Sha256};

use crate::common::{Platform, ferry, run, snapshots, stderr};

/// One row of `attachment_versions`, with its attachment's file name.
#[derive(Debug, Clone)]
struct VersionRow {
    uid: String,
    file_name: String,
    sid: String,
    sha256: String,
    blob_key: String,
}

fn version_rows(db: &Path) -> Vec<VersionRow> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT a.uid, a.file_name, v.sid, v.sha256, v.blob_key FROM attachment_versions v JOIN attachments a ON a.uid = v.attachment_uid")
        .unwrap();
    stmt.query_map([], |r| Ok(VersionRow { uid: r.get(0)?, file_name: r.get(1)?, sid: r.get(2)?, sha256: r.get(3)?, blob_key: r.get(4)? }))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn sha256_file(path: &Path) -> String {
    let mut f = std::fs::File::open(path).unwrap();
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    hex::encode(h.finalize())
}

/// Every file under `dir`, as `/`-separated paths relative to it.
fn files_under(dir: &Path) -> BTreeSet<String> {
    fn walk(dir: &Path, prefix: &str, out: &mut BTreeSet<String>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let name = format!("{prefix}{}", e.file_name().to_str().expect("archived names are UTF-8"));
            if e.file_type().unwrap().is_dir() {
                walk(&e.path(), &format!("{name}/"), out);
            } else {
                out.insert(name);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(dir, "", &mut out);
    out
}

/// Extracts every tar part of the snapshot with GNU tar into `into`.
fn extract_all(snapshot: &Path, into: &Path) {
    std::fs::create_dir_all(into).unwrap();
    for e in std::fs::read_dir(snapshot).unwrap().flatten() {
        if e.path().extension().is_some_and(|x| x == "tar") {
            let out = Command::new("tar").arg("-xf").arg(e.path()).arg("-C").arg(into).output().unwrap();
            assert!(out.status.success(), "tar -x {}: {}", e.path().display(), String::from_utf8_lossy(&out.stderr));
        }
    }
}

fn read_avro_gz(path: &Path) -> Vec<BTreeMap<String, Value>> {
    let gz = flate2::read::MultiGzDecoder::new(std::fs::File::open(path).unwrap());
    apache_avro::Reader::new(gz)
        .unwrap()
        .map(|r| match r.unwrap() {
            Value::Record(fields) => fields.into_iter().collect(),
            other => panic!("not a record: {other:?}"),
        })
        .collect()
}

fn string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Union(_, inner) => string(inner),
        _ => None,
    }
}

fn manifest(snapshot: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(snapshot.join("manifest.json")).unwrap()).unwrap()
}

#[test]
fn every_version_archived_once_byte_identical_indexed_and_safe() {
    let p = Platform::new(0.05, 11);
    let job = p.job("att", "archive = \"tar\"\npart_size = \"256KiB\"", "[[resource]]\nname = \"users\"\n\n[[resource]]\nname = \"attachments\"");
    let out = run(&job);
    assert!(out.status.success(), "{}", stderr(&out));
    let snap = snapshots(&p.out()).pop().unwrap();
    let m = manifest(&snap);
    let kinds: Vec<&str> = m["archives"].as_array().unwrap().iter().map(|a| a["kind"].as_str().unwrap()).collect();
    assert!(kinds.iter().filter(|k| **k == "attachments").count() >= 2, "256 KiB parts split the attachments: {kinds:?}");
    let verify = ferry().arg("verify").arg(&snap).output().unwrap();
    assert!(verify.status.success(), "verify: {}{}", String::from_utf8_lossy(&verify.stdout), stderr(&verify));

    // Extract with GNU tar inside a sandbox folder: nothing may land beside it.
    let sandbox = tempfile::tempdir().unwrap();
    let root = sandbox.path().join("x");
    extract_all(&snap, &root);
    assert_eq!(std::fs::read_dir(sandbox.path()).unwrap().count(), 1, "extraction wrote beside its folder");
    let canonical = root.canonicalize().unwrap();
    let files = files_under(&root);
    for f in &files {
        assert!(root.join(f).canonicalize().unwrap().starts_with(&canonical), "{f} escaped");
        for part in f.split('/') {
            assert!(!part.is_empty() && part != ".." && part != "." && part.len() <= 255 && !part.contains(['\\', '\0']), "unsafe segment {part:?} in {f}");
        }
    }
    // No two folders fold together on a case-insensitive disk.
    let mut folded = HashSet::new();
    for f in files.iter().filter(|f| f.starts_with("attachments/")) {
        let folder: Vec<&str> = f.splitn(3, '/').collect();
        let key = format!("{}/{}", folder[1], folder.get(2).unwrap_or(&"")).to_lowercase();
        assert!(folded.insert(key), "{f} collides case-insensitively");
    }

    let index = read_avro_gz(&root.join("attachments_index.avro.gz"));
    let rows = version_rows(&p.db());
    let by_sid: BTreeMap<String, &BTreeMap<String, Value>> =
        index.iter().filter(|r| string(&r["kind"]).as_deref() == Some("version")).map(|r| (string(&r["sid"]).unwrap(), r)).collect();
    assert_eq!(by_sid.len(), rows.len(), "one index record per version");
    let blobs = p.dir.path().join("platform/blobs");
    let mut version_files = BTreeSet::new();
    for v in &rows {
        let r = by_sid.get(&v.sid).unwrap_or_else(|| panic!("version {} of {} is not indexed", v.sid, v.uid));
        let path = string(&r["path"]).unwrap();
        assert!(version_files.insert(path.clone()), "{path} indexed twice");
        assert_eq!(sha256_file(&root.join(&path)), v.sha256, "{path} differs from its version record");
        assert_eq!(sha256_file(&blobs.join(&v.blob_key)), v.sha256, "blob {} differs", v.blob_key);
        assert_eq!(string(&r["sha256"]).unwrap(), v.sha256);
        assert_eq!(string(&r["uid"]).unwrap(), v.uid);
        // The index keeps the name as uploaded, hostile bytes and all.
        assert_eq!(string(&r["file_name"]).unwrap(), v.file_name);
        assert!(path.starts_with(&format!("attachments/{}_", v.uid)) && path.ends_with(&format!("/{}_{}", v.sid, r["version"].clone().pipe_long())), "{path}");
    }
    // The index is complete: every archived attachment path is indexed, and nothing else is there.
    let indexed: BTreeSet<String> = index.iter().map(|r| string(&r["path"]).unwrap()).collect();
    let archived: BTreeSet<String> = files.iter().filter(|f| f.starts_with("attachments/")).cloned().collect();
    assert_eq!(indexed, archived);
    let names: BTreeSet<&str> = rows.iter().map(|r| r.file_name.as_str()).collect();
    for hostile in ["../../etc/passwd", "/etc/shadow", "con\\nul.txt", "", "nul\0byte.txt", "REPORT.pdf", "report.pdf", "Résumé.pdf", "Re\u{301}sume\u{301}.pdf"] {
        assert!(names.contains(hostile), "the demo platform lost its hostile name {hostile:?}");
    }
    // Every attachment has its versions JSON, listing exactly its versions.
    for r in index.iter().filter(|r| string(&r["kind"]).as_deref() == Some("versions")) {
        let path = string(&r["path"]).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&std::fs::read(root.join(&path)).unwrap()).unwrap();
        let uid = string(&r["uid"]).unwrap();
        assert_eq!(json["uid"], uid.as_str());
        let listed: BTreeSet<&str> = json["versions"].as_array().unwrap().iter().map(|v| v["sid"].as_str().unwrap()).collect();
        let expected: BTreeSet<&str> = rows.iter().filter(|v| v.uid == uid).map(|v| v.sid.as_str()).collect();
        assert_eq!(listed, expected, "{path}");
    }
}

trait PipeLong {
    fn pipe_long(self) -> i64;
}

impl PipeLong for Value {
    fn pipe_long(self) -> i64 {
        match self {
            Value::Long(n) => n,
            Value::Union(_, inner) => inner.pipe_long(),
            other => panic!("not a long: {other:?}"),
        }
    }
}

#[test]
fn content_picks_tables_or_attachments() {
    let p = Platform::new(0.02, 3);
    let resources = "[[resource]]\nname = \"users\"\n\n[[resource]]\nname = \"attachments\"";
    for (content, want) in [("attachments", vec!["attachments"]), ("tables", vec!["users"]), ("both", vec!["users", "attachments"])] {
        let text = std::fs::read_to_string(p.job("c", "", resources)).unwrap().replacen("[snapshot]\n", &format!("[snapshot]\ncontent = \"{content}\"\n"), 1);
        let job = p.dir.path().join(format!("content-{content}.toml"));
        std::fs::write(&job, text).unwrap();
        let out = run(&job);
        assert!(out.status.success(), "{content}: {}", stderr(&out));
        let snap = p.out().join(String::from_utf8_lossy(&out.stdout).split_whitespace().nth(1).expect("ferry run names the snapshot"));
        let m = manifest(&snap);
        let names: Vec<&str> = m["resources"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
        assert_eq!(names, want, "content = {content}");
        assert_eq!(snap.join("attachments").is_dir(), content != "tables", "{content}: attachments folder");
        assert_eq!(snap.join("users.avro.gz").is_file(), content != "attachments", "{content}: users");
    }
    let text = std::fs::read_to_string(p.job("c", "", "[[resource]]\nname = \"users\"")).unwrap().replacen("[snapshot]\n", "[snapshot]\ncontent = \"attachments\"\n", 1);
    let job = p.dir.path().join("nothing.toml");
    std::fs::write(&job, text).unwrap();
    let out = run(&job);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no resource exports attachments"), "{}", stderr(&out));
}

/// The version rows of the first attachment with at least `n` versions... any two rows of
/// different attachments, for breaking their blobs.
fn two_versions(db: &Path) -> (VersionRow, VersionRow) {
    let rows = version_rows(db);
    let a = rows[0].clone();
    let b = rows.iter().find(|r| r.uid != a.uid).unwrap().clone();
    (a, b)
}

#[test]
fn missing_blob_and_sha256_mismatch_name_uid_and_sid() {
    let p = Platform::new(0.02, 5);
    let blobs = p.dir.path().join("platform/blobs");
    let (gone, bad) = two_versions(&p.db());

    // A missing blob under on_error = "fail": the run fails naming uid and sid, publishes nothing.
    let saved = std::fs::read(blobs.join(&gone.blob_key)).unwrap();
    std::fs::remove_file(blobs.join(&gone.blob_key)).unwrap();
    let job = p.job("missing", "", "[[resource]]\nname = \"users\"\n\n[[resource]]\nname = \"attachments\"");
    let out = run(&job);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains(&gone.uid) && err.contains(&gone.sid) && err.contains("missing"), "{err}");
    assert!(snapshots(&p.out()).is_empty(), "a failed run published");
    std::fs::write(blobs.join(&gone.blob_key), saved).unwrap();

    // Same size, other bytes, under on_error = "continue": published incomplete, the
    // attachments resource failed with uid and sid, the rest is there.
    let mut bytes = std::fs::read(blobs.join(&bad.blob_key)).unwrap();
    if bytes.is_empty() {
        bytes.push(0); // an empty blob cannot be flipped; make it one byte, a size mismatch
    } else {
        bytes[0] ^= 0xff;
    }
    std::fs::write(blobs.join(&bad.blob_key), &bytes).unwrap();
    let job = p.job("mismatch", "on_error = \"continue\"", "[[resource]]\nname = \"users\"\n\n[[resource]]\nname = \"attachments\"");
    let out = run(&job);
    assert_eq!(out.status.code(), Some(2), "an incomplete snapshot exits 2: {}", stderr(&out));
    let snap = snapshots(&p.out()).pop().unwrap();
    let m = manifest(&snap);
    assert_eq!(m["status"], "incomplete");
    let att = m["resources"].as_array().unwrap().iter().find(|r| r["name"] == "attachments").unwrap();
    let message = att["error"]["message"].as_str().unwrap();
    assert_eq!(att["error"]["kind"], "attachment");
    assert!(message.contains(&bad.uid) && message.contains(&bad.sid) && message.contains("sha256"), "{message}");
    assert!(att["files"].as_array().unwrap().is_empty());
    assert!(!snap.join("attachments").exists() && !snap.join("attachments_index.avro.gz").exists(), "the failed resource left files");
    assert!(snap.join("users.avro.gz").is_file());
    let verify = ferry().arg("verify").arg(&snap).output().unwrap();
    assert!(verify.status.success(), "verify: {}", String::from_utf8_lossy(&verify.stdout));
}

/// sha256 of 2 GiB of zero bytes.
const ZEROS_2GIB_SHA256: &str = "a7c744c13cc101ed66c29f672f92455547889cc586ce6d44fe76ae824958ea51";
const TWO_GIB: u64 = 2 << 30;

/// Runs `ferry run job` under Python and returns (success, stderr, peak RSS in bytes of
/// the ferry process, from getrusage(RUSAGE_CHILDREN)).
pub fn run_measured(job: &Path) -> (bool, String, u64) {
    let script = "import resource, subprocess, sys\n\
                  r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)\n\
                  sys.stderr.write(r.stderr.decode('utf-8', 'replace'))\n\
                  print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n\
                  sys.exit(r.returncode)\n";
    let ferry = ferry();
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(ferry.get_program())
        .args(["run"])
        .arg(job)
        .envs(ferry.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))))
        .output()
        .unwrap();
    let kib: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(u64::MAX / 1024);
    (out.status.success(), stderr(&out), kib * 1024)
}

/// Adds one attachment whose single version is a sparse file of `size` zero bytes.
pub fn add_sparse_attachment(p: &Platform, size: u64, sha256: &str) -> PathBuf {
    let blob = p.dir.path().join("platform/blobs/big/zeros");
    std::fs::create_dir_all(blob.parent().unwrap()).unwrap();
    std::fs::File::create(&blob).unwrap().set_len(size).unwrap();
    let conn = rusqlite::Connection::open(p.db()).unwrap();
    conn.execute("INSERT INTO attachments VALUES ('ATT-BIG', 'disk image.iso', 'application/octet-stream', 'run', 'RUN-1', 0, 0)", []).unwrap();
    conn.execute("INSERT INTO attachment_versions VALUES ('VER-BIG', 'ATT-BIG', 1, ?1, ?2, 0, 'big/zeros')", rusqlite::params![size as i64, sha256]).unwrap();
    blob
}

#[test]
fn two_gib_sparse_blob_streams_in_bounded_memory() {
    let p = Platform::new(0.01, 9);
    add_sparse_attachment(&p, TWO_GIB, ZEROS_2GIB_SHA256);
    // Loose files: the blob is written once (packing would copy it again, for nothing).
    let job = p.job("big", "", "[[resource]]\nname = \"attachments\"");
    let (ok, err, peak) = run_measured(&job);
    assert!(ok, "{err}");
    let snap = snapshots(&p.out()).pop().unwrap();
    let copy = snap.join("attachments/ATT-BIG_disk image.iso/VER-BIG_1");
    assert_eq!(std::fs::metadata(&copy).unwrap().len(), TWO_GIB);
    let m = manifest(&snap);
    let entry = m["resources"][0]["files"].as_array().unwrap().iter().find(|f| f["path"] == "attachments/ATT-BIG_disk image.iso/VER-BIG_1").unwrap().clone();
    assert_eq!(entry["sha256"], ZEROS_2GIB_SHA256);
    assert_eq!(entry["kind"], "attachment");
    // wasmtime, cranelift and the writer account for well under 300 MiB; a blob held
    // whole would be 2 GiB on its own.
    assert!(peak < 300 << 20, "peak RSS {} MiB for a 2 GiB blob", peak >> 20);
    eprintln!("2 GiB blob: peak RSS {} MiB", peak >> 20);
}
