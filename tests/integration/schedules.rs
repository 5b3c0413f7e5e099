//! Schedules through `ferry serve` with an injected clock (`FERRY_TEST_CLOCK`, a
//! `test-hooks` build only): a weekly slot fires once, a restart inside the slot does not
//! repeat it, a server down across a slot catches up once (`once`) or not at all
//! (`skip`), and admins pause and resume. Also the retention purge: expired snapshots
//! leave the disk, the catalog's live list and the S3 bucket they were delivered to.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::ferry;
use crate::service::{Server, Setup, client, create, finished, get, json_of, token, wait_for};

fn set_clock(file: &Path, t: &str) {
    std::fs::write(file, t).unwrap();
}

fn schedules(s: &Server, token: &str) -> Vec<Value> {
    let (status, v) = get(s, token, "/api/v1/schedules");
    assert_eq!(status, 200, "{v}");
    v["schedules"].as_array().unwrap().clone()
}

fn schedule<'a>(list: &'a [Value], name: &str) -> &'a Value {
    list.iter().find(|s| s["name"] == name).unwrap_or_else(|| panic!("no schedule {name} in {list:?}"))
}

/// Every request, oldest first.
fn requests(s: &Server, token: &str) -> Vec<Value> {
    let (status, v) = get(s, token, "/api/v1/snapshots?per_page=100");
    assert_eq!(status, 200, "{v}");
    let mut list = v["snapshots"].as_array().unwrap().clone();
    list.reverse();
    list
}

