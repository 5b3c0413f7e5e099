//! Notifications through `ferry serve` to real servers on 127.0.0.1: an SMTP server
//! (aiosmtpd, `tests/py/smtp_sink.py`) whose mails the test reads, a webhook receiver
//! that fails twice before it checks the signature of the third attempt, and an
//! unreachable webhook whose failed attempts are recorded while the snapshot stays
//! completed. Neither secret reaches the log or the catalog.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::service::{Server, Setup, create, finished, get, token, wait_for};

const SMTP_PASSWORD: &str = "smtp-password-never-logged-7f3a";
const WEBHOOK_SECRET: &str = "whsec-never-logged-91c2";

/// The aiosmtpd sink; killed when dropped.
struct Smtp {
    child: Child,
    port: u16,
}

impl Smtp {
    fn start(out: &Path) -> Smtp {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/smtp_sink.py");
        let mut child = Command::new(crate::common::python())
            .arg(script)
            .arg(out)
            .args(["ferry", SMTP_PASSWORD])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line.trim().strip_prefix("listening ").unwrap_or_else(|| panic!("smtp_sink.py said {line:?}")).parse().unwrap();
        Smtp { child, port }
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request the webhook receiver got.
#[derive(Debug, Clone)]
struct Hook {
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Hook {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A webhook receiver answering 500 to its first `failures` requests, then 200.
fn receiver(failures: usize) -> (u16, Arc<Mutex<Vec<Hook>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let seen = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let path = request_line.split_whitespace().nth(1).unwrap_or("").to_string();
            let mut headers = Vec::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = line.trim_end().split_once(':') {
                    headers.push((k.trim().to_string(), v.trim().to_string()));
                }
            }
            let length: usize =
                headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("content-length")).map_or(0, |(_, v)| v.parse().unwrap());
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let n = {
                let mut g = seen.lock().unwrap();
                g.push(Hook { path, headers, body });
                g.len()
            };
            let status = if n <= failures { "500 Internal Server Error" } else { "200 OK" };
            let _ = stream.write_all(format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").as_bytes());
        }
    });
    (port, got)
}

/// Checks a `Ferry-Signature` as the README tells a receiver to.
fn verify(secret: &str, header: &str, body: &[u8]) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", x)) => t = Some(x),
            Some(("v1", x)) => v1 = Some(x),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else { return false };
    let age = chrono::Utc::now().timestamp() - t.parse::<i64>().unwrap();
    if age.abs() > 300 {
        return false;
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&hex::decode(v1).unwrap_or_default()).is_ok()
}

/// The mails the sink wrote, in order.
fn mails(dir: &Path) -> Vec<String> {
    let mut files: Vec<_> =
        std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "eml")).collect();
    files.sort();
    // Quoted-printable's soft line breaks undone (a long line is sent that way).
    files.iter().map(|p| std::fs::read_to_string(p).unwrap().replace("=\r\n", "").replace("=\n", "")).collect()
}

fn attempts(s: &Server, token: &str, id: &str) -> Vec<Value> {
    let (status, v) = get(s, token, &format!("/api/v1/snapshots/{id}/notifications"));
    assert_eq!(status, 200, "{v}");
    v["attempts"].as_array().unwrap().clone()
}

fn of<'a>(list: &'a [Value], name: &str) -> Vec<&'a Value> {
    list.iter().filter(|a| a["notification"] == name).collect()
}

