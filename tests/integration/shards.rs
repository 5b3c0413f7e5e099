//! Scale-out (issue 21): `ferry run --shard i/N` on N processes, then `ferry assemble`.
//! The assembled snapshot holds exactly the rows of a single-process run and passes
//! `ferry verify`; a shard killed and rerun alone changes nothing; assemble refuses a
//! missing, a duplicated and a stale shard, and zero shards.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Output};

use crate::common::{Platform, ferry, plugin, snapshots, stderr};
use crate::servers;

const SNAPSHOT: &str = "5a0c6a1e-3b7d-4c2e-9f10-2026033100a4";

/// Tables (one cut, one windowed and cut), attachments and an aggregate (whole).
fn resources() -> String {
    format!(
        "[[resource]]\nname = \"users\"\n[[resource]]\nname = \"members\"\n[[resource]]\nname = \"accounts\"\n\
         [[resource]]\nname = \"transactions\"\nmonths = 12\n[[resource]]\nname = \"attachments\"\n\
         [[resource]]\nname = \"category_totals\"\nplugin = \"{}\"\nmonths = 6\n",
        plugin("ferry-example-category-totals").display()
    )
}

fn shard(job: &Path, index: u32, count: u32, extra: &[&str]) -> Child {
    shard_cmd(job, index, count, extra, &[])
}

fn shard_env(job: &Path, index: u32, count: u32, env: &[(&str, &str)]) -> Child {
    shard_cmd(job, index, count, &[], env)
}

fn shard_cmd(job: &Path, index: u32, count: u32, extra: &[&str], env: &[(&str, &str)]) -> Child {
    ferry()
        .args(["run", "--progress", "none", "--snapshot-id", SNAPSHOT, "--shard", &format!("{index}/{count}")])
        .args(extra)
        .envs(env.iter().copied())
        .arg(job)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

fn ok(out: Output, what: &str) -> String {
    assert!(out.status.success(), "{what} failed: {}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The 4 shards as 4 processes at once.
fn run_shards(job: &Path, count: u32) {
    let children: Vec<Child> = (0..count).map(|i| shard(job, i, count, &[])).collect();
    for (i, c) in children.into_iter().enumerate() {
        ok(c.wait_with_output().unwrap(), &format!("shard {i}/{count}"));
    }
}

fn assemble(dir: &Path, count: u32) -> Output {
    ferry().arg("assemble").arg(dir).args(["--shards", &count.to_string()]).output().unwrap()
}

fn verify(dir: &Path) {
    ok(ferry().arg("verify").arg(dir).output().unwrap(), "ferry verify");
}

/// Per resource, the records' count and the multiset of its rows (each row decoded from
/// Avro and printed), read from the files the manifest lists (loose, gzipped Avro) or
/// from the tar parts holding them.
fn rows(snapshot: &Path) -> BTreeMap<String, (u64, Vec<String>)> {
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(snapshot.join("manifest.json")).unwrap()).unwrap();
    let mut members: BTreeMap<(String, String), Vec<u8>> = BTreeMap::new();
    for part in manifest["archives"].as_array().into_iter().flatten() {
        let name = part["name"].as_str().unwrap();
        let mut tar = tar::Archive::new(std::fs::File::open(snapshot.join(name)).unwrap());
        for e in tar.entries().unwrap() {
            let mut e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut bytes).unwrap();
            members.insert((name.to_string(), path), bytes);
        }
    }
    let mut all = BTreeMap::new();
    for r in manifest["resources"].as_array().unwrap() {
        let mut rows = Vec::new();
        for f in r["files"].as_array().unwrap().iter().filter(|f| f["kind"].is_null()) {
            let path = f["path"].as_str().unwrap();
            let bytes = match f["archive"].as_str() {
                Some(part) => members[&(part.to_string(), path.to_string())].clone(),
                None => std::fs::read(snapshot.join(path)).unwrap(),
            };
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(&bytes[..]), &mut data).unwrap();
            for v in apache_avro::Reader::new(&data[..]).unwrap() {
                rows.push(format!("{:?}", v.unwrap()));
            }
        }
        rows.sort();
        all.insert(r["name"].as_str().unwrap().to_string(), (r["records"].as_u64().unwrap(), rows));
    }
    all
}

