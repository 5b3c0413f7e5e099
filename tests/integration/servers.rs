//! The PostgreSQL and S3 servers that `tests/run.sh` starts (see tests/servers.sh).
//! Without them a test skips, loudly; under `FERRY_REQUIRE_SERVERS=1` (set by
//! tests/run.sh, hence CI) a missing server fails the test instead.

use std::sync::atomic::{AtomicUsize, Ordering};

fn server(var: &str, test: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            assert!(
                std::env::var("FERRY_REQUIRE_SERVERS").is_err(),
                "{var} is not set but FERRY_REQUIRE_SERVERS is: tests/servers.sh did not start the server"
            );
            eprintln!("SKIPPED: {test} needs {var}; run `bash tests/run.sh`, which starts PostgreSQL and an S3 server");
            None
        }
    }
}

/// A fresh, empty database on the test server, and its URL.
pub fn postgres(test: &str) -> Option<String> {
    static N: AtomicUsize = AtomicUsize::new(0);
    let url = server("FERRY_TEST_POSTGRES_URL", test)?;
    let name = format!(
        "ferry_{}_{}_{}",
        test.replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let mut client = ::postgres::Client::connect(&url, ::postgres::NoTls).expect("connecting to the test PostgreSQL");
    client.batch_execute(&format!("CREATE DATABASE \"{name}\"")).unwrap();
    let (base, _) = url.rsplit_once('/').unwrap();
    Some(format!("{base}/{name}"))
}

/// The S3 endpoint and a fresh bucket on it.
pub fn s3(test: &str) -> Option<(String, String)> {
    static N: AtomicUsize = AtomicUsize::new(0);
    let endpoint = server("FERRY_TEST_S3_ENDPOINT", test)?;
    let bucket = format!("ferry-{}-{}-{}", test.replace('_', "-"), std::process::id(), N.fetch_add(1, Ordering::Relaxed));
    let bucket: String = bucket.chars().take(63).collect::<String>().trim_end_matches('-').to_string();
    // moto takes an unsigned bucket creation; object_store cannot create buckets.
    let out =
        std::process::Command::new("curl").args(["-sf", "-X", "PUT", &format!("{endpoint}/{bucket}")]).output().expect("running curl");
    assert!(out.status.success(), "creating bucket {bucket}: {}", String::from_utf8_lossy(&out.stderr));
    Some((endpoint, bucket))
}

/// Test credentials for moto; the secret is checked to appear nowhere.
pub const S3_KEY: &str = "ferry-test-key";
pub const S3_SECRET: &str = "ferry-test-secret-never-logged";

pub fn s3_settings(endpoint: &str) -> ferry::s3::S3Settings {
    ferry::s3::S3Settings {
        endpoint: Some(endpoint.into()),
        region: Some("us-east-1".into()),
        access_key_id: Some(S3_KEY.into()),
        secret_access_key: Some(S3_SECRET.into()),
        allow_http: Some(true),
    }
}

/// The job file's `[s3]` table for the test server.
pub fn s3_table(endpoint: &str) -> String {
    format!("[s3]\nendpoint = \"{endpoint}\"\nregion = \"us-east-1\"\naccess_key_id = \"{S3_KEY}\"\nsecret_access_key = \"{S3_SECRET}\"\n")
}

/// `ferry demo` under `dir/platform`, loaded into the database at `url` too; the
/// command's output, once it succeeded.
pub fn demo_on_postgres(dir: &std::path::Path, url: &str, scale: &str, seed: &str) -> std::process::Output {
    let out = crate::common::ferry()
        .args(["demo", "--out"])
        .arg(dir.join("platform"))
        .args(["--scale", scale, "--seed", seed, "--postgres", url])
        .output()
        .unwrap();
    assert!(out.status.success(), "ferry demo --postgres failed: {}", crate::common::stderr(&out));
    out
}
