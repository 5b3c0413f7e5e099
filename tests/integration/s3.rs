//! S3-protocol storage (moto, started by tests/run.sh): blobs read in ranges through the
//! blob-store trait, delivery with the manifest last, and a delivery killed mid-upload.

use std::io::Read;

use sha2::{Digest, Sha256};

use crate::common::{Platform, ferry, stderr};
use crate::servers::{self, S3_SECRET};

#[test]
fn s3_blobs_stream_in_ranges_through_the_blob_store() {
    let Some((endpoint, bucket)) = servers::s3("s3_blobs") else { return };
    let platform = Platform::new(0.05, 3);
    let url = ferry::s3::S3Url::parse(&format!("s3://{bucket}/platform/blobs")).unwrap().unwrap();
    let s3 = ferry::s3::S3::connect(&url, &servers::s3_settings(&endpoint)).unwrap();
    let conn = rusqlite::Connection::open(platform.db()).unwrap();
    let versions: Vec<(String, i64, String)> = conn
        .prepare("SELECT blob_key, size, sha256 FROM attachment_versions ORDER BY rowid LIMIT 20")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(!versions.is_empty());
    let blobs = platform.dir.path().join("platform/blobs");
    for (key, ..) in &versions {
        s3.put(key, std::fs::read(blobs.join(key)).unwrap()).unwrap();
    }
    let store = ferry::s3::S3BlobStore::new(s3.clone());
    use ferry::source::BlobStore;
    for (key, size, sha) in &versions {
        let (mut reader, len) = store.open(key).unwrap();
        assert_eq!(len, Some(*size as u64), "{key}");
        let mut bytes = Vec::new();
        reader.read_to_end(&mut bytes).unwrap();
        assert_eq!(hex::encode(Sha256::digest(&bytes)), *sha, "{key} read back differently");
        if *size > 10 {
            let part = store.read_range(key, 3..*size as u64 - 2).unwrap();
            assert_eq!(part, bytes[3..*size as usize - 2], "{key}: a ranged read returned other bytes");
        }
    }
    assert!(matches!(store.open("../outside"), Err(ferry::source::BlobError::BadKey { .. })));
    assert!(matches!(store.open("zz/not-there"), Err(ferry::source::BlobError::Missing { .. })));
}

// Split transactions: their files are packed and uploaded while the export goes on.
const RESOURCES: &str = "[[resource]]\nname = \"users\"\n[[resource]]\nname = \"accounts\"\n[[resource]]\nname = \"transactions\"\nmax_records_per_file = 2000\n";

