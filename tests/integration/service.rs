//! `ferry serve` against the real binary on 127.0.0.1, through a real HTTP client
//! (reqwest), raw TCP where a client would tidy the request, and `tar` to read parts.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::blocking::{Client, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::common::{Platform, ferry, plugin};

/// A running `ferry serve`; SIGKILLed when dropped.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) base: String,
    pub(crate) addr: String,
}

impl Server {
    pub(crate) fn start(config: &Path) -> Server {
        Self::start_on(config, "127.0.0.1:0")
    }

    fn start_on(config: &Path, listen: &str) -> Server {
        Self::start_env(config, listen, &[])
    }

    /// Starts with extra environment variables (a test clock, secrets).
    pub(crate) fn start_env(config: &Path, listen: &str, env: &[(&str, &str)]) -> Server {
        let mut child = ferry()
            .envs(env.iter().copied())
            .args(["serve", "--config"])
            .arg(config)
            .args(["--listen", listen, "--log-format", "json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(config.with_extension("log")).unwrap()))
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut line = Vec::new();
        let mut byte = [0u8];
        while stdout.read(&mut byte).unwrap_or(0) == 1 && byte[0] != b'\n' {
            line.push(byte[0]);
        }
        let line = String::from_utf8_lossy(&line).to_string();
        let log = || std::fs::read_to_string(config.with_extension("log")).unwrap_or_default();
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http"))
            .unwrap_or_else(|| panic!("no address in {line:?}; log: {}", log()))
            .to_string();
        let addr = url.split("://").nth(1).unwrap().to_string();
        Server { child, base: url, addr }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

pub(crate) fn client() -> Client {
    Client::builder().timeout(Duration::from_secs(120)).build().unwrap()
}

pub(crate) fn token(config: &Path, name: &str, role: &str) -> String {
    let out = ferry().args(["tokens", "create", "--config"]).arg(config).args(["--name", name, "--role", role]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A platform, a job over it and a service config naming that job `demo`.
pub(crate) struct Setup {
    pub(crate) platform: Platform,
    pub(crate) config: PathBuf,
}

impl Setup {
    pub(crate) fn new(scale: f64, output_extra: &str, resources: &str, service_extra: &str) -> Setup {
        let platform = Platform::new(scale, 11);
        let job = platform.job("demo", output_extra, resources);
        let config = platform.dir.path().join("service.toml");
        std::fs::write(
            &config,
            format!("output_dir = \"srv\"\n{service_extra}\n[limits]\nheader_read_timeout = \"1s\"\n\n[[job]]\nname = \"demo\"\nfile = \"{}\"\n", job.file_name().unwrap().to_string_lossy()),
        )
        .unwrap();
        Setup { platform, config }
    }

    pub(crate) fn root(&self) -> PathBuf {
        self.platform.dir.path().join("srv")
    }
}

pub(crate) fn json_of(r: Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().unwrap();
    (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}")))
}

pub(crate) fn create(s: &Server, token: &str, body: Value) -> (u16, Value) {
    json_of(client().post(s.url("/api/v1/snapshots")).bearer_auth(token).json(&body).send().unwrap())
}

pub(crate) fn get(s: &Server, token: &str, path: &str) -> (u16, Value) {
    json_of(client().get(s.url(path)).bearer_auth(token).send().unwrap())
}

/// Polls a snapshot until `done` says so (or fails after `limit`).
pub(crate) fn wait_for(s: &Server, token: &str, id: &str, limit: Duration, done: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let (status, v) = get(s, token, &format!("/api/v1/snapshots/{id}"));
        assert_eq!(status, 200, "{v}");
        if done(&v) {
            return v;
        }
        assert!(started.elapsed() < limit, "snapshot {id} still {} after {limit:?}: {v}", v["status"]);
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub(crate) fn finished(v: &Value) -> bool {
    matches!(v["status"].as_str(), Some("completed" | "failed"))
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Downloads every listed file and checks it against the manifest (downloaded too) and
/// its ETag; returns the files' bytes by name.
pub(crate) fn download_all(s: &Server, token: &str, id: &str) -> Vec<(Value, Vec<u8>)> {
    let (status, list) = get(s, token, &format!("/api/v1/snapshots/{id}/files"));
    assert_eq!(status, 200, "{list}");
    let files = list["files"].as_array().unwrap().clone();
    assert!(files.iter().any(|f| f["kind"] == "manifest"), "{list}");
    let mut out = Vec::new();
    for f in &files {
        let r = client().get(s.url(f["url"].as_str().unwrap())).bearer_auth(token).send().unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(r.headers()["accept-ranges"], "bytes");
        assert_eq!(r.headers()["etag"].to_str().unwrap(), format!("\"{}\"", f["sha256"].as_str().unwrap()));
        let length: u64 = r.headers()["content-length"].to_str().unwrap().parse().unwrap();
        let bytes = r.bytes().unwrap().to_vec();
        assert_eq!(bytes.len() as u64, length);
        assert_eq!(bytes.len() as u64, f["bytes"].as_u64().unwrap(), "{}", f["name"]);
        assert_eq!(sha256(&bytes), f["sha256"].as_str().unwrap(), "{}", f["name"]);
        out.push((f.clone(), bytes));
    }
    let manifest: Value = serde_json::from_slice(&out.iter().find(|(f, _)| f["kind"] == "manifest").unwrap().1).unwrap();
    let archives = manifest["archives"].as_array().unwrap();
    assert!(!archives.is_empty());
    for a in archives {
        let (_, bytes) = out.iter().find(|(f, _)| f["name"] == a["name"]).unwrap_or_else(|| panic!("{} is not listed", a["name"]));
        assert_eq!(bytes.len() as u64, a["bytes"].as_u64().unwrap());
        assert_eq!(sha256(bytes), a["sha256"].as_str().unwrap(), "{} differs from the manifest", a["name"]);
    }
    assert_eq!(out.len(), archives.len() + 1, "the list holds the parts and the manifest");
    out
}

/// A download cut in the middle and resumed with `Range` gives the same bytes.
fn resume(s: &Server, token: &str, url: &str, whole: &[u8]) {
    let n = whole.len() as u64;
    let cut = n / 2 + 7;
    let first = client().get(s.url(url)).bearer_auth(token).header("Range", format!("bytes=0-{}", cut - 1)).send().unwrap();
    assert_eq!(first.status().as_u16(), 206);
    assert_eq!(first.headers()["content-range"].to_str().unwrap(), format!("bytes 0-{}/{n}", cut - 1));
    let mut bytes = first.bytes().unwrap().to_vec();
    let rest = client().get(s.url(url)).bearer_auth(token).header("Range", format!("bytes={cut}-")).send().unwrap();
    assert_eq!(rest.status().as_u16(), 206);
    assert_eq!(rest.headers()["content-length"].to_str().unwrap(), (n - cut).to_string());
    bytes.extend_from_slice(&rest.bytes().unwrap());
    assert_eq!(sha256(&bytes), sha256(whole), "the resumed download differs");
    let past = client().get(s.url(url)).bearer_auth(token).header("Range", format!("bytes={n}-")).send().unwrap();
    assert_eq!(past.status().as_u16(), 416);
    assert_eq!(past.headers()["content-range"].to_str().unwrap(), format!("bytes */{n}"));
    let multi = client().get(s.url(url)).bearer_auth(token).header("Range", "bytes=0-1,4-5").send().unwrap();
    let (status, body) = json_of(multi);
    assert_eq!(status, 416);
    assert!(body["error"]["message"].as_str().unwrap().contains("several ranges"), "{body}");
}

const RESOURCES: &str = "[[resource]]\nname = \"users\"\n[[resource]]\nname = \"accounts\"\n[[resource]]\nname = \"transactions\"\n";

#[test]
fn service_lifecycle_download_and_resume() {
    let setup = Setup::new(0.05, "archive = \"tar\"\npart_size = \"64KiB\"", RESOURCES, "");
    let admin = token(&setup.config, "ops", "admin");
    let s = Server::start(&setup.config);
    let (status, created) = create(&s, &admin, json!({"job": "demo", "name": "first", "description": "from the test"}));
    assert_eq!(status, 202, "{created}");
    assert_eq!(created["status"], "pending");
    let id = created["id"].as_str().unwrap().to_string();
    let done = wait_for(&s, &admin, &id, Duration::from_secs(180), finished);
    assert_eq!(done["status"], "completed", "{done}");
    let history: Vec<&str> = done["status_history"].as_array().unwrap().iter().map(|h| h["status"].as_str().unwrap()).collect();
    assert_eq!(history, ["pending", "in_progress", "completed"], "{done}");
    assert_eq!(done["name"], "first");
    assert!(
        done["records"].as_u64().unwrap() > 0 && done["expires"].is_string() && done["as_of"] == "2026-03-31T14:30:22.000000Z",
        "{done}"
    );

    let files = download_all(&s, &admin, &id);
    let parts: Vec<_> = files.iter().filter(|(f, _)| f["kind"] == "part").collect();
    assert!(parts.len() >= 2, "64 KiB parts: several expected");
    // Another reader than ferry's: `tar` lists each part.
    let scratch = tempfile::tempdir().unwrap();
    for (f, bytes) in &parts {
        let path = scratch.path().join(f["name"].as_str().unwrap());
        std::fs::write(&path, bytes).unwrap();
        let out = Command::new("tar").arg("-tf").arg(&path).output().unwrap();
        assert!(out.status.success() && !out.stdout.is_empty(), "tar cannot read {}", path.display());
    }
    let (f, biggest) = parts.iter().max_by_key(|(_, b)| b.len()).unwrap();
    resume(&s, &admin, f["url"].as_str().unwrap(), biggest);

    // A narrowed request: one resource, one month; the count is the source's own.
    let (status, narrow) = create(&s, &admin, json!({"job": "demo", "resources": ["transactions"], "months": 1}));
    assert_eq!(status, 202, "{narrow}");
    let done = wait_for(&s, &admin, narrow["id"].as_str().unwrap(), Duration::from_secs(180), finished);
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["resources"], json!(["transactions"]));
    // `transacted_at` is UTC microseconds; one month before as_of clamps to Feb 28.
    let micros = |t: &str| chrono::DateTime::parse_from_rfc3339(t).unwrap().timestamp_micros();
    let conn = rusqlite::Connection::open(setup.platform.db()).unwrap();
    let expected: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM transactions WHERE transacted_at >= ?1 AND transacted_at < ?2",
            [micros("2026-02-28T14:30:22Z"), micros("2026-03-31T14:30:22Z")],
            |r| r.get(0),
        )
        .unwrap();
    assert!(expected > 0);
    assert_eq!(done["records"].as_i64().unwrap(), expected, "{done}");

    // History: newest first, paginated, filtered.
    let (_, list) = get(&s, &admin, "/api/v1/snapshots?per_page=1&page=1");
    assert_eq!(list["total"], 2);
    assert_eq!(list["snapshots"][0]["id"], narrow["id"]);
    let (_, list) = get(&s, &admin, "/api/v1/snapshots?per_page=1&page=2");
    assert_eq!(list["snapshots"][0]["id"], id.as_str());
    let (_, list) = get(&s, &admin, "/api/v1/snapshots?status=failed");
    assert_eq!(list["total"], 0);

    // Delete: 204, then the files are gone (410).
    let r = client().delete(s.url(&format!("/api/v1/snapshots/{id}"))).bearer_auth(&admin).send().unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let (status, body) = json_of(client().get(s.url(f["url"].as_str().unwrap())).bearer_auth(&admin).send().unwrap());
    assert_eq!(status, 410, "{body}");
    assert_eq!(body["error"]["code"], "gone");
    let (_, shown) = get(&s, &admin, &format!("/api/v1/snapshots/{id}"));
    assert_eq!(shown["status"], "deleted");

    // Metrics: bytes served, latency, snapshots by status.
    let text = client().get(s.url("/metrics")).bearer_auth(&admin).send().unwrap().text().unwrap();
    let served: u64 = text.lines().find_map(|l| l.strip_prefix("ferry_bytes_served_total ")).unwrap().parse().unwrap();
    assert!(served >= files.iter().map(|(_, b)| b.len() as u64).sum::<u64>(), "{text}");
    assert!(text.contains("ferry_snapshots{status=\"deleted\"} 1") && text.contains("ferry_http_request_duration_seconds_count"), "{text}");
    // Every request was logged as one JSON line, and no token appears in the log.
    let log = std::fs::read_to_string(setup.config.with_extension("log")).unwrap();
    assert!(log.lines().filter(|l| l.contains("\"message\":\"request\"")).count() > 10, "{log}");
    assert!(!log.contains(&admin), "the token was logged");
}

#[test]
fn service_downloads_a_snapshot_delivered_to_s3() {
    let Some((endpoint, bucket)) = crate::servers::s3("service_s3") else { return };
    let setup = Setup::new(0.03, "archive = \"tar\"\npart_size = \"64KiB\"", RESOURCES, "");
    let job = setup.platform.dir.path().join("demo.toml");
    let text = std::fs::read_to_string(&job).unwrap().replace("dir = \"out\"", &format!("dir = \"s3://{bucket}/exports\""));
    std::fs::write(&job, format!("{text}\n{}", crate::servers::s3_table(&endpoint))).unwrap();
    let admin = token(&setup.config, "ops", "admin");
    let reader = token(&setup.config, "warehouse", "reader");
    let s = Server::start(&setup.config);
    let (status, created) = create(&s, &admin, json!({"job": "demo"}));
    assert_eq!(status, 202, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let done = wait_for(&s, &reader, &id, Duration::from_secs(180), finished);
    assert_eq!(done["status"], "completed", "{done}");
    let (_, list) = get(&s, &reader, &format!("/api/v1/snapshots/{id}/files"));
    assert!(list["stored"].as_str().unwrap().starts_with(&format!("s3://{bucket}/exports/")), "{list}");
    // Nothing of the parts is on local disk: the bytes can only come from the bucket.
    let local = setup.root().join(done["snapshot_id"].as_str().unwrap());
    assert!(std::fs::read_dir(&local).unwrap().flatten().all(|e| !e.file_name().to_string_lossy().ends_with(".tar")));
    let files = download_all(&s, &reader, &id);
    let (f, biggest) = files.iter().filter(|(f, _)| f["kind"] == "part").max_by_key(|(_, b)| b.len()).unwrap();
    resume(&s, &reader, f["url"].as_str().unwrap(), biggest);
}

/// Every route × no token, a wrong one, a revoked one, a reader's and an admin's.
#[test]
fn service_auth_matrix() {
    let setup = Setup::new(0.01, "", "[[resource]]\nname = \"users\"\n", "");
    let admin = token(&setup.config, "ops", "admin");
    let reader = token(&setup.config, "warehouse", "reader");
    let revoked = token(&setup.config, "old", "admin");
    let out = ferry().args(["tokens", "revoke", "old", "--config"]).arg(&setup.config).output().unwrap();
    assert!(out.status.success());
    let list = ferry().args(["tokens", "list", "--config"]).arg(&setup.config).output().unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(list.contains("warehouse") && list.contains("reader") && !list.contains(&reader), "{list}");
    // The catalog keeps hashes only.
    let db = std::fs::read(setup.root().join("catalog.db")).unwrap();
    assert!(!db.windows(admin.len()).any(|w| w == admin.as_bytes()), "a token is stored in clear");

    let s = Server::start(&setup.config);
    let unknown = "0f8e4a52-1c3b-4d7e-9a61-2b5c8d9e0f13";
    let body = json!({"job": "demo"});
    // (method, path, admin only)
    let routes: Vec<(&str, String, bool)> = vec![
        ("POST", "/api/v1/snapshots".into(), true),
        ("GET", "/api/v1/snapshots".into(), false),
        ("GET", format!("/api/v1/snapshots/{unknown}"), false),
        ("DELETE", format!("/api/v1/snapshots/{unknown}"), true),
        ("GET", format!("/api/v1/snapshots/{unknown}/files"), false),
        ("GET", format!("/api/v1/snapshots/{unknown}/files/manifest.json"), false),
        ("POST", "/api/v1/estimates".into(), true),
        ("GET", "/api/v1/openapi.json".into(), false),
        ("GET", "/metrics".into(), false),
    ];
    let send = |method: &str, path: &str, token: Option<&str>| -> u16 {
        let c = client();
        let mut req = match method {
            "POST" => c.post(s.url(path)).json(&body),
            "DELETE" => c.delete(s.url(path)),
            _ => c.get(s.url(path)),
        };
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().unwrap().status().as_u16()
    };
    let wrong = format!("ferry_{}", "0".repeat(64));
    for (method, path, admin_only) in &routes {
        assert_eq!(send(method, path, None), 401, "{method} {path} without a token");
        assert_eq!(send(method, path, Some(&wrong)), 401, "{method} {path} with a wrong token");
        assert_eq!(send(method, path, Some(&revoked)), 401, "{method} {path} with a revoked token");
        let r = send(method, path, Some(&reader));
        if *admin_only {
            assert_eq!(r, 403, "{method} {path} as a reader");
        } else {
            assert!(r != 401 && r != 403, "{method} {path} as a reader: {r}");
        }
        let a = send(method, path, Some(&admin));
        assert!(a != 401 && a != 403 && a < 500, "{method} {path} as an admin: {a}");
    }
    // Basic auth is not a bearer token.
    let r = client().get(s.url("/api/v1/snapshots")).basic_auth("ops", Some(&admin)).send().unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(client().get(s.url("/healthz")).send().unwrap().status().as_u16(), 200);
}

/// The OpenAPI document lists exactly the routes the server answers.
#[test]
fn service_openapi_lists_exactly_the_routes() {
    let setup = Setup::new(0.01, "", "[[resource]]\nname = \"users\"\n", "");
    let admin = token(&setup.config, "ops", "admin");
    let s = Server::start(&setup.config);
    let (status, doc) = get(&s, &admin, "/api/v1/openapi.json");
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.push((method.to_uppercase(), path.clone()));
        }
    }
    documented.sort();
    let mut expected: Vec<(String, String)> = [
        ("POST", "/api/v1/snapshots"),
        ("GET", "/api/v1/snapshots"),
        ("GET", "/api/v1/snapshots/{id}"),
        ("DELETE", "/api/v1/snapshots/{id}"),
        ("GET", "/api/v1/snapshots/{id}/files"),
        ("GET", "/api/v1/snapshots/{id}/files/{name}"),
        ("POST", "/api/v1/estimates"),
        ("GET", "/api/v1/openapi.json"),
        ("GET", "/api/v1/schedules"),
        ("POST", "/api/v1/schedules/{name}/pause"),
        ("POST", "/api/v1/schedules/{name}/resume"),
        ("GET", "/api/v1/snapshots/{id}/notifications"),
    ]
    .iter()
    .map(|(m, p)| (m.to_string(), p.to_string()))
    .collect();
    expected.sort();
    assert_eq!(documented, expected);
    let unknown = "0f8e4a52-1c3b-4d7e-9a61-2b5c8d9e0f13";
    // Each documented route is answered (not the router's "no route" or 405) ...
    for (method, path) in &documented {
        let path = path.replace("{id}", unknown).replace("{name}", "manifest.json");
        let req = client().request(method.parse().unwrap(), s.url(&path)).bearer_auth(&admin);
        let req = if method == "POST" { req.json(&json!({"job": "nope"})) } else { req };
        let (status, body) = json_of(req.send().unwrap());
        assert!(
            status != 405 && !body["error"]["message"].as_str().unwrap_or("").starts_with("no route"),
            "{method} {path}: {status} {body}"
        );
    }
    // ... and nothing else under /api/v1 is.
    for (method, path) in [
        ("GET", "/api/v1/nope"),
        ("GET", "/api/v1/snapshots/x/y/z/w"),
        ("PUT", "/api/v1/snapshots"),
        ("GET", "/api/v1/estimates"),
        ("GET", "/api/v2/snapshots"),
    ] {
        let (status, body) = json_of(client().request(method.parse().unwrap(), s.url(path)).bearer_auth(&admin).send().unwrap());
        assert!(status == 404 || status == 405, "{method} {path}: {status}");
        assert!(body["error"]["code"].is_string());
    }
}

/// Sends raw bytes (a path no HTTP client would send as is) and returns the status and body.
fn raw(addr: &str, request: &str) -> (u16, String) {
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = tcp.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, text)
}

#[test]
fn service_refuses_bad_input() {
    let resources = "[[resource]]\nname = \"users\"\n[[resource]]\nname = \"transactions\"\nmonths = 6\n";
    let setup = Setup::new(0.01, "", resources, "");
    let admin = token(&setup.config, "ops", "admin");
    let s = Server::start(&setup.config);
    let post = |body: &str, content_type: &str| {
        json_of(
            client()
                .post(s.url("/api/v1/snapshots"))
                .bearer_auth(&admin)
                .header("Content-Type", content_type)
                .body(body.to_string())
                .send()
                .unwrap(),
        )
    };
    let cases: Vec<(&str, u16, &str)> = vec![
        ("{\"job\": ", 400, ""),
        ("[1, 2]", 422, "body"),
        ("{\"job\": \"demo\", \"plugin\": \"/tmp/evil.wasm\"}", 422, "plugin"),
        ("{\"job\": \"demo\", \"output\": \"/tmp\"}", 422, "output"),
        ("{\"job\": \"demo\", \"resources\": \"users\"}", 422, "resources"),
        ("{\"job\": 7}", 422, "job"),
        ("{\"job\": \"nightly\"}", 422, "job"),
        ("{\"job\": \"demo\", \"resources\": [\"users\", \"secrets\"]}", 422, "resources"),
        ("{\"job\": \"demo\", \"resources\": []}", 422, "resources"),
        ("{\"job\": \"demo\", \"months\": 5}", 422, "months"),
        ("{\"job\": \"demo\", \"months\": 12}", 422, "months"),
        ("{\"job\": \"demo\", \"months\": \"all\"}", 422, "months"),
        ("{\"job\": \"demo\", \"months\": 3, \"resources\": [\"users\"]}", 422, "months"),
        ("{\"job\": \"demo\", \"content\": \"everything\"}", 422, "content"),
        ("{\"job\": \"demo\", \"content\": \"attachments\"}", 422, "content"),
        ("{\"job\": \"demo\", \"name\": \"\"}", 422, "name"),
        ("{\"job\": \"demo\"} trailing", 400, ""),
    ];
    for (body, status, field) in &cases {
        let (got, v) = post(body, "application/json");
        assert_eq!(got, *status, "{body}: {v}");
        assert!(v["error"]["message"].is_string() && v["error"]["code"].is_string(), "{body}: {v}");
        if !field.is_empty() {
            assert_eq!(v["error"]["field"], *field, "{body}: {v}");
        }
    }
    let big = format!("{{\"job\": \"demo\", \"description\": \"{}\"}}", "x".repeat(70 * 1024));
    let (got, v) = post(&big, "application/json");
    assert_eq!((got, v["error"]["code"].as_str()), (413, Some("too_large")), "{v}");
    let (got, _) = post("{\"job\": \"demo\"}", "text/plain");
    assert_eq!(got, 415);
    // Estimates take the same body, with the same checks.
    let (got, v) =
        json_of(client().post(s.url("/api/v1/estimates")).bearer_auth(&admin).json(&json!({"job": "demo", "months": 24})).send().unwrap());
    assert_eq!((got, v["error"]["field"].as_str()), (422, Some("months")), "{v}");

    // Ids and file names.
    for (path, field) in [
        ("/api/v1/snapshots/not-an-id", "id"),
        ("/api/v1/snapshots/0F8E4A52-1C3B-4D7E-9A61-2B5C8D9E0F13", "id"),
        ("/api/v1/snapshots/1%27%20OR%201=1/files", "id"),
    ] {
        let (got, v) = get(&s, &admin, path);
        assert_eq!((got, v["error"]["field"].as_str()), (422, Some(field)), "{path}: {v}");
    }
    let (got, v) = get(&s, &admin, "/api/v1/snapshots?per_page=1000");
    assert_eq!((got, v["error"]["field"].as_str()), (422, Some("per_page")), "{v}");
    let (got, v) = get(&s, &admin, "/api/v1/snapshots?status=lost");
    assert_eq!((got, v["error"]["field"].as_str()), (422, Some("status")), "{v}");
    let (got, v) = get(&s, &admin, "/api/v1/snapshots?sort=name");
    assert_eq!((got, v["error"]["field"].as_str()), (422, Some("sort")), "{v}");
    let id = "0f8e4a52-1c3b-4d7e-9a61-2b5c8d9e0f13";
    for name in ["..", "%2e%2e", "%2E%2E", "a%2Fb", "..%2F..%2Fcatalog.db", "a%00b", ".hidden"] {
        let (got, text) = raw(
            &s.addr,
            &format!(
                "GET /api/v1/snapshots/{id}/files/{name} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {admin}\r\nConnection: close\r\n\r\n"
            ),
        );
        assert_eq!(got, 422, "{name}: {text}");
        assert!(text.contains("\"field\":\"name\""), "{name}: {text}");
    }
    // A client that sends its headers slowly is cut off (header_read_timeout = 1s).
    let mut slow = TcpStream::connect(&s.addr).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    let _ = slow.read_to_end(&mut buf);
    assert!(started.elapsed() < Duration::from_secs(5), "the slow client was kept {:?}", started.elapsed());
    let head = String::from_utf8_lossy(&buf);
    assert!(head.is_empty() || head.starts_with("HTTP/1.1 408"), "{head}");

    // Nothing reached the catalog or the disk.
    let (_, list) = get(&s, &admin, "/api/v1/snapshots");
    assert_eq!(list["total"], 0, "{list}");
    let jobs = setup.root().join(".service/jobs");
    assert!(!jobs.exists() || std::fs::read_dir(&jobs).unwrap().count() == 0);
    // Plain HTTP off loopback is refused without allow_plain_http.
    let out = ferry().args(["serve", "--config"]).arg(&setup.config).args(["--listen", "0.0.0.0:0"]).output().unwrap();
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("not a loopback address"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.rsplit(')').next().and_then(|r| r.split_whitespace().next()).is_some_and(|s| s == "Z" || s == "X"),
    }
}

/// SIGKILL of the server mid-run: the run dies with it and is settled failed on restart;
/// the request still queued then runs; the history is intact.
#[test]
fn service_survives_sigkill_mid_run() {
    let hostile = plugin("ferry-test-hostile");
    let resources = format!(
        "[[resource]]\nname = \"users\"\n[[resource]]\nname = \"hostile\"\nplugin = \"{}\"\ntime_limit = \"120s\"\noptions = {{ mode = \"loop\" }}\n",
        hostile.display()
    );
    let setup = Setup::new(0.01, "", &resources, "max_concurrent_runs = 1");
    let admin = token(&setup.config, "ops", "admin");
    let mut s = Server::start(&setup.config);
    let (_, stuck) = create(&s, &admin, json!({"job": "demo", "resources": ["hostile"], "name": "stuck"}));
    let (_, queued) = create(&s, &admin, json!({"job": "demo", "resources": ["users"], "name": "queued"}));
    let stuck_id = stuck["id"].as_str().unwrap().to_string();
    let queued_id = queued["id"].as_str().unwrap().to_string();
    wait_for(&s, &admin, &stuck_id, Duration::from_secs(120), |v| v["status"] == "in_progress");
    let (_, q) = get(&s, &admin, &format!("/api/v1/snapshots/{queued_id}"));
    assert_eq!(q["status"], "pending", "one run at a time: {q}");
    let conn = rusqlite::Connection::open(setup.root().join("catalog.db")).unwrap();
    let pid: i64 = conn.query_row("SELECT pid FROM requests WHERE id = ?1", [&stuck_id], |r| r.get(0)).unwrap();
    s.kill();
    let started = Instant::now();
    while !process_gone(pid as u32) {
        assert!(started.elapsed() < Duration::from_secs(10), "run process {pid} outlived its SIGKILLed server");
        std::thread::sleep(Duration::from_millis(50));
    }
    let s = Server::start(&setup.config);
    let failed = wait_for(&s, &admin, &stuck_id, Duration::from_secs(30), finished);
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["error"]["kind"], "killed", "{failed}");
    let done = wait_for(&s, &admin, &queued_id, Duration::from_secs(120), finished);
    assert_eq!(done["status"], "completed", "{done}");
    let (_, list) = get(&s, &admin, "/api/v1/snapshots");
    assert_eq!(list["total"], 2);
    let history: Vec<&str> = failed["status_history"].as_array().unwrap().iter().map(|h| h["status"].as_str().unwrap()).collect();
    assert_eq!(history, ["pending", "in_progress", "failed"], "{failed}");
    assert!(
        !setup.root().read_dir().unwrap().flatten().any(|e| e.file_name().to_string_lossy().starts_with(".staging-")),
        "staging left behind"
    );
}

/// A catalog from before the service (schema version 1) keeps working: its snapshots
/// still list, and it gains the tokens and requests tables (and version 3's schedules
/// and notifications) on open.
#[test]
fn service_upgrades_a_version_1_catalog() {
    let setup = Setup::new(0.01, "", "[[resource]]\nname = \"users\"\n", "");
    let job = setup.platform.dir.path().join("demo.toml");
    let text = std::fs::read_to_string(&job).unwrap().replace("dir = \"out\"", "dir = \"srv\"");
    std::fs::write(&job, text).unwrap();
    assert!(crate::common::run(&job).status.success());
    let db = setup.root().join("catalog.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch("DROP TABLE tokens; DROP TABLE requests; DROP INDEX snapshots_by_job; PRAGMA user_version = 1;").unwrap();
    drop(conn);
    let admin = token(&setup.config, "ops", "admin");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, 3);
    drop(conn);
    let out = ferry().args(["snapshots", "--dir"]).arg(setup.root()).args(["list", "--json"]).output().unwrap();
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    let s = Server::start(&setup.config);
    let (status, _) = get(&s, &admin, "/api/v1/snapshots");
    assert_eq!(status, 200);
}

/// A self-signed certificate for 127.0.0.1 and localhost (openssl): `dir/cert.pem`,
/// `dir/key.pem`.
pub(crate) fn self_signed_cert(dir: &Path) {
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout"])
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// `tls_cert`/`tls_key`: HTTPS with rustls (curl, with the certificate as its CA).
#[test]
fn service_serves_https() {
    let setup = Setup::new(0.01, "", "[[resource]]\nname = \"users\"\n", "tls_cert = \"cert.pem\"\ntls_key = \"key.pem\"");
    let dir = setup.platform.dir.path();
    self_signed_cert(dir);
    let admin = token(&setup.config, "ops", "admin");
    let s = Server::start(&setup.config);
    assert!(s.base.starts_with("https://"), "{}", s.base);
    let out = Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(dir.join("cert.pem"))
        .args(["-H", &format!("Authorization: Bearer {admin}"), &s.url("/api/v1/snapshots")])
        .output()
        .unwrap();
    let body: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(body["total"], 0, "{body}");
    // Plain HTTP on the TLS port is not served.
    let plain = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", &s.url("/healthz").replace("https", "http")])
        .output()
        .unwrap();
    assert_ne!(String::from_utf8_lossy(&plain.stdout), "200");
}
