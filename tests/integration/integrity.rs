//! Trust (issue 19): schema fingerprints checked against fastavro, parts encrypted with
//! age and decrypted by the `age` CLI, manifests signed and checked by `minisign`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::common::{Platform, ferry, python, run, snapshots, stderr};

const RESOURCES: &str = "[[resource]]\nname = \"users\"\n\n[[resource]]\nname = \"accounts\"\n\n[[resource]]\nname = \"transactions\"\nmax_records_per_file = 3000\n\n[[resource]]\nname = \"goals\"\nformat = \"csv\"";

fn manifest(snap: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(snap.join("manifest.json")).unwrap()).unwrap()
}

fn tool(program: &str, args: &[&str]) -> std::process::Output {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program} is missing ({e}); tests/run.sh installs it"));
    assert!(out.status.success(), "{program} {args:?}: {}", stderr(&out));
    out
}

fn verify(snap: &Path, extra: &[&str]) -> (bool, String) {
    let out = ferry().arg("verify").arg(snap).args(extra).output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out)))
}

/// The manifest matches docs/manifest.schema.json (Python's jsonschema).
pub(crate) fn assert_schema_valid(snap: &Path) {
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/manifest.schema.json");
    let code = "import json,sys,jsonschema\njsonschema.validate(json.load(open(sys.argv[1])), json.load(open(sys.argv[2])))";
    let out = Command::new(python()).args(["-c", code]).arg(snap.join("manifest.json")).arg(schema).output().unwrap();
    assert!(out.status.success(), "manifest does not match docs/manifest.schema.json: {}", stderr(&out));
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[test]
fn schema_fingerprints_equal_fastavros() {
    let p = Platform::new(0.02, 7);
    let out = run(&p.job(
        "fp",
        "format = \"avro\"",
        "[[resource]]\nname = \"users\"\n\n[[resource]]\nname = \"accounts\"\n\n[[resource]]\nname = \"transactions\"",
    ));
    assert!(out.status.success(), "{}", stderr(&out));
    let snap = &snapshots(&p.out())[0];
    let m = manifest(snap);
    // fastavro reads the writer schema from each file's own header, computes its Parsing
    // Canonical Form and both fingerprints.
    let code = "import sys,json,fastavro\nfrom fastavro.schema import to_parsing_canonical_form, fingerprint\n\
                r = fastavro.reader(open(sys.argv[1],'rb'))\n\
                s = fastavro.parse_schema(json.loads(r.metadata['avro.schema']))\n\
                c = to_parsing_canonical_form(s)\n\
                print(fingerprint(c, 'CRC-64-AVRO'), fingerprint(c, 'SHA-256'))";
    let mut checked = 0;
    for r in m["resources"].as_array().unwrap() {
        let file = snap.join(r["files"][0]["path"].as_str().unwrap());
        let plain = p.dir.path().join(format!("{}.avro", r["name"].as_str().unwrap()));
        let mut gz = flate2::read::MultiGzDecoder::new(std::fs::File::open(&file).unwrap());
        std::io::copy(&mut gz, &mut std::fs::File::create(&plain).unwrap()).unwrap();
        let out = Command::new(python()).args(["-c", code]).arg(&plain).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let text = String::from_utf8(out.stdout).unwrap();
        let (crc, sha) = text.trim().split_once(' ').unwrap();
        let fp = &r["schema_fingerprint"];
        assert_eq!(fp["crc64_avro"].as_str(), Some(crc), "{}: CRC-64-AVRO", r["name"]);
        assert_eq!(fp["sha256"].as_str(), Some(sha), "{}: SHA-256", r["name"]);
        checked += 1;
    }
    assert_eq!(checked, 3);
    assert_schema_valid(snap);
    let crcs: std::collections::BTreeSet<_> =
        m["resources"].as_array().unwrap().iter().map(|r| r["schema_fingerprint"]["crc64_avro"].to_string()).collect();
    assert_eq!(crcs.len(), 3, "different schemas, different fingerprints");
}

/// An age key pair (age-keygen) and an ssh-ed25519 one (ssh-keygen): (identity file,
/// recipient) each.
fn recipients(dir: &Path) -> [(PathBuf, String); 2] {
    let age_key = dir.join("age.txt");
    tool("age-keygen", &["-o", age_key.to_str().unwrap()]);
    let age_pub = String::from_utf8(tool("age-keygen", &["-y", age_key.to_str().unwrap()]).stdout).unwrap().trim().to_string();
    let ssh_key = dir.join("id_ed25519");
    tool("ssh-keygen", &["-q", "-t", "ed25519", "-N", "", "-C", "ferry-test", "-f", ssh_key.to_str().unwrap()]);
    let ssh_pub = std::fs::read_to_string(dir.join("id_ed25519.pub")).unwrap().trim().to_string();
    [(age_key, age_pub), (ssh_key, ssh_pub)]
}

fn age_decrypt(identity: &Path, file: &Path) -> Vec<u8> {
    tool("age", &["-d", "-i", identity.to_str().unwrap(), file.to_str().unwrap()]).stdout
}

#[test]
fn encrypted_parts_decrypt_with_the_age_cli_to_the_plaintext_parts() {
    let p = Platform::new(0.05, 19);
    let [(age_key, age_pub), (ssh_key, ssh_pub)] = recipients(p.dir.path());
    let plain_job = p.job("plain", "archive = \"tar\"\npart_size = \"64KiB\"", RESOURCES);
    assert!(run(&plain_job).status.success());
    let plain_snap = snapshots(&p.out())[0].clone();
    let plain_m = manifest(&plain_snap);
    let extra = format!("archive = \"tar\"\npart_size = \"64KiB\"\nencrypt_to = [\"{age_pub}\", \"{ssh_pub}\"]");
    let out = run(&p.job("sealed", &extra, RESOURCES));
    assert!(out.status.success(), "{}", stderr(&out));
    let snap = snapshots(&p.out()).into_iter().find(|s| s != &plain_snap).unwrap();
    let m = manifest(&snap);
    assert_eq!(m["encryption"]["method"], "age");
    assert_eq!(m["encryption"]["recipients"].as_array().unwrap().len(), 2);
    assert_schema_valid(&snap);

    let (parts, plain_parts) = (m["archives"].as_array().unwrap(), plain_m["archives"].as_array().unwrap());
    assert!(parts.len() >= 3 && parts.len() == plain_parts.len(), "{} parts, {} plain", parts.len(), plain_parts.len());
    for (a, plain) in parts.iter().zip(plain_parts) {
        let name = a["name"].as_str().unwrap();
        assert!(name.ends_with(".tar.age"), "{name}");
        let stored = std::fs::read(snap.join(name)).unwrap();
        assert!(stored.starts_with(b"age-encryption.org/v1\n"), "{name} is not an age file");
        assert_eq!(
            (stored.len() as u64, sha256(&stored)),
            (a["bytes"].as_u64().unwrap(), a["sha256"].as_str().unwrap().to_string()),
            "{name}: stored"
        );
        // Both recipients can decrypt, with the reference CLI, to the very bytes ferry
        // writes without encryption (and the manifest pins).
        let expected = std::fs::read(plain_snap.join(plain["name"].as_str().unwrap())).unwrap();
        for identity in [&age_key, &ssh_key] {
            let decrypted = age_decrypt(identity, &snap.join(name));
            assert!(decrypted == expected, "{name} decrypted with {} differs from the plaintext part", identity.display());
        }
        assert_eq!(a["plaintext"]["sha256"].as_str().unwrap(), sha256(&expected), "{name}: plaintext sha256");
        assert_eq!(a["plaintext"]["bytes"].as_u64().unwrap(), expected.len() as u64);
        assert!(!snap.join(name.trim_end_matches(".age")).exists(), "a plaintext part was left beside {name}");
    }

    // verify: the stored bytes without a key, everything with one (age or ssh).
    let (ok, report) = verify(&snap, &[]);
    assert!(ok && report.contains("--identity"), "{report}");
    for identity in [&age_key, &ssh_key] {
        let (ok, report) = verify(&snap, &["--identity", identity.to_str().unwrap()]);
        assert!(ok, "{report}");
        assert!(report.contains("(decrypted)") && report.contains("records"), "{report}");
    }
    assert_relations_read(&snap, &age_key);
    // Another key cannot decrypt; a changed byte fails the stored and decrypted checks.
    let other = p.dir.path().join("other.txt");
    tool("age-keygen", &["-o", other.to_str().unwrap()]);
    let (ok, report) = verify(&snap, &["--identity", other.to_str().unwrap()]);
    assert!(!ok && report.contains("cannot decrypt"), "{report}");
    let first = snap.join(parts[0]["name"].as_str().unwrap());
    let mut bytes = std::fs::read(&first).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(&first, bytes).unwrap();
    let (ok, report) = verify(&snap, &["--identity", age_key.to_str().unwrap()]);
    assert!(!ok && report.contains("FAIL") && report.contains("sha256"), "{report}");
}

#[test]
fn loose_files_are_encrypted_one_by_one() {
    let p = Platform::new(0.02, 23);
    let [(age_key, age_pub), _] = recipients(p.dir.path());
    let out = run(&p.job("loose", &format!("encrypt_to = [\"{age_pub}\"]"), RESOURCES));
    assert!(out.status.success(), "{}", stderr(&out));
    let snap = &snapshots(&p.out())[0];
    let m = manifest(snap);
    let files: Vec<&Value> = m["resources"].as_array().unwrap().iter().flat_map(|r| r["files"].as_array().unwrap()).collect();
    assert!(files.len() > 3);
    for f in files {
        let name = f["path"].as_str().unwrap();
        assert!(name.ends_with(".gz.age"), "{name}");
        let stored = std::fs::read(snap.join(name)).unwrap();
        assert_eq!(sha256(&stored), f["sha256"].as_str().unwrap(), "{name}: stored sha256");
        let plain = age_decrypt(&age_key, &snap.join(name));
        assert_eq!(sha256(&plain), f["plaintext"]["sha256"].as_str().unwrap(), "{name}: plaintext sha256");
        assert!(plain.starts_with(&[0x1f, 0x8b]), "{name}: the plaintext is the gzip file");
    }
    assert_schema_valid(snap);
    let (ok, report) = verify(snap, &["--identity", age_key.to_str().unwrap()]);
    assert!(ok, "{report}");
    assert_relations_read(snap, &age_key);
}

/// `verify --relations` reads encrypted files through the identity (every reference of
/// the resources in the job resolves); without it, it says the files are encrypted.
fn assert_relations_read(snap: &Path, identity: &Path) {
    let (_, report) = verify(snap, &["--relations", "--identity", identity.to_str().unwrap()]);
    let line = |subject: &str| report.lines().find(|l| l.contains(subject)).unwrap_or_else(|| panic!("no {subject}: {report}"));
    for subject in ["accounts.user_guid -> users.guid", "transactions.account_guid -> accounts.guid", "goals.account_guid -> accounts.guid"]
    {
        let l = line(subject);
        assert!(l.starts_with("ok") && l.contains("all resolve") && !l.contains(" 0 references"), "{l}");
    }
    assert!(!report.contains("cannot be read"), "{report}");
    let (ok, report) = verify(snap, &["--relations"]);
    assert!(!ok && report.contains("encrypted; pass --identity"), "{report}");
}

#[test]
fn bad_recipients_fail_the_job_naming_the_key() {
    let p = Platform::new(0.01, 3);
    let out = run(&p.job("bad", "encrypt_to = [\"age1notakey\"]", "[[resource]]\nname = \"users\""));
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("output.encrypt_to") && err.contains("age1notakey") && err.contains(":12:"), "{err}");
    let out = run(&p.job("nokey", "sign_with = \"missing.key\"", "[[resource]]\nname = \"users\""));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("output.sign_with") && stderr(&out).contains("missing.key"), "{}", stderr(&out));
}