fn s3_job(platform: &Platform, name: &str, endpoint: &str, bucket: &str) -> std::path::PathBuf {
    let path = platform.dir.path().join(format!("{name}.toml"));
    let text = format!(
        "[snapshot]\nname = \"{name}\"\nas_of = \"2026-03-31T14:30:22Z\"\n\n[source]\nsqlite = \"platform/platform.db\"\n\n\
         [output]\ndir = \"s3://{bucket}/exports\"\npart_size = \"64KiB\"\n\n{}\n{RESOURCES}",
        servers::s3_table(endpoint)
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Snapshot ids under `exports/`, each with its objects (name, size, last modified).
fn delivered(s3: &ferry::s3::S3) -> std::collections::BTreeMap<String, Vec<(String, u64, chrono::DateTime<chrono::Utc>)>> {
    let mut by_id = std::collections::BTreeMap::<String, Vec<_>>::new();
    for o in s3.list("").unwrap() {
        let key = o.location.to_string();
        let rest = key.strip_prefix("exports/").expect("everything is under the prefix");
        let (id, name) = rest.split_once('/').unwrap();
        by_id.entry(id.to_string()).or_default().push((name.to_string(), o.size, o.last_modified));
    }
    by_id
}

/// Asserts a delivered manifest does not lie: every part and file it names is there,
/// with its size and sha256.
fn assert_manifest_true(s3: &ferry::s3::S3, id: &str, objects: &[(String, u64, chrono::DateTime<chrono::Utc>)]) -> serde_json::Value {
    let manifest: serde_json::Value = serde_json::from_slice(&s3.get(&format!("{id}/manifest.json")).unwrap()).unwrap();
    let mut expected: Vec<(String, u64, String)> = manifest["archives"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| (a["name"].as_str().unwrap().to_string(), a["bytes"].as_u64().unwrap(), a["sha256"].as_str().unwrap().to_string()))
        .collect();
    for r in manifest["resources"].as_array().unwrap() {
        for f in r["files"].as_array().unwrap().iter().filter(|f| f["archive"].is_null()) {
            expected.push((
                f["path"].as_str().unwrap().to_string(),
                f["bytes"].as_u64().unwrap(),
                f["sha256"].as_str().unwrap().to_string(),
            ));
        }
    }
    assert!(expected.len() > 1, "the test wants several parts: {manifest}");
    for (name, bytes, sha) in &expected {
        let found = objects.iter().find(|o| &o.0 == name).unwrap_or_else(|| panic!("manifest names {name}, which was not delivered"));
        assert_eq!(found.1, *bytes, "{name}: size");
        assert_eq!(hex::encode(Sha256::digest(s3.get(&format!("{id}/{name}")).unwrap())), *sha, "{name}: sha256");
    }
    assert_eq!(objects.len(), expected.len() + 1, "objects beyond the manifest's: {objects:?}");
    manifest
}

#[test]
fn s3_delivery_uploads_every_part_then_the_manifest_last() {
    let Some((endpoint, bucket)) = servers::s3("s3_delivery") else { return };
    let platform = Platform::new(0.1, 5);
    let job = s3_job(&platform, "deliver", &endpoint, &bucket);
    let out = ferry().arg("run").arg(&job).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("delivered"), "{stdout}");
    assert!(!stdout.contains(S3_SECRET) && !stderr(&out).contains(S3_SECRET), "the secret key was printed");

    let url = ferry::s3::S3Url::parse(&format!("s3://{bucket}/exports")).unwrap().unwrap();
    let s3 = ferry::s3::S3::connect(&url, &servers::s3_settings(&endpoint)).unwrap();
    let by_id = delivered(&s3);
    assert_eq!(by_id.len(), 1, "{by_id:?}");
    let (id, objects) = by_id.iter().next().unwrap();
    let manifest = assert_manifest_true(&s3, id, objects);
    assert!(!manifest.to_string().contains(S3_SECRET), "the manifest holds the secret key");
    let manifest_time = objects.iter().find(|o| o.0 == "manifest.json").unwrap().2;
    assert!(objects.iter().all(|o| o.2 <= manifest_time), "an object was modified after the manifest: {objects:?}");

    // Nothing of the snapshot but its manifest and the record of the delivery stays on
    // local disk, and the catalog holds it completed.
    let root = platform.dir.path().join(".ferry-s3").join(&bucket).join("exports");
    let mut left: Vec<_> = std::fs::read_dir(root.join(id)).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    left.sort();
    assert_eq!(left, ["delivery.json", "manifest.json"]);
    assert_eq!(catalog_status(&root, id), "completed");
    // The catalog points at the delivered objects.
    let files = ferry().args(["snapshots", "files", "--json", id, "--dir"]).arg(&root).output().unwrap();
    assert!(files.status.success(), "{}", stderr(&files));
    let files: serde_json::Value = serde_json::from_slice(&files.stdout).unwrap();
    let prefix = format!("s3://{bucket}/exports/{id}/snapshot_tables_part");
    for f in files.as_array().unwrap() {
        let url = f["url"].as_str().unwrap();
        assert!(url.starts_with(&prefix), "{url} is not in a delivered part ({prefix}...)");
        assert!(
            objects.iter().any(|o| url[format!("s3://{bucket}/exports/{id}/").len()..].split('#').next() == Some(o.0.as_str())),
            "{url} names no delivered object"
        );
    }
}

/// The status the output root's catalog gives snapshot `id`.
fn catalog_status(root: &std::path::Path, id: &str) -> String {
    let out = ferry().args(["snapshots", "show", "--json", id, "--dir"]).arg(root).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["status"].as_str().unwrap().to_string()
}

#[test]
fn a_delivery_that_fails_is_recorded_failed_and_leaves_nothing_behind() {
    let Some((endpoint, bucket)) = servers::s3("s3_fails") else { return };
    let platform = Platform::new(0.05, 6);
    // A bucket that does not exist: the first upload fails.
    let missing = format!("{bucket}-gone");
    let job = s3_job(&platform, "fails", &endpoint, &missing);
    let out = ferry().arg("run").arg(&job).output().unwrap();
    assert!(!out.status.success(), "a delivery into a missing bucket succeeded");
    let err = stderr(&out);
    assert!(err.contains(&missing), "the error does not name the bucket: {err}");
    assert!(!err.contains(S3_SECRET), "the secret key was printed");
    let root = platform.dir.path().join(".ferry-s3").join(&missing).join("exports");
    let ids: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.starts_with("catalog.db"))
        .collect();
    assert!(ids.is_empty(), "a failed delivery left {ids:?} locally");
    let list = ferry().args(["snapshots", "list", "--all", "--json", "--dir"]).arg(&root).output().unwrap();
    let rows: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let statuses: Vec<&str> = rows.as_array().unwrap().iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["failed"], "{rows}");
}

