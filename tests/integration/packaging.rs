//! Tar parts, `ferry verify`, and publishing that survives SIGKILL.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::common::{Platform, ferry, python, run, snapshots, stderr};

const RESOURCES: &str = "[[resource]]\nname = \"users\"\n\n[[resource]]\nname = \"accounts\"\n\n[[resource]]\nname = \"transactions\"\n\n[[resource]]\nname = \"goals\"\nformat = \"csv\"";

fn manifest(snap: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(snap.join("manifest.json")).unwrap()).unwrap()
}

fn verify(snap: &Path) -> (bool, String) {
    let out = ferry().arg("verify").arg(snap).output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out)))
}

/// `name size` per member, as a tool lists them (`size_col`: the size's column in `tv`).
fn listing(tool: &[&str], size_col: usize, part: &Path) -> Vec<(String, u64)> {
    let out = Command::new(tool[0]).args(&tool[1..]).arg(part).output().unwrap();
    assert!(out.status.success(), "{tool:?} {}: {}", part.display(), stderr(&out));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            (cols.last().unwrap().to_string(), cols[size_col].parse().unwrap())
        })
        .collect()
}

fn python_listing(part: &Path) -> Vec<(String, u64)> {
    let code = "import sys,tarfile\nfor m in tarfile.open(sys.argv[1]).getmembers(): print(m.name, m.size)";
    let out = Command::new(python()).args(["-c", code]).arg(part).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8(out.stdout).unwrap().lines().map(|l| {
        let (n, s) = l.rsplit_once(' ').unwrap();
        (n.to_string(), s.parse().unwrap())
    }).collect()
}

#[test]
fn parts_hold_whole_files_and_every_tar_reader_agrees_with_the_manifest() {
    let p = Platform::new(0.05, 41);
    let out = run(&p.job("parts", "archive = \"tar\"\npart_size = \"64KiB\"", RESOURCES));
    assert!(out.status.success(), "{}", stderr(&out));
    let snap = &snapshots(&p.out())[0];
    let m = manifest(snap);
    let archives = m["archives"].as_array().unwrap();
    assert!(archives.len() >= 3, "small parts: {archives:?}");
    let stamp_re = |name: &str, n: usize| {
        let rest = name.strip_prefix(&format!("snapshot_tables_part{n}_")).unwrap_or_else(|| panic!("{name}"));
        let stamp = rest.strip_suffix(".tar").unwrap();
        assert!(chrono::NaiveDateTime::parse_from_str(stamp, "%Y-%m-%d-%H%M%S").is_ok(), "{name}");
    };
    let files: Vec<&Value> = m["resources"].as_array().unwrap().iter().flat_map(|r| r["files"].as_array().unwrap()).collect();
    for (i, a) in archives.iter().enumerate() {
        let name = a["name"].as_str().unwrap();
        stamp_re(name, i + 1);
        assert_eq!(a["part"], i as u64 + 1);
        assert_eq!(a["kind"], "tables");
        let part = snap.join(name);
        let bytes = std::fs::read(&part).unwrap();
        assert_eq!(a["bytes"], bytes.len() as u64);
        assert!(bytes[bytes.len() - 1024..].iter().all(|&b| b == 0), "{name} ends with end-of-archive blocks");
        let mut want: Vec<(String, u64)> = files
            .iter()
            .filter(|f| f["archive"] == name)
            .map(|f| (f["path"].as_str().unwrap().to_string(), f["bytes"].as_u64().unwrap()))
            .collect();
        want.sort();
        assert!(!want.is_empty());
        // A part over the cap holds exactly one file (larger than the cap itself).
        if bytes.len() > 64 * 1024 {
            assert_eq!(want.len(), 1, "{name} is over the cap with {} files", want.len());
        }
        for (tool, got) in [
            // GNU: perms owner/group size date time name; bsdtar: perms links owner group size ...
            ("gnu tar", listing(&["tar", "tvf"], 2, &part)),
            ("bsdtar", listing(&["bsdtar", "tvf"], 4, &part)),
            ("python tarfile", python_listing(&part)),
        ] {
            let mut got = got;
            got.sort();
            assert_eq!(got, want, "{tool} lists {name}");
        }
    }
    assert!(files.iter().all(|f| f["archive"].is_string()), "every file is in a part");
    // The manifest matches its documented JSON Schema (checked by Python's jsonschema).
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/manifest.schema.json");
    let code = "import json,sys,jsonschema\njsonschema.validate(json.load(open(sys.argv[1])), json.load(open(sys.argv[2])))";
    let out = Command::new(python()).args(["-c", code]).arg(snap.join("manifest.json")).arg(schema).output().unwrap();
    assert!(out.status.success(), "manifest does not match docs/manifest.schema.json: {}", stderr(&out));
    let (ok, report) = verify(snap);
    assert!(ok, "{report}");
}