fn assert_same_rows(single: &Path, sharded: &Path) {
    let (a, b) = (rows(single), rows(sharded));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (name, (records, rows)) in &a {
        let (records_b, rows_b) = &b[name];
        assert_eq!(records, records_b, "records of `{name}`");
        assert_eq!(rows.len() as u64, *records, "rows of `{name}` in the single run");
        assert!(rows == rows_b, "the rows of `{name}` differ between the single run and the shards");
    }
    assert!(a["transactions"].0 > 1000 && a["category_totals"].0 > 0, "the platform is too small to show anything: {:?}", a.keys());
}

/// Per resource, the record count and a digest of the sorted rows, as fastavro (an
/// independent reader) decodes them from the parts or loose files the manifest lists.
const FASTAVRO_ROWS: &str = r#"
import gzip, hashlib, io, json, sys, tarfile
import fastavro
snap = sys.argv[1]
m = json.load(open(f"{snap}/manifest.json"))
members = {}
for a in m.get("archives", []):
    with tarfile.open(f"{snap}/{a['name']}") as t:
        for e in t.getmembers():
            members[(a["name"], e.name)] = t.extractfile(e).read()
out = {}
for r in m["resources"]:
    rows = []
    for f in r["files"]:
        if f.get("kind"):
            continue
        raw = members[(f["archive"], f["path"])] if f.get("archive") else open(f"{snap}/{f['path']}", "rb").read()
        rows += [json.dumps(x, sort_keys=True, default=str) for x in fastavro.reader(io.BytesIO(gzip.decompress(raw)))]
    rows.sort()
    out[r["name"]] = [len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest()]
print(json.dumps(out, sort_keys=True))
"#;

fn fastavro_rows(snapshot: &Path) -> String {
    let out = std::process::Command::new(crate::common::python()).args(["-c", FASTAVRO_ROWS]).arg(snapshot).output().unwrap();
    ok(out, "fastavro")
}

fn single_run(job: &Path, out: &Path) -> PathBuf {
    ok(ferry().args(["run", "--progress", "none"]).arg(job).output().unwrap(), "the single-process run");
    snapshots(out).into_iter().next().unwrap()
}

/// The manifests in `dir/shards/` of shard `index`.
fn shard_manifests(dir: &Path, index: u32) -> Vec<PathBuf> {
    let prefix = format!("shard-{index:04}-");
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir.join("shards"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(&prefix))
        .collect();
    found.sort();
    found
}