#[test]
#[cfg_attr(not(feature = "test-hooks"), ignore = "needs the fault hook: cargo test --features test-hooks")]
fn a_delivery_killed_mid_upload_leaves_no_manifest_and_a_rerun_completes() {
    let Some((endpoint, bucket)) = servers::s3("s3_killed") else { return };
    let platform = Platform::new(0.1, 5);
    let job = s3_job(&platform, "killed", &endpoint, &bucket);
    // Dies (abort, no cleanup) once 100 KB were handed to uploads: some parts are whole
    // objects by then, one is a multipart upload in flight.
    let killed = ferry().arg("run").arg(&job).env("FERRY_FAULT_S3_ABORT_AFTER_BYTES", "100000").output().unwrap();
    assert!(!killed.status.success(), "the fault did not fire: {}", String::from_utf8_lossy(&killed.stdout));
    let url = ferry::s3::S3Url::parse(&format!("s3://{bucket}/exports")).unwrap().unwrap();
    let s3 = ferry::s3::S3::connect(&url, &servers::s3_settings(&endpoint)).unwrap();
    let dead = delivered(&s3);
    assert_eq!(dead.len(), 1, "{dead:?}");
    let (dead_id, dead_objects) = dead.iter().next().unwrap();
    assert!(!dead_objects.is_empty(), "the kill came before any upload finished");
    assert!(dead_objects.iter().all(|o| o.0 != "manifest.json"), "a killed delivery left a manifest: {dead_objects:?}");

    // Parts went straight into uploads: none was ever written to local disk.
    let root = platform.dir.path().join(".ferry-s3").join(&bucket).join("exports");
    let staged: Vec<String> = std::fs::read_dir(root.join(format!(".staging-{dead_id}")))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(staged.iter().all(|n| !n.ends_with(".tar")), "a part was staged on local disk: {staged:?}");

    let rerun = ferry().arg("run").arg(&job).output().unwrap();
    assert!(rerun.status.success(), "{}", stderr(&rerun));
    let after = delivered(&s3);
    // The dead delivery was settled failed and its objects removed; the rerun's is whole.
    assert_eq!(after.len(), 1, "{after:?}");
    let (id, objects) = after.iter().next().unwrap();
    assert_ne!(id, dead_id, "the rerun reused the dead snapshot's prefix");
    assert_manifest_true(&s3, id, objects);
    assert_eq!(catalog_status(&root, dead_id), "failed");
    assert_eq!(catalog_status(&root, id), "completed");
}

#[test]
fn attachments_read_from_s3_blobs_equal_those_read_from_a_directory() {
    let Some((endpoint, bucket)) = servers::s3("s3_attachments") else { return };
    let platform = Platform::new(0.05, 8);
    let url = ferry::s3::S3Url::parse(&format!("s3://{bucket}/platform/blobs")).unwrap().unwrap();
    let s3 = ferry::s3::S3::connect(&url, &servers::s3_settings(&endpoint)).unwrap();
    let blobs = platform.dir.path().join("platform/blobs");
    let mut stack = vec![blobs.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(dir).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let key = path.strip_prefix(&blobs).unwrap().to_str().unwrap().to_string();
                s3.put(&key, std::fs::read(&path).unwrap()).unwrap();
            }
        }
    }
    let resources = "[[resource]]\nname = \"attachments\"";
    let snapshot = |name: &str, blobs_line: &str| -> (std::path::PathBuf, serde_json::Value) {
        let text = std::fs::read_to_string(platform.job(name, "archive = \"tar\"\npart_size = \"256KiB\"", resources))
            .unwrap()
            .replace("blobs = \"platform/blobs\"", blobs_line)
            .replace("dir = \"out\"", &format!("dir = \"out-{name}\""));
        let job = platform.dir.path().join(format!("{name}.toml"));
        std::fs::write(&job, format!("{text}\n{}", servers::s3_table(&endpoint))).unwrap();
        let out = ferry().arg("run").arg(&job).output().unwrap();
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        let snap = crate::common::snapshots(&platform.dir.path().join(format!("out-{name}"))).pop().unwrap();
        let verify = ferry().arg("verify").arg(&snap).output().unwrap();
        assert!(verify.status.success(), "{name}: verify: {}", String::from_utf8_lossy(&verify.stdout));
        let manifest = serde_json::from_slice(&std::fs::read(snap.join("manifest.json")).unwrap()).unwrap();
        (snap, manifest)
    };
    let (_, from_s3) = snapshot("from-s3", &format!("blobs = \"s3://{bucket}/platform/blobs\""));
    let (_, from_dir) = snapshot("from-dir", "blobs = \"platform/blobs\"");
    let files = |m: &serde_json::Value| -> Vec<(String, u64, String)> {
        m["resources"][0]["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (f["path"].as_str().unwrap().into(), f["bytes"].as_u64().unwrap(), f["sha256"].as_str().unwrap().into()))
            .collect()
    };
    let (s3_files, dir_files) = (files(&from_s3), files(&from_dir));
    assert!(s3_files.iter().filter(|f| f.0.starts_with("attachments/")).count() > 10, "{s3_files:?}");
    assert_eq!(s3_files, dir_files, "attachments read from S3 differ from those read from the directory");
}