#[test]
fn the_same_job_gives_byte_identical_parts() {
    let p = Platform::new(0.05, 42);
    // With split files, each closed file is packed while the resource still exports.
    for (variant, extra) in [("whole", ""), ("split", "\nmax_records_per_file = 500")] {
        let out_dir = p.dir.path().join(format!("out-{variant}"));
        for name in ["a", "b"] {
            let job = p.job(&format!("{variant}-{name}"), &format!("archive = \"tar\"\npart_size = \"256KiB\"{extra}"), RESOURCES);
            let text = std::fs::read_to_string(&job).unwrap().replace("dir = \"out\"", &format!("dir = \"out-{variant}\""));
            std::fs::write(&job, text).unwrap();
            let out = run(&job);
            assert!(out.status.success(), "{}", stderr(&out));
        }
        let snaps = snapshots(&out_dir);
        let digests: Vec<Vec<String>> = snaps
            .iter()
            .map(|s| manifest(s)["archives"].as_array().unwrap().iter().map(|a| a["sha256"].as_str().unwrap().to_string()).collect())
            .collect();
        assert_eq!(digests.len(), 2);
        assert!(digests[0].len() > 1, "{variant}");
        assert_eq!(digests[0], digests[1], "{variant}: two runs gave different parts");
        for s in &snaps {
            assert!(verify(s).0, "{variant}: {} does not verify", s.display());
            assert!(std::fs::read_dir(s).unwrap().all(|e| {
                let n = e.unwrap().file_name().into_string().unwrap();
                n == "manifest.json" || n.ends_with(".tar")
            }), "{variant}: files left beside the parts");
        }
        if variant == "split" {
            let m = manifest(&snaps[0]);
            let files: usize = m["resources"].as_array().unwrap().iter().map(|r| r["files"].as_array().unwrap().len()).sum();
            assert!(files > 4, "the split variant has split files: {files}");
        }
    }
}

/// A fresh packed snapshot to break.
fn packed(seed: u64) -> (Platform, PathBuf) {
    let p = Platform::new(0.03, seed);
    let out = run(&p.job("v", "archive = \"tar\"\npart_size = \"128KiB\"", RESOURCES));
    assert!(out.status.success(), "{}", stderr(&out));
    let snap = snapshots(&p.out())[0].clone();
    assert!(verify(&snap).0, "a fresh snapshot verifies");
    (p, snap)
}

fn first_part(snap: &Path) -> PathBuf {
    snap.join(manifest(snap)["archives"][0]["name"].as_str().unwrap())
}

/// Rewrites a part through `edit` and updates the manifest's size and sha256 of it, so
/// only the member-level check can catch what `edit` did.
fn rewrite_part(snap: &Path, edit: impl Fn(&mut tar::Builder<Vec<u8>>, Vec<(tar::Header, Vec<u8>)>)) {
    let part = first_part(snap);
    let mut members = Vec::new();
    let mut archive = tar::Archive::new(std::fs::File::open(&part).unwrap());
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        members.push((e.header().clone(), data));
    }
    let mut b = tar::Builder::new(Vec::new());
    edit(&mut b, members);
    let bytes = b.into_inner().unwrap();
    std::fs::write(&part, &bytes).unwrap();
    let mut m = manifest(snap);
    m["archives"][0]["bytes"] = bytes.len().into();
    m["archives"][0]["sha256"] = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)).into();
    std::fs::write(snap.join("manifest.json"), serde_json::to_vec_pretty(&m).unwrap()).unwrap();
}