#[test]
fn notifications_mail_and_signed_webhooks_with_retries() {
    let mail_dir = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(mail_dir.path());
    let (hook_port, hooks) = receiver(2);
    // A port nothing listens on.
    let dead_port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let extra = format!(
        r#"public_url = "https://ferry.example.test/"

[smtp]
host = "127.0.0.1"
port = {smtp}
security = "none"
username = "ferry"
password_env = "FERRY_TEST_SMTP_PASSWORD"
from = "ferry <ferry@example.test>"
timeout = "10s"

[[notification]]
name = "ops-mail"
email = ["Ops <ops@example.test>"]

[[notification]]
name = "warehouse-hook"
on = ["completed"]
jobs = ["demo"]
webhook = "http://127.0.0.1:{hook_port}/ferry?token=query-token-not-recorded"
secret_env = "FERRY_TEST_WEBHOOK_SECRET"
retry_backoff = "200ms"

[[notification]]
name = "dead-hook"
on = ["completed"]
webhook = "http://127.0.0.1:{dead_port}/hook"
secret_env = "FERRY_TEST_WEBHOOK_SECRET"
max_attempts = 3
retry_backoff = "100ms"
timeout = "2s"
"#,
        smtp = smtp.port
    );
    let setup = Setup::new(0.01, "", "[[resource]]\nname = \"users\"\n[[resource]]\nname = \"accounts\"\n", &extra);
    let admin = token(&setup.config, "ops", "admin");
    let reader = token(&setup.config, "warehouse", "reader");
    let env = [("FERRY_TEST_SMTP_PASSWORD", SMTP_PASSWORD), ("FERRY_TEST_WEBHOOK_SECRET", WEBHOOK_SECRET)];
    let s = Server::start_env(&setup.config, "127.0.0.1:0", &env);

    // A completed snapshot: one mail, a webhook delivered on its third attempt, and an
    // unreachable one given up after three.
    let (status, created) = create(&s, &admin, json!({"job": "demo"}));
    assert_eq!(status, 202, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let done = wait_for(&s, &admin, &id, Duration::from_secs(120), finished);
    assert_eq!(done["status"], "completed", "{done}");
    let started = Instant::now();
    let list = loop {
        let list = attempts(&s, &admin, &id);
        let last = |name: &str| of(&list, name).last().is_some_and(|a| a["final"] == true);
        if last("ops-mail") && last("warehouse-hook") && last("dead-hook") {
            break list;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "notifications still going after 60s: {list:?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let mail = of(&list, "ops-mail");
    assert_eq!(mail.len(), 1, "{list:?}");
    assert_eq!(mail[0]["outcome"], "delivered");
    assert_eq!(mail[0]["kind"], "email");
    let hook = of(&list, "warehouse-hook");
    let outcomes: Vec<_> =
        hook.iter().map(|a| (a["attempt"].as_u64().unwrap(), a["outcome"].as_str().unwrap(), a["http_status"].as_u64())).collect();
    assert_eq!(outcomes, vec![(1, "failed", Some(500)), (2, "failed", Some(500)), (3, "delivered", Some(200))], "{list:?}");
    assert!(hook.iter().all(|a| a["delivery_id"] == hook[0]["delivery_id"]));
    let dead = of(&list, "dead-hook");
    assert_eq!(dead.len(), 3, "{list:?}");
    assert!(dead.iter().all(|a| a["outcome"] == "failed" && a["http_status"].is_null()), "{list:?}");
    assert!(dead[2]["error"].as_str().unwrap().contains(&format!("127.0.0.1:{dead_port}")), "{list:?}");
    // Failed notifications changed nothing about the snapshot.
    let (_, again) = get(&s, &reader, &format!("/api/v1/snapshots/{id}"));
    assert_eq!(again["status"], "completed", "{again}");
    // Readers may not see who is notified.
    assert_eq!(get(&s, &reader, &format!("/api/v1/snapshots/{id}/notifications")).0, 403);

    // The receiver's view: the third request carries a valid signature over its body.
    let got = hooks.lock().unwrap().clone();
    assert_eq!(got.len(), 3, "{got:?}");
    let third = &got[2];
    assert_eq!(third.path, "/ferry?token=query-token-not-recorded");
    assert_eq!(third.header("content-type"), Some("application/json"));
    assert_eq!(third.header("ferry-event"), Some("snapshot.completed"));
    let signature = third.header("ferry-signature").expect("a Ferry-Signature header");
    assert!(verify(WEBHOOK_SECRET, signature, &third.body), "bad signature {signature}");
    assert!(!verify("another-secret", signature, &third.body));
    let mut tampered = third.body.clone();
    tampered[0] = b' ';
    assert!(!verify(WEBHOOK_SECRET, signature, &tampered), "a changed body still verifies");
    let event: Value = serde_json::from_slice(&third.body).unwrap();
    assert_eq!(event["event"], "snapshot.completed");
    assert_eq!(event["snapshot_id"], id.as_str());
    assert_eq!(event["status"], "completed");
    assert_eq!(event["records"], done["records"], "{event} vs {done}");
    assert!(
        event["records"].as_u64().unwrap() > 0 && event["files"].as_u64().unwrap() >= 2 && event["bytes"].as_u64().unwrap() > 0,
        "{event}"
    );
    assert_eq!(event["files_url"], format!("https://ferry.example.test/api/v1/snapshots/{id}/files"));
    assert_eq!(event["url"], format!("https://ferry.example.test/snapshots/{id}"));
    assert!(event["error"].is_null());

    // The mail: name, status, counts, size and a lasting link, to the configured address.
    let all = mails(mail_dir.path());
    assert_eq!(all.len(), 1, "{all:?}");
    let m = &all[0];
    assert!(m.contains("X-Sink-Login: ferry"), "the server did not authenticate: {m}");
    assert!(m.contains("X-Sink-To: ops@example.test"), "{m}");
    assert!(m.contains("Subject: [ferry] snapshot demo completed"), "{m}");
    for needle in
        ["Status: completed", "Records: ", "Files: ", "Size: ", &format!("Snapshot page:\r\nhttps://ferry.example.test/snapshots/{id}\r\n")]
    {
        assert!(m.contains(needle), "{needle:?} is not in the mail: {m}");
    }
    assert!(!m.contains("X-Amz-") && !m.contains("Signature="), "a presigned URL in the mail: {m}");

    // A failed snapshot: mailed with its error; the webhooks (completed only) stay quiet.
    // (The source is then no database: the run itself fails.)
    std::fs::write(setup.platform.db(), b"not a database").unwrap();
    let (status, created) = create(&s, &admin, json!({"job": "demo"}));
    assert_eq!(status, 202, "{created}");
    let failed_id = created["id"].as_str().unwrap().to_string();
    let failed = wait_for(&s, &admin, &failed_id, Duration::from_secs(120), finished);
    assert_eq!(failed["status"], "failed", "{failed}");
    let started = Instant::now();
    while mails(mail_dir.path()).len() < 2 {
        assert!(started.elapsed() < Duration::from_secs(30), "no mail for the failed snapshot");
        std::thread::sleep(Duration::from_millis(200));
    }
    let m = &mails(mail_dir.path())[1];
    assert!(m.contains("Subject: [ferry] snapshot demo failed") && m.contains("Status: failed"), "{m}");
    assert!(m.contains("Error: "), "{m}");
    assert!(m.contains(&format!("/snapshots/{failed_id}")), "{m}");
    let failed_attempts = attempts(&s, &admin, &failed_id);
    assert_eq!(failed_attempts.len(), 1, "only the mail is about failures: {failed_attempts:?}");
    assert_eq!(hooks.lock().unwrap().len(), 3);

    // No secret in the log or the catalog (nor the webhook URL's query).
    drop(s);
    let log = std::fs::read_to_string(setup.config.with_extension("log")).unwrap();
    let db = std::fs::read(setup.root().join("catalog.db")).unwrap();
    let wal = std::fs::read(setup.root().join("catalog.db-wal")).unwrap_or_default();
    for secret in [SMTP_PASSWORD, WEBHOOK_SECRET, "query-token-not-recorded"] {
        assert!(!log.contains(secret), "{secret} is in the log");
        for bytes in [&db, &wal] {
            assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()), "{secret} is in the catalog");
        }
    }
    assert!(log.contains("notification failed") && log.contains("notification delivered"), "{log}");
}

/// A server whose config names a secret's variable it does not have refuses to start,
/// naming the key and the variable; bad schedule values are named too.
#[test]
fn notifications_config_errors_name_the_key() {
    let extra = "public_url = \"https://ferry.example.test\"\n\n[[notification]]\nname = \"hook\"\nwebhook = \"https://hooks.example.test/x\"\nsecret_env = \"FERRY_TEST_UNSET_SECRET\"\n";
    let setup = Setup::new(0.01, "", "[[resource]]\nname = \"users\"\n", extra);
    // Commands that only read the config do not need the secret; the server does.
    let out = crate::common::ferry().args(["schedules", "list", "--config"]).arg(&setup.config).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = crate::common::ferry().args(["serve", "--listen", "127.0.0.1:0", "--config"]).arg(&setup.config).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("notification[0].secret_env") && err.contains("FERRY_TEST_UNSET_SECRET is not set"), "{err}");
    let bad = "[[schedule]]\nname = \"x\"\njob = \"demo\"\ncadence = \"monthly\"\nday_of_month = 32\ntime = \"02:00\"\n";
    let setup = Setup::new(0.01, "", "[[resource]]\nname = \"users\"\n", bad);
    let out = crate::common::ferry().args(["schedules", "list", "--config"]).arg(&setup.config).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("schedule[0].day_of_month") && err.contains("32 is not a day of the month"), "{err}");
}