#[test]
fn four_shards_make_the_snapshot_of_one_process_and_a_rerun_shard_replaces_its_own() {
    let platform = Platform::new(0.3, 21);
    let single_job = platform.job("single", "part_size = \"256KiB\"\narchive = \"tar\"", &resources());
    let single = single_run(&single_job, &platform.out());
    // The shards write into their own output root, so the comparison reads two roots.
    let job = platform.job("sharded", "dir = \"out-shards\"\npart_size = \"256KiB\"\narchive = \"tar\"", &resources());
    let text = std::fs::read_to_string(&job).unwrap().replacen("dir = \"out\"\n", "", 1);
    std::fs::write(&job, text).unwrap();
    let out = platform.dir.path().join("out-shards");
    run_shards(&job, 4);
    let dir = out.join(SNAPSHOT);
    let printed = ok(assemble(&dir, 4), "assemble");
    assert!(printed.contains("assembled from 4 shards"), "{printed}");
    verify(&dir);
    assert_same_rows(&single, &dir);
    assert_eq!(fastavro_rows(&single), fastavro_rows(&dir), "fastavro reads other rows from the single run and the shards");
    crate::integrity::assert_schema_valid(&dir);
    // The output root's catalog records the assembled snapshot.
    let listed = ok(ferry().args(["snapshots", "list", "--dir"]).arg(&out).output().unwrap(), "snapshots list");
    assert!(listed.contains(SNAPSHOT) && listed.contains("completed"), "{listed}");

    // Shard 2 killed mid-run (held before it publishes): its earlier output stands.
    let before = shard_manifests(&dir, 2);
    let mut killed = ferry()
        .args(["run", "--progress", "none", "--snapshot-id", SNAPSHOT, "--shard", "2/4"])
        .arg(&job)
        .env("FERRY_FAULT_HOLD_BEFORE_PUBLISH_MS", "60000")
        .spawn()
        .unwrap();
    let staging = dir.join(".staging-shard-0002-of-0004");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    // Its pid file and a first file are enough: the hold keeps it from publishing for a
    // minute whenever it is killed (waiting for three entries once timed out in a full
    // suite on a loaded machine, the shard having held and published).
    while !staging.join(".pid").exists() || std::fs::read_dir(&staging).map(|d| d.count()).unwrap_or(0) < 2 {
        assert!(std::time::Instant::now() < deadline, "shard 2 never started writing");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    killed.kill().unwrap();
    killed.wait().unwrap();
    assert_eq!(shard_manifests(&dir, 2), before, "a killed shard must leave its earlier manifest alone");
    ok(assemble(&dir, 4), "assemble after a killed rerun");
    verify(&dir);

    // Rerun alone, to the end: it replaces its own files and manifest, nothing else.
    let others: Vec<PathBuf> = [0, 1, 3].iter().flat_map(|i| shard_manifests(&dir, *i)).collect();
    ok(shard(&job, 2, 4, &[]).wait_with_output().unwrap(), "shard 2 rerun");
    let after = shard_manifests(&dir, 2);
    assert_eq!(after.len(), 1, "one manifest for shard 2: {after:?}");
    assert_ne!(after, before, "the rerun writes a manifest of its own attempt");
    assert_eq!([0, 1, 3].iter().flat_map(|i| shard_manifests(&dir, *i)).collect::<Vec<_>>(), others);
    ok(assemble(&dir, 4), "assemble after the rerun");
    verify(&dir);
    assert_same_rows(&single, &dir);
    assert!(!staging.exists(), "the rerun removed the killed attempt's staging directory");
}

#[test]
fn assemble_refuses_missing_duplicated_stale_and_zero_shards() {
    let platform = Platform::new(0.05, 22);
    let job = platform.job("refusals", "", "[[resource]]\nname = \"users\"\n[[resource]]\nname = \"accounts\"\n");
    let dir = platform.out().join(SNAPSHOT);
    let refused = |count: u32, needle: &str| {
        let out = assemble(&dir, count);
        assert!(!out.status.success(), "assemble accepted: {}", String::from_utf8_lossy(&out.stdout));
        let text = stderr(&out);
        assert!(text.contains(needle), "expected {needle:?} in: {text}");
        assert!(!dir.join("manifest.json").exists(), "a refused assemble wrote a manifest");
        text
    };
    // Zero shards: nothing ran yet, or `--shards 0`.
    refused(4, "holds no shard manifest");
    for i in [0, 1, 3] {
        ok(shard(&job, i, 4, &[]).wait_with_output().unwrap(), "shard");
    }
    refused(0, "`--shards 0` must be at least 1");
    // Missing: shard 2 never ran.
    let text = refused(4, "1 of 4 shards missing: 2/4");
    assert!(text.contains("--shard i/4"), "{text}");
    ok(shard(&job, 2, 4, &[]).wait_with_output().unwrap(), "shard 2");
    // Duplicated: a second worker of index 1 (another attempt's manifest beside it).
    let one = shard_manifests(&dir, 1).remove(0);
    let text = std::fs::read_to_string(&one).unwrap();
    let attempt = serde_json::from_str::<serde_json::Value>(&text).unwrap()["attempt"].as_str().unwrap().to_string();
    let twin = dir.join("shards").join(format!("shard-0001-of-0004.{}.json", "f".repeat(32)));
    std::fs::write(&twin, text.replace(&attempt, &"f".repeat(32))).unwrap();
    refused(4, "shard 1/4 has 2 manifests");
    std::fs::remove_file(&twin).unwrap();
    // Stale: an earlier attempt with 8 shards left its shard 5 here.
    ok(shard(&job, 5, 8, &[]).wait_with_output().unwrap(), "shard 5/8");
    refused(4, "of an earlier attempt with 8 shards, not 4");
    for p in shard_manifests(&dir, 5) {
        std::fs::remove_file(p).unwrap();
    }
    for f in std::fs::read_dir(&dir).unwrap().flatten() {
        if f.file_name().to_string_lossy().contains("shard0005of0008") {
            std::fs::remove_file(f.path()).unwrap();
        }
    }
    // Stale: shard 3 of an earlier attempt at another as_of under the same snapshot id.
    let old = platform.job("refusals", "", "[[resource]]\nname = \"users\"\n[[resource]]\nname = \"accounts\"\n");
    let text = std::fs::read_to_string(&old).unwrap().replace("2026-03-31T14:30:22Z", "2026-02-28T00:00:00Z");
    let old = platform.dir.path().join("refusals-old.toml");
    std::fs::write(&old, text).unwrap();
    ok(shard(&old, 3, 4, &[]).wait_with_output().unwrap(), "shard 3 at another as_of");
    refused(4, "as of 2026-02-28T00:00:00.000000Z, the other shards");
    // Rerun shard 3 of this attempt: assembled, and it verifies.
    ok(shard(&job, 3, 4, &[]).wait_with_output().unwrap(), "shard 3 rerun");
    ok(assemble(&dir, 4), "assemble");
    verify(&dir);
}

#[test]
fn shard_options_are_checked() {
    let platform = Platform::new(0.01, 23);
    let job = platform.job("opts", "", "[[resource]]\nname = \"users\"\n");
    for (args, needle) in [
        (vec!["--shard", "4/4"], "shard index 4 is not below the shard count 4"),
        (vec!["--shard", "1-4"], "is not a shard; write it as INDEX/COUNT"),
        (vec!["--shard", "1/4", "--shards", "8"], "--shard 1/4 says 4 shards but --shards says 8"),
        (vec!["--shard", "auto"], "--shard auto found no shard index"),
        (vec!["--shard", "0/2", "--snapshot-id", "../x"], "is not a snapshot id; ids are lowercase UUIDs"),
    ] {
        let out = ferry().args(["run", "--progress", "none"]).args(&args).arg(&job).env_remove("JOB_COMPLETION_INDEX").output().unwrap();
        assert!(!out.status.success() && stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
    }
    // `auto` takes the Kubernetes index and the count from the environment.
    let out = ferry()
        .args(["run", "--progress", "none", "--shard", "auto"])
        .arg(&job)
        .env("JOB_COMPLETION_INDEX", "1")
        .env("FERRY_SHARDS", "2")
        .output()
        .unwrap();
    let printed = ok(out, "--shard auto");
    assert!(printed.contains("shard 1/2 of snapshot"), "{printed}");
    // A job without as_of has no moment all shards share.
    let text = std::fs::read_to_string(&job).unwrap().replace("as_of = \"2026-03-31T14:30:22Z\"\n", "");
    std::fs::write(&job, text).unwrap();
    let out = ferry().args(["run", "--progress", "none", "--shard", "0/2"]).arg(&job).output().unwrap();
    assert!(!out.status.success() && stderr(&out).contains("needs one as_of every shard shares"), "{}", stderr(&out));
}

#[test]
fn four_shards_on_postgres_make_the_snapshot_of_one_process() {
    let Some(url) = servers::postgres("shards") else { return };
    let dir = tempfile::tempdir().unwrap();
    servers::demo_on_postgres(dir.path(), &url, "0.2", "24");
    let write = |name: &str| {
        let path = dir.path().join(format!("{name}.toml"));
        let text = format!(
            "[snapshot]\nname = \"pg\"\nas_of = \"2026-03-31T14:30:22Z\"\n\n[source]\npostgres = \"{url}\"\n\n[output]\ndir = \"out-{name}\"\n\n{}",
            // The attachments plugin fails on the demo's PostgreSQL attachment tables
            // (`file_name` arrives as a blob) with or without shards, as postgres.rs
            // leaves it out too: tables and the aggregate only here.
            resources().replace("[[resource]]\nname = \"attachments\"\n", "")
        );
        std::fs::write(&path, text).unwrap();
        path
    };
    let single = single_run(&write("single"), &dir.path().join("out-single"));
    let job = write("sharded");
    run_shards(&job, 4);
    let snap = dir.path().join("out-sharded").join(SNAPSHOT);
    ok(assemble(&snap, 4), "assemble");
    verify(&snap);
    assert_same_rows(&single, &snap);
}

#[test]
fn the_service_downloads_an_assembled_snapshot() {
    use crate::service::{Server, Setup, download_all, get, token};
    let resources = "[[resource]]\nname = \"users\"\n[[resource]]\nname = \"accounts\"\n[[resource]]\nname = \"transactions\"\n";
    let setup = Setup::new(0.05, "archive = \"tar\"\npart_size = \"64KiB\"", resources, "");
    // The shards write into the service's output root.
    let job = setup.platform.dir.path().join("demo.toml");
    let text = std::fs::read_to_string(&job).unwrap().replacen("dir = \"out\"", "dir = \"srv\"", 1);
    std::fs::write(&job, text).unwrap();
    run_shards(&job, 4);
    ok(assemble(&setup.root().join(SNAPSHOT), 4), "assemble");
    let reader = token(&setup.config, "reader", "reader");
    let s = Server::start(&setup.config);
    let (status, v) = get(&s, &reader, &format!("/api/v1/snapshots/{SNAPSHOT}"));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"], "completed", "{v}");
    let files = download_all(&s, &reader, SNAPSHOT);
    let parts = files.iter().filter(|(f, _)| f["kind"] == "part").count();
    assert!(parts >= 4, "every shard's parts are served: {parts}");
}

/// Every object under `exports/<id>/` of the bucket, by name, with its size.
fn s3_objects(s3: &ferry::s3::S3, id: &str) -> BTreeMap<String, u64> {
    s3.list(id).unwrap().into_iter().map(|o| (o.location.as_ref().split_once(&format!("/{id}/")).unwrap().1.to_string(), o.size)).collect()
}

/// Shard `index`'s manifests in the bucket.
fn s3_shard_manifests(s3: &ferry::s3::S3, index: u32) -> Vec<String> {
    s3_objects(s3, SNAPSHOT).into_keys().filter(|n| n.starts_with(&format!("shards/shard-{index:04}-"))).collect()
}

fn assemble_s3(place: &str, count: u32, job: &Path) -> Output {
    ferry().args(["assemble", place, "--shards", &count.to_string(), "--job"]).arg(job).output().unwrap()
}

#[test]
#[cfg_attr(not(feature = "test-hooks"), ignore = "needs the fault hooks: cargo test --features test-hooks")]
fn four_shards_from_postgres_to_s3_assemble_verify_download_and_rerun() {
    use crate::service::{Server, download_all, get, token};
    let Some(url) = servers::postgres("shards_s3") else { return };
    let Some((endpoint, bucket)) = servers::s3("shards_s3") else { return };
    let dir = tempfile::tempdir().unwrap();
    servers::demo_on_postgres(dir.path(), &url, "0.2", "26");
    let tables = resources().replace("[[resource]]\nname = \"attachments\"\n", "");
    let write = |name: &str, output: &str| {
        let path = dir.path().join(format!("{name}.toml"));
        let text = format!(
            "[snapshot]\nname = \"pg\"\nas_of = \"2026-03-31T14:30:22Z\"\n\n[source]\npostgres = \"{url}\"\n\n[output]\n{output}\npart_size = \"64KiB\"\n\n{}\n{tables}",
            servers::s3_table(&endpoint)
        );
        std::fs::write(&path, text).unwrap();
        path
    };
    let single = single_run(&write("single", "dir = \"out-single\""), &dir.path().join("out-single"));
    // The shards' local root (staging, and the catalog assemble records in) is the service's.
    let job = write("sharded", &format!("dir = \"s3://{bucket}/exports\"\nlocal_dir = \"srv\""));
    // A sample of 300 rows: the cut points come from a 1-in-k sample of the values.
    let sampled = [("FERRY_TEST_SHARD_SAMPLE_TARGET", "300")];
    let children: Vec<Child> = (0..4).map(|i| shard_env(&job, i, 4, &sampled)).collect();
    for (i, c) in children.into_iter().enumerate() {
        ok(c.wait_with_output().unwrap(), &format!("shard {i}/4"));
    }
    let place = format!("s3://{bucket}/exports/{SNAPSHOT}");
    let printed = ok(assemble_s3(&place, 4, &job), "assemble");
    assert!(printed.contains("assembled from 4 shards"), "{printed}");
    ok(ferry().args(["verify", &place, "--job"]).arg(&job).output().unwrap(), "ferry verify s3://");
    let s3 = ferry::s3::S3::connect(
        &ferry::s3::S3Url::parse(&format!("s3://{bucket}/exports")).unwrap().unwrap(),
        &servers::s3_settings(&endpoint),
    )
    .unwrap();
    let copy = |name: &str| {
        let to = dir.path().join(name).join(SNAPSHOT);
        ferry::s3::download_snapshot(&s3, SNAPSHOT, &to).unwrap();
        to
    };
    assert_same_rows(&single, &copy("first"));
    let objects = s3_objects(&s3, SNAPSHOT);
    assert_only_listed(&objects, &copy("first"));
    let root = dir.path().join("srv");
    let listed = ok(ferry().args(["snapshots", "list", "--dir"]).arg(&root).output().unwrap(), "snapshots list");
    assert!(listed.contains(SNAPSHOT) && listed.contains("completed"), "{listed}");

    // The service serves the assembled snapshot from the bucket.
    let config = dir.path().join("service.toml");
    std::fs::write(
        &config,
        "output_dir = \"srv\"\n[limits]\nheader_read_timeout = \"1s\"\n\n[[job]]\nname = \"pg\"\nfile = \"sharded.toml\"\n",
    )
    .unwrap();
    let reader = token(&config, "reader", "reader");
    let server = Server::start(&config);
    let (status, v) = get(&server, &reader, &format!("/api/v1/snapshots/{SNAPSHOT}/files"));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["stored"], format!("s3://{bucket}/exports/{SNAPSHOT}"), "{v}");
    let files = download_all(&server, &reader, SNAPSHOT);
    assert!(files.iter().filter(|(f, _)| f["kind"] == "part").count() >= 4, "every shard's parts are served");
    drop(server);

    // Shard 2 rerun and killed mid-upload: its earlier manifest was withdrawn first, so
    // assemble finds it missing rather than a manifest whose parts are being replaced.
    let before = s3_shard_manifests(&s3, 2);
    let others: Vec<String> = [0, 1, 3].iter().flat_map(|i| s3_shard_manifests(&s3, *i)).collect();
    let killed = shard_env(&job, 2, 4, &[sampled[0], ("FERRY_FAULT_S3_ABORT_AFTER_BYTES", "20000")]).wait_with_output().unwrap();
    assert!(!killed.status.success(), "the fault did not fire");
    assert!(s3_shard_manifests(&s3, 2).is_empty(), "a killed rerun left a shard manifest");
    let refused = assemble_s3(&place, 4, &job);
    assert!(!refused.status.success() && stderr(&refused).contains("1 of 4 shards missing: 2/4"), "{}", stderr(&refused));
    // Rerun alone: its own objects replaced, nothing else touched, the same snapshot.
    ok(shard_env(&job, 2, 4, &sampled).wait_with_output().unwrap(), "shard 2 rerun");
    let after = s3_shard_manifests(&s3, 2);
    assert!(after.len() == 1 && after != before, "one new manifest for shard 2: {after:?}");
    assert_eq!([0, 1, 3].iter().flat_map(|i| s3_shard_manifests(&s3, *i)).collect::<Vec<_>>(), others);
    ok(assemble_s3(&place, 4, &job), "assemble after the rerun");
    ok(ferry().args(["verify", &place, "--job"]).arg(&job).output().unwrap(), "ferry verify after the rerun");
    let rerun = copy("rerun");
    assert_same_rows(&single, &rerun);
    let objects_after = s3_objects(&s3, SNAPSHOT);
    assert_only_listed(&objects_after, &rerun);
    let names = |o: &BTreeMap<String, u64>| o.keys().filter(|n| !n.starts_with("shards/")).cloned().collect::<Vec<_>>();
    assert_eq!(names(&objects), names(&objects_after), "the rerun wrote other objects than the first attempt");

    // Duplicated in the bucket: a second manifest of shard 1.
    let one = &s3_shard_manifests(&s3, 1)[0];
    let text = String::from_utf8(s3.get(&format!("{SNAPSHOT}/{one}")).unwrap()).unwrap();
    let attempt = serde_json::from_str::<serde_json::Value>(&text).unwrap()["attempt"].as_str().unwrap().to_string();
    let twin = format!("{SNAPSHOT}/shards/shard-0001-of-0004.{}.json", "f".repeat(32));
    s3.put(&twin, text.replace(&attempt, &"f".repeat(32)).into_bytes()).unwrap();
    let refused = assemble_s3(&place, 4, &job);
    assert!(!refused.status.success() && stderr(&refused).contains("shard 1/4 has 2 manifests"), "{}", stderr(&refused));
    s3.delete(&twin).unwrap();
    ok(assemble_s3(&place, 4, &job), "assemble once the twin is gone");
}

/// Every object in the bucket (shard manifests aside) is the manifest or a part or file
/// the assembled manifest lists: a rerun left nothing of an earlier attempt behind.
fn assert_only_listed(objects: &BTreeMap<String, u64>, snapshot: &Path) {
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(snapshot.join("manifest.json")).unwrap()).unwrap();
    let mut listed: Vec<String> =
        manifest["archives"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap().to_string()).collect();
    listed.push("manifest.json".into());
    listed.sort();
    let found: Vec<String> = objects.keys().filter(|n| !n.starts_with("shards/")).cloned().collect();
    assert_eq!(found, listed, "objects beyond the manifest's");
}