#[test]
fn s3_delivery_encrypts_every_part_for_the_recipients() {
    let Some((endpoint, bucket)) = servers::s3("s3_encrypted") else { return };
    let platform = Platform::new(0.05, 8);
    let key = platform.dir.path().join("age.txt");
    let keygen = std::process::Command::new("age-keygen").arg("-o").arg(&key).output().expect("age-keygen (tests/run.sh installs age)");
    assert!(keygen.status.success(), "{}", stderr(&keygen));
    let recipient = std::process::Command::new("age-keygen").arg("-y").arg(&key).output().unwrap();
    let recipient = String::from_utf8(recipient.stdout).unwrap().trim().to_string();
    let job = s3_job(&platform, "sealed", &endpoint, &bucket);
    let text = std::fs::read_to_string(&job)
        .unwrap()
        .replace("part_size = \"64KiB\"\n", &format!("part_size = \"64KiB\"\nencrypt_to = [\"{recipient}\"]\n"));
    std::fs::write(&job, text).unwrap();
    let out = ferry().arg("run").arg(&job).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));

    let url = ferry::s3::S3Url::parse(&format!("s3://{bucket}/exports")).unwrap().unwrap();
    let s3 = ferry::s3::S3::connect(&url, &servers::s3_settings(&endpoint)).unwrap();
    let by_id = delivered(&s3);
    let (id, objects) = by_id.iter().next().unwrap();
    let manifest = assert_manifest_true(&s3, id, objects);
    for a in manifest["archives"].as_array().unwrap() {
        let name = a["name"].as_str().unwrap();
        assert!(name.ends_with(".tar.age"), "{name} went up unencrypted");
        let local = platform.dir.path().join(name);
        std::fs::write(&local, s3.get(&format!("{id}/{name}")).unwrap()).unwrap();
        let plain = std::process::Command::new("age").arg("-d").arg("-i").arg(&key).arg(&local).output().unwrap();
        assert!(plain.status.success(), "age -d {name}: {}", stderr(&plain));
        assert_eq!(hex::encode(Sha256::digest(&plain.stdout)), a["plaintext"]["sha256"].as_str().unwrap(), "{name}: plaintext");
        assert!(plain.stdout.ends_with(&[0u8; 1024]), "{name}: the plaintext is a whole tar");
    }
}

/// `ferry snapshots delete` and `purge` remove the copy delivered to the bucket too, not
/// only the local record and directory.
#[test]
fn snapshots_delete_and_purge_remove_the_delivered_copy() {
    let Some((endpoint, bucket)) = servers::s3("s3_removal") else { return };
    let platform = Platform::new(0.02, 5);
    let job = s3_job(&platform, "removal", &endpoint, &bucket);
    for _ in 0..2 {
        let out = ferry().arg("run").arg(&job).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let url = ferry::s3::S3Url::parse(&format!("s3://{bucket}/exports")).unwrap().unwrap();
    let s3 = ferry::s3::S3::connect(&url, &servers::s3_settings(&endpoint)).unwrap();
    let ids: Vec<String> = delivered(&s3).into_keys().collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    let out = ferry().args(["snapshots", "--job"]).arg(&job).args(["delete", &ids[0]]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let left: Vec<String> = delivered(&s3).into_keys().collect();
    assert_eq!(left, vec![ids[1].clone()], "delete left objects in the bucket");
    let out = ferry().args(["snapshots", "--job"]).arg(&job).args(["purge", "--now", "2199-01-01T00:00:00Z"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(delivered(&s3).is_empty(), "purge left objects in the bucket");
}