#[test]
fn signed_manifests_verify_with_minisign_and_refuse_tampering_and_other_keys() {
    let p = Platform::new(0.02, 29);
    let keys = p.dir.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let out = ferry().args(["keys", "generate", "--dir"]).arg(&keys).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(keys.join("ferry.key")).unwrap().permissions().mode() & 0o777, 0o600);
    let again = ferry().args(["keys", "generate", "--dir"]).arg(&keys).output().unwrap();
    assert!(!again.status.success() && stderr(&again).contains("already exists"), "a key pair was overwritten");

    let out = run(&p.job("signed", "archive = \"tar\"\nsign_with = \"keys/ferry.key\"", RESOURCES));
    assert!(out.status.success(), "{}", stderr(&out));
    let snap = &snapshots(&p.out())[0];
    let pubkey = keys.join("ferry.pub");
    let minisign = |dir: &Path, key: &Path| {
        Command::new("minisign")
            .arg("-V")
            .arg("-m")
            .arg(dir.join("manifest.json"))
            .arg("-p")
            .arg(key)
            .output()
            .expect("minisign (tests/run.sh installs it)")
    };
    let ok = minisign(snap, &pubkey);
    assert!(ok.status.success(), "minisign refused ferry's signature: {}{}", String::from_utf8_lossy(&ok.stdout), stderr(&ok));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("snapshot:"), "the trusted comment names the snapshot");
    let (ok, report) = verify(snap, &["--key", pubkey.to_str().unwrap()]);
    assert!(ok && report.contains("signature ok"), "{report}");

    // Another key pair: refused by both.
    let other = p.dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    assert!(ferry().args(["keys", "generate", "--dir"]).arg(&other).status().unwrap().success());
    assert!(!minisign(snap, &other.join("ferry.pub")).status.success());
    let (ok, report) = verify(snap, &["--key", other.join("ferry.pub").to_str().unwrap()]);
    assert!(!ok && report.contains("manifest.json.minisig"), "{report}");

    // A tampered manifest (one record count changed): refused by both.
    let text = std::fs::read_to_string(snap.join("manifest.json")).unwrap();
    let tampered = text.replacen("\"records\": ", "\"records\": 1", 1);
    assert_ne!(text, tampered);
    std::fs::write(snap.join("manifest.json"), &tampered).unwrap();
    assert!(!minisign(snap, &pubkey).status.success(), "minisign accepted a tampered manifest");
    let (ok, report) = verify(snap, &["--key", pubkey.to_str().unwrap()]);
    assert!(!ok && report.contains("does not verify"), "{report}");
    std::fs::write(snap.join("manifest.json"), &text).unwrap();

    // A missing signature, when a key is given, is an error.
    std::fs::remove_file(snap.join("manifest.json.minisig")).unwrap();
    let (ok, report) = verify(snap, &["--key", pubkey.to_str().unwrap()]);
    assert!(!ok && report.contains("not signed"), "{report}");
}