#[test]
fn verify_catches_every_kind_of_damage() {
    // Truncated part.
    let (_p, snap) = packed(43);
    let part = first_part(&snap);
    let len = std::fs::metadata(&part).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&part).unwrap().set_len(len - 700).unwrap();
    let (ok, report) = verify(&snap);
    assert!(!ok && report.contains("bytes, manifest says") && report.contains("end-of-archive"), "truncated: {report}");

    // One flipped byte inside a member.
    let (_p, snap) = packed(44);
    let part = first_part(&snap);
    let mut bytes = std::fs::read(&part).unwrap();
    bytes[512 + 100] ^= 0x40;
    std::fs::write(&part, &bytes).unwrap();
    let (ok, report) = verify(&snap);
    assert!(!ok && report.contains("sha256"), "flipped byte: {report}");
    assert!(report.lines().filter(|l| l.starts_with("FAIL")).count() >= 2, "both the part and the member fail: {report}");

    // A member missing from its part.
    let (_p, snap) = packed(45);
    rewrite_part(&snap, |b, members| {
        for (h, data) in members.into_iter().skip(1) {
            b.append(&h, &data[..]).unwrap();
        }
    });
    let (ok, report) = verify(&snap);
    assert!(!ok && report.contains("is in the manifest but missing from the part"), "missing member: {report}");

    // An extra member.
    let (_p, snap) = packed(46);
    rewrite_part(&snap, |b, members| {
        for (h, data) in members {
            b.append(&h, &data[..]).unwrap();
        }
        let mut h = tar::Header::new_ustar();
        h.set_path("intruder.txt").unwrap();
        h.set_size(3);
        h.set_cksum();
        b.append(&h, &b"hi\n"[..]).unwrap();
    });
    let (ok, report) = verify(&snap);
    assert!(!ok && report.contains("intruder.txt") && report.contains("extra member"), "extra member: {report}");

    // A wrong record count.
    let (_p, snap) = packed(47);
    let mut m = manifest(&snap);
    let n = m["resources"][0]["files"][0]["records"].as_u64().unwrap();
    m["resources"][0]["files"][0]["records"] = (n + 1).into();
    m["resources"][0]["records"] = (n + 1).into();
    std::fs::write(snap.join("manifest.json"), serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    let (ok, report) = verify(&snap);
    assert!(!ok && report.contains(&format!("{n} records, manifest says {}", n + 1)), "wrong count: {report}");
}

#[test]
fn sigkill_at_any_moment_never_leaves_a_snapshot_that_lies() {
    let p = Platform::new(0.3, 48);
    let job = p.job("kill", "archive = \"tar\"\npart_size = \"1MiB\"", &format!("{RESOURCES}\n\n[[resource]]\nname = \"members\"\n\n[[resource]]\nname = \"devices\""));
    let mut interrupted = 0;
    for delay_ms in [20, 120, 300, 600, 1000, 1600] {
        let before = snapshots(&p.out()).len();
        let mut child = ferry().arg("run").arg(&job).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        child.wait().unwrap();
        if snapshots(&p.out()).len() == before {
            interrupted += 1;
        }
        for snap in snapshots(&p.out()) {
            let m = manifest(&snap); // a visible directory always has its manifest...
            assert_eq!(m["status"], "completed", "after a kill at {delay_ms} ms");
            let (ok, report) = verify(&snap); // ...and is whole
            assert!(ok, "after a kill at {delay_ms} ms: {report}");
        }
    }
    assert!(interrupted >= 3, "only {interrupted} kills landed before the run finished; the test proves little");
    let out = run(&job);
    assert!(out.status.success(), "the next run succeeds: {}", stderr(&out));
    let leftovers: Vec<_> = std::fs::read_dir(p.out())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".staging-"))
        .collect();
    assert!(leftovers.is_empty(), "the next run cleaned up {leftovers:?}");
}