/// Waits until `n` requests exist and every one of them is finished.
fn settle(s: &Server, token: &str, n: usize) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let list = requests(s, token);
        if list.len() >= n {
            for r in &list {
                wait_for(s, token, r["id"].as_str().unwrap(), Duration::from_secs(120), finished);
            }
            return requests(s, token);
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{} requests after 30s, expected {n}: {list:?}", list.len());
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn start(config: &Path, clock: &Path) -> Server {
    Server::start_env(config, "127.0.0.1:0", &[("FERRY_TEST_CLOCK", clock.to_str().unwrap())])
}

const SCHEDULES: &str = r#"
[[job]]
name = "other"
file = "demo.toml"

[[schedule]]
name = "weekly-once"
job = "demo"
cadence = "weekly"
day = "monday"
time = "02:00"
catch_up = "once"

[[schedule]]
name = "weekly-skip"
job = "other"
cadence = "weekly"
day = "mon"
time = "03:00"
time_zone = "Europe/Berlin"
catch_up = "skip"

[[schedule]]
name = "month-end"
job = "demo"
cadence = "monthly"
day_of_month = 31
time = "02:00"
"#;

#[test]
fn schedules_fire_once_per_slot_across_restarts_and_catch_up() {
    let setup = Setup::new(0.01, "", "[[resource]]\nname = \"users\"\n", SCHEDULES);
    let admin = token(&setup.config, "ops", "admin");
    let reader = token(&setup.config, "warehouse", "reader");
    let clock: PathBuf = setup.platform.dir.path().join("clock");
    // Monday 2026-12-07, an hour before the weekly slots (02:00 UTC; 03:00 in Berlin).
    set_clock(&clock, "2026-12-07T01:00:00Z");
    let mut s = start(&setup.config, &clock);
    let list = schedules(&s, &reader);
    assert_eq!(
        schedule(&list, "weekly-once")["next_runs"],
        json!(["2026-12-07T02:00:00Z", "2026-12-14T02:00:00Z", "2026-12-21T02:00:00Z"])
    );
    assert_eq!(schedule(&list, "weekly-skip")["next_runs"][0], "2026-12-07T03:00:00+01:00");
    // The 31st, clamped to the last day of shorter months.
    assert_eq!(schedule(&list, "month-end")["next_runs"], json!(["2026-12-31T02:00:00Z", "2027-01-31T02:00:00Z", "2027-02-28T02:00:00Z"]));
    assert_eq!(
        schedule(&list, "month-end")["description"],
        "monthly on day 31, or the month's last day when it is shorter, at 02:00 (UTC)"
    );
    // The command line shows the same.
    let out = ferry()
        .args(["schedules", "list", "--config"])
        .arg(&setup.config)
        .args(["--json", "--at", "2027-04-01T00:00:00Z"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cli: Value = serde_json::from_slice(&out.stdout).unwrap();
    let month_end = cli.as_array().unwrap().iter().find(|s| s["name"] == "month-end").unwrap();
    assert_eq!(month_end["next_runs"][0], "2027-04-30T02:00:00Z", "{cli}");
    std::thread::sleep(Duration::from_secs(2));
    assert!(requests(&s, &admin).is_empty(), "nothing is due before the slot");

    // The slot: each weekly schedule fires once, however many ticks pass.
    set_clock(&clock, "2026-12-07T02:00:30Z");
    let done = settle(&s, &admin, 2);
    std::thread::sleep(Duration::from_secs(3));
    let all = requests(&s, &admin);
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(all.iter().all(|r| r["status"] == "completed"), "{all:?}");
    let list = schedules(&s, &reader);
    assert_eq!(schedule(&list, "weekly-once")["last_slot"]["outcome"], "fired");
    assert_eq!(schedule(&list, "weekly-once")["last_slot"]["slot"], "2026-12-07T02:00:00.000000Z");
    let fired_id = schedule(&list, "weekly-once")["last_slot"]["snapshot_id"].as_str().unwrap().to_string();
    assert!(done.iter().any(|r| r["id"] == fired_id.as_str() && r["job"] == "demo"), "{done:?}");

    // A restart inside the slot does not run it again.
    s.kill();
    set_clock(&clock, "2026-12-07T02:05:00Z");
    s = start(&setup.config, &clock);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(requests(&s, &admin).len(), 2, "the restart repeated a slot");

    // Down across the next Monday's slots, back 2 hours later: `once` runs the missed
    // slot once, `skip` records it missed and runs nothing.
    s.kill();
    set_clock(&clock, "2026-12-14T04:00:00Z");
    s = start(&setup.config, &clock);
    let all = settle(&s, &admin, 3);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(requests(&s, &admin).len(), 3, "{all:?}");
    let list = schedules(&s, &reader);
    let once = &schedule(&list, "weekly-once")["last_slot"];
    assert_eq!(once["outcome"], "caught_up", "{once}");
    assert_eq!(once["slot"], "2026-12-14T02:00:00.000000Z");
    let caught = all.iter().find(|r| r["id"] == once["snapshot_id"]).unwrap();
    assert_eq!(caught["status"], "completed", "{caught}");
    assert_eq!(caught["requested_by"], "schedule:weekly-once");
    let skip = &schedule(&list, "weekly-skip")["last_slot"];
    assert_eq!(skip["outcome"], "missed", "{skip}");
    assert_eq!(skip["slot"], "2026-12-14T02:00:00.000000Z");
    assert!(skip["snapshot_id"].is_null());

    // Pause and resume: admins only; a paused schedule's slot is recorded, not run.
    let pause = |s: &Server, token: &str, name: &str, action: &str| {
        json_of(client().post(s.url(&format!("/api/v1/schedules/{name}/{action}"))).bearer_auth(token).send().unwrap())
    };
    assert_eq!(pause(&s, &reader, "weekly-once", "pause").0, 403);
    let (status, body) = pause(&s, &admin, "nope", "pause");
    assert_eq!(status, 404, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("weekly-once"), "{body}");
    let (status, v) = pause(&s, &admin, "weekly-once", "pause");
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["paused"], true);
    assert_eq!(v["paused_by"], "ops");
    s.kill();
    set_clock(&clock, "2026-12-21T02:00:10Z");
    s = start(&setup.config, &clock);
    std::thread::sleep(Duration::from_secs(3));
    let list = schedules(&s, &reader);
    assert_eq!(schedule(&list, "weekly-once")["paused"], true, "the pause is kept in the catalog");
    assert_eq!(schedule(&list, "weekly-once")["last_slot"]["outcome"], "paused");
    assert_eq!(schedule(&list, "weekly-skip")["last_slot"]["outcome"], "fired");
    let (status, v) = pause(&s, &admin, "weekly-once", "resume");
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["paused"], false);
    let all = settle(&s, &admin, 4);
    assert_eq!(all.len(), 4, "only weekly-skip ran on 2026-12-21: {all:?}");
}

/// Retention: snapshots past their job's retention are purged by the service on its own,
/// from disk, the catalog's live list and the bucket; DELETE removes the bucket's copy too.
#[test]
fn service_retention_purges_disk_catalog_and_bucket() {
    let Some((endpoint, bucket)) = crate::servers::s3("service_retention") else { return };
    let setup = Setup::new(
        0.01,
        "archive = \"tar\"\npart_size = \"64KiB\"",
        "[[resource]]\nname = \"users\"\n",
        "[retention]\npurge_every = \"1s\"\n",
    );
    let job = setup.platform.dir.path().join("demo.toml");
    let text = std::fs::read_to_string(&job)
        .unwrap()
        .replace("dir = \"out\"", &format!("dir = \"s3://{bucket}/exports\""))
        .replace("[snapshot]\n", "[snapshot]\nretention = \"1d\"\n");
    std::fs::write(&job, format!("{text}\n{}", crate::servers::s3_table(&endpoint))).unwrap();
    let admin = token(&setup.config, "ops", "admin");
    let clock = setup.platform.dir.path().join("clock");
    // No clock file yet: the system clock.
    let s = start(&setup.config, &clock);
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (status, created) = create(&s, &admin, json!({"job": "demo"}));
        assert_eq!(status, 202, "{created}");
        let id = created["id"].as_str().unwrap().to_string();
        let done = wait_for(&s, &admin, &id, Duration::from_secs(180), finished);
        assert_eq!(done["status"], "completed", "{done}");
        ids.push((id, done["snapshot_id"].as_str().unwrap().to_string()));
    }
    let store = ferry::s3::S3::connect(
        &ferry::s3::S3Url { bucket: bucket.clone(), prefix: "exports".into() },
        &crate::servers::s3_settings(&endpoint),
    )
    .unwrap();
    let objects = |snapshot: &str| store.list(snapshot).unwrap().len();
    for (_, sid) in &ids {
        assert!(objects(sid) >= 2, "the parts and the manifest of {sid} are in the bucket");
        assert!(setup.root().join(sid).is_dir());
    }

    // DELETE: the bucket's copy goes with the local one.
    let (id, sid) = &ids[0];
    let r = client().delete(s.url(&format!("/api/v1/snapshots/{id}"))).bearer_auth(&admin).send().unwrap();
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(objects(sid), 0, "DELETE left objects of {sid} in the bucket");
    assert!(!setup.root().join(sid).exists());
    let (id, sid) = &ids[1];
    assert!(objects(sid) >= 2, "only the deleted snapshot's objects are removed");

    // Two days later the other one is past its 1-day retention: purged on its own.
    let later = chrono::Utc::now() + chrono::Duration::days(2);
    set_clock(&clock, &later.to_rfc3339());
    let started = Instant::now();
    while setup.root().join(sid).exists() || objects(sid) > 0 {
        assert!(started.elapsed() < Duration::from_secs(30), "{sid} was not purged");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(store.list("").unwrap().is_empty(), "the bucket still holds objects");
    let (_, v) = get(&s, &admin, &format!("/api/v1/snapshots/{id}"));
    assert_eq!(v["status"], "deleted", "{v}");
    let catalog = ferry::catalog::Catalog::open(&setup.root()).unwrap();
    assert!(catalog.list(false).unwrap().is_empty(), "the catalog's live list still has snapshots");
    let history = catalog.history(sid).unwrap();
    assert!(history.iter().any(|h| h.event == "purged"), "{history:?}");
}
