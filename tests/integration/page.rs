//! The snapshots page (`/`): sessions, cookies, CSRF, refusals and security headers
//! through a real HTTP client; and the whole page in headless Chromium
//! (`tests/browser/page_test.py`, Selenium), against the real `ferry serve`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use reqwest::blocking::{Client, Response};
use reqwest::redirect::Policy;
use serde_json::json;

use crate::service::{Server, Setup, create, finished, token, wait_for};

/// A client that shows redirects (and their cookies) instead of following them.
fn browserless() -> Client {
    Client::builder().redirect(Policy::none()).timeout(Duration::from_secs(60)).build().unwrap()
}

/// Sets `[limits] session_timeout` in a test's service config.
fn session_timeout(config: &Path, timeout: &str) {
    let text = std::fs::read_to_string(config).unwrap().replace("[limits]\n", &format!("[limits]\nsession_timeout = \"{timeout}\"\n"));
    std::fs::write(config, text).unwrap();
}

fn assert_security_headers(r: &Response, what: &str) {
    let h = r.headers();
    let csp = h.get("content-security-policy").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    assert!(csp.starts_with("default-src 'self'") && !csp.contains("unsafe-inline"), "{what}: CSP {csp:?}");
    assert_eq!(h.get("x-frame-options").map(|v| v.to_str().unwrap()), Some("DENY"), "{what}");
    assert_eq!(h.get("referrer-policy").map(|v| v.to_str().unwrap()), Some("no-referrer"), "{what}");
    assert_eq!(h.get("x-content-type-options").map(|v| v.to_str().unwrap()), Some("nosniff"), "{what}");
}

/// The `Set-Cookie` value for cookie `name`, if the response sets it.
fn set_cookie(r: &Response, name: &str) -> Option<String> {
    r.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).find(|c| c.starts_with(&format!("{name}=")))
}

/// `name=value` of a `Set-Cookie` value.
fn pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_string()
}

/// The value of the first `name="csrf" value="..."` (or the meta tag) in a page.
fn csrf_in(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").unwrap_or_else(|| panic!("no CSRF field in {html}")) + 19;
    html[at..].split('"').next().unwrap().to_string()
}

/// Whether `html` has an inline event handler attribute (` onclick="`, ...).
fn has_handler(html: &str) -> bool {
    html.match_indices(" on").any(|(i, _)| {
        let rest = &html[i + 3..];
        let name: String = rest.chars().take_while(char::is_ascii_lowercase).collect();
        !name.is_empty() && rest[name.len()..].starts_with('=')
    })
}

fn location(r: &Response) -> String {
    r.headers().get("location").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
}

/// The login form: its CSRF cookie and field.
fn login_form(c: &Client, s: &Server) -> (String, String) {
    let r = c.get(s.url("/login")).send().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_security_headers(&r, "GET /login");
    let cookie = set_cookie(&r, "ferry_login_csrf").expect("the login form sets its CSRF cookie");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.contains("Path=/login"), "{cookie}");
    let html = r.text().unwrap();
    (pair(&cookie), csrf_in(&html))
}

fn post_login(c: &Client, s: &Server, cookie: Option<&str>, csrf: Option<&str>, token: &str) -> Response {
    let mut body = form_urlencoded::Serializer::new(String::new());
    if let Some(csrf) = csrf {
        body.append_pair("csrf", csrf);
    }
    body.append_pair("token", token);
    let mut req = c.post(s.url("/login")).header("Content-Type", "application/x-www-form-urlencoded").body(body.finish());
    if let Some(cookie) = cookie {
        req = req.header("Cookie", cookie);
    }
    req.send().unwrap()
}

/// Logs in with an admin token: the session cookie (`name=value`) and its CSRF token.
fn login(c: &Client, s: &Server, admin: &str, max_age: u64) -> (String, String) {
    let (cookie, csrf) = login_form(c, s);
    let r = post_login(c, s, Some(&cookie), Some(&csrf), admin);
    assert_eq!((r.status().as_u16(), location(&r)), (303, "/".to_string()));
    let session = set_cookie(&r, "ferry_session").expect("logging in sets the session cookie");
    assert_eq!(
        session.split_once(';').unwrap().1.trim(),
        format!("Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict"),
        "plain HTTP: no Secure flag; {session}"
    );
    assert!(set_cookie(&r, "ferry_login_csrf").is_some_and(|c| c.contains("Max-Age=0")), "the login CSRF cookie is cleared");
    let cookie = pair(&session);
    let page = c.get(s.url("/")).header("Cookie", &cookie).send().unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().unwrap();
    (cookie, csrf_in(&html))
}

fn form_post(c: &Client, s: &Server, path: &str, cookie: &str, body: &str) -> Response {
    c.post(s.url(path))
        .header("Cookie", cookie)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body.to_string())
        .send()
        .unwrap()
}

#[test]
fn page_sessions_cookies_csrf_and_headers() {
    let setup = Setup::new(0.01, "", "[[resource]]\nname = \"users\"\n", "");
    session_timeout(&setup.config, "3s");
    let admin = token(&setup.config, "ops", "admin");
    let reader = token(&setup.config, "warehouse", "reader");
    let s = Server::start(&setup.config);
    let c = browserless();

    // Static files and pages carry the security headers; logged out, / asks for a token.
    for (path, kind) in [("/static/page.css", "text/css"), ("/static/page.js", "text/javascript"), ("/static/icon.svg", "image/svg+xml")] {
        let r = c.get(s.url(path)).send().unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with(kind), "{path}");
        assert_security_headers(&r, path);
    }
    let js = c.get(s.url("/static/page.js")).send().unwrap().text().unwrap();
    assert!(!js.contains("eval(") && !js.contains("innerHTML = \"<"), "the script builds no code from strings");
    let r = c.get(s.url("/")).send().unwrap();
    assert_eq!((r.status().as_u16(), location(&r)), (303, "/login".to_string()));
    assert_security_headers(&r, "GET / logged out");
    let html = c.get(s.url("/login")).send().unwrap().text().unwrap();
    assert!(!html.contains("<script>") && !html.contains("style=") && !has_handler(&html), "no inline script or style: {html}");

    // The login form: without its CSRF field, or without its cookie, it is refused.
    let (cookie, csrf) = login_form(&c, &s);
    for (cookie, csrf) in [(Some(cookie.as_str()), None), (None, Some(csrf.as_str())), (Some(cookie.as_str()), Some("0000"))] {
        let r = post_login(&c, &s, cookie, csrf, &admin);
        assert_eq!(r.status().as_u16(), 403);
        assert_security_headers(&r, "refused login");
        assert!(set_cookie(&r, "ferry_session").is_none());
        assert!(r.text().unwrap().contains("security token"));
    }
    // A reader token is refused with a page that says why; a wrong one too.
    let r = post_login(&c, &s, Some(&cookie), Some(&csrf), &reader);
    assert_eq!(r.status().as_u16(), 403);
    assert!(set_cookie(&r, "ferry_session").is_none(), "a reader gets no session");
    let text = r.text().unwrap();
    assert!(text.contains("reader role") && text.contains("warehouse") && text.contains("admin token"), "{text}");
    let r = post_login(&c, &s, Some(&cookie), Some(&csrf), &format!("ferry_{}", "0".repeat(64)));
    assert_eq!(r.status().as_u16(), 401);
    assert!(r.text().unwrap().contains("not valid"));

    // An admin logs in; every page carries the headers.
    let (session, csrf) = login(&c, &s, &admin, 3);
    let unknown = "0f8e4a52-1c3b-4d7e-9a61-2b5c8d9e0f13";
    for (path, status) in [
        ("/", 200),
        ("/?status=failed&q=x", 200),
        ("/snapshots/new", 200),
        (&format!("/snapshots/{unknown}") as &str, 404),
        ("/snapshots/not-an-id", 422),
        ("/?status=lost", 422),
    ] {
        let r = c.get(s.url(path)).header("Cookie", &session).send().unwrap();
        assert_eq!(r.status().as_u16(), status, "{path}");
        assert_security_headers(&r, path);
        assert_eq!(r.headers()["cache-control"], "no-store", "{path}");
        let html = r.text().unwrap();
        assert!(html.contains("<!doctype html>") && !html.contains("style="), "{path}: {html}");
    }

    // The cookie authorizes the API; what changes something needs X-CSRF-Token.
    let r = c.get(s.url("/api/v1/snapshots")).header("Cookie", &session).send().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let delete = |csrf: Option<&str>| {
        let mut req = c.delete(s.url(&format!("/api/v1/snapshots/{unknown}"))).header("Cookie", &session);
        if let Some(t) = csrf {
            req = req.header("X-CSRF-Token", t);
        }
        let r = req.send().unwrap();
        let status = r.status().as_u16();
        (status, r.json::<serde_json::Value>().unwrap())
    };
    let (status, body) = delete(None);
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("csrf")), "{body}");
    assert_eq!(delete(Some("wrong")).0, 403);
    assert_eq!(delete(Some(&csrf)).0, 404, "with its CSRF token the call goes through");
    let r = c.post(s.url("/api/v1/snapshots")).header("Cookie", &session).json(&json!({"job": "demo"})).send().unwrap();
    assert_eq!(r.status().as_u16(), 403, "a cookie-authorized create without the CSRF token");
    // Bearer tokens keep working beside the cookie.
    let r = c.get(s.url("/api/v1/snapshots")).bearer_auth(&reader).send().unwrap();
    assert_eq!(r.status().as_u16(), 200);

    // Page forms without the session's CSRF token are refused (the session stays).
    for body in ["", "csrf=", "csrf=0000"] {
        let r = form_post(&c, &s, "/logout", &session, body);
        assert_eq!(r.status().as_u16(), 403, "logout with {body:?}");
        let r = form_post(&c, &s, "/snapshots/new", &session, &format!("job=demo&resources.demo=users&{body}"));
        assert_eq!(r.status().as_u16(), 403, "create with {body:?}");
        let r = form_post(&c, &s, &format!("/snapshots/{unknown}/delete"), &session, body);
        assert_eq!(r.status().as_u16(), 403, "delete with {body:?}");
    }
    let (_, list) = crate::service::get(&s, &admin, "/api/v1/snapshots");
    assert_eq!(list["total"], 0, "nothing was created");

    // Logging out ends the session: the old cookie opens nothing, page or API.
    let r = form_post(&c, &s, "/logout", &session, &format!("csrf={csrf}"));
    assert_eq!((r.status().as_u16(), location(&r)), (303, "/login?out=1".to_string()));
    assert!(set_cookie(&r, "ferry_session").is_some_and(|c| c.contains("Max-Age=0")), "the cookie is cleared");
    let r = c.get(s.url("/")).header("Cookie", &session).send().unwrap();
    assert_eq!((r.status().as_u16(), location(&r)), (303, "/login?ended=1".to_string()));
    let r = c.get(s.url("/api/v1/snapshots")).header("Cookie", &session).send().unwrap();
    assert_eq!(r.status().as_u16(), 401);

    // A session expires (session_timeout = 3s).
    let (session, _) = login(&c, &s, &admin, 3);
    assert_eq!(c.get(s.url("/")).header("Cookie", &session).send().unwrap().status().as_u16(), 200);
    std::thread::sleep(Duration::from_millis(3500));
    let r = c.get(s.url("/")).header("Cookie", &session).send().unwrap();
    assert_eq!((r.status().as_u16(), location(&r)), (303, "/login?ended=1".to_string()), "an expired session");
    assert_eq!(c.get(s.url("/api/v1/snapshots")).header("Cookie", &session).send().unwrap().status().as_u16(), 401);

    // Revoking the token ends its sessions.
    let (session, _) = login(&c, &s, &admin, 3);
    let out = crate::common::ferry().args(["tokens", "revoke", "ops", "--config"]).arg(&setup.config).output().unwrap();
    assert!(out.status.success());
    let r = c.get(s.url("/")).header("Cookie", &session).send().unwrap();
    assert_eq!(r.status().as_u16(), 303, "a revoked token's session");
}

/// The history: 20 rows a page, search by name, filter by status; names escaped.
#[test]
fn page_history_filters_searches_and_pages() {
    let setup = Setup::new(0.01, "", "[[resource]]\nname = \"users\"\n", "");
    let admin = token(&setup.config, "ops", "admin");
    let mut config = std::fs::read_to_string(&setup.config).unwrap();
    config.push_str("\n[[schedule]]\nname = \"weekly-demo\"\njob = \"demo\"\ncadence = \"weekly\"\nday = \"monday\"\ntime = \"02:00\"\n");
    std::fs::write(&setup.config, config).unwrap();
    let s = Server::start(&setup.config);
    let c = browserless();
    for i in 0..21 {
        let (code, v) = create(&s, &admin, json!({"job": "demo", "name": format!("nightly {i}")}));
        assert_eq!(code, 202, "{v}");
    }
    let (code, v) = create(&s, &admin, json!({"job": "demo", "name": "<b>quarterly</b> & \"more\""}));
    assert_eq!(code, 202, "{v}");
    let (session, _) = login(&c, &s, &admin, 8 * 3600);
    let page = |path: &str| {
        let r = c.get(s.url(path)).header("Cookie", &session).send().unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
        r.text().unwrap()
    };
    let rows = |html: &str| html.matches("<tr id=\"row-").count();
    let first = page("/");
    assert_eq!(rows(&first), 20);
    assert!(first.contains("Showing 1–20 of 22") && first.contains("?page=2\" rel=\"next\""), "{first}");
    assert!(
        first.contains("&lt;b&gt;quarterly&lt;&#x2f;b&gt; &amp; &quot;more&quot;") && !first.contains("<b>quarterly"),
        "a name is escaped"
    );
    // The schedules, once configured, are listed under the history with their next run.
    let schedules = &first[first.find("id=\"schedules\"").expect("a schedules table")..];
    assert!(schedules.contains("weekly-demo") && schedules.contains("Active") && schedules.contains("none yet"), "{schedules}");
    assert!(schedules.contains("T02:00"), "the next run is listed: {schedules}");
    let second = page("/?page=2");
    assert_eq!(rows(&second), 2);
    assert!(second.contains("nightly 0") && second.contains("Showing 21–22 of 22"), "{second}");
    let found = page("/?q=QUARTERLY");
    assert_eq!(rows(&found), 1, "search ignores case");
    let nothing = page("/?status=failed&q=nightly");
    assert!(rows(&nothing) == 0 && nothing.contains("No snapshots match"), "{nothing}");
    assert!(nothing.contains("aria-current=\"page\" data-filter=\"failed\""), "the filter shows as current");
}

/// Under TLS both cookies are `Secure`.
#[test]
fn page_cookies_are_secure_under_tls() {
    let setup = Setup::new(0.01, "", "[[resource]]\nname = \"users\"\n", "tls_cert = \"cert.pem\"\ntls_key = \"key.pem\"");
    let dir = setup.platform.dir.path();
    crate::service::self_signed_cert(dir);
    let admin = token(&setup.config, "ops", "admin");
    let s = Server::start(&setup.config);
    let jar = dir.join("cookies.txt");
    let curl = |args: &[&str]| {
        let out = Command::new("curl")
            .args(["-sS", "-i", "--cacert"])
            .arg(dir.join("cert.pem"))
            .args(["-c"])
            .arg(&jar)
            .args(["-b"])
            .arg(&jar)
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let page = curl(&[&s.url("/login")]);
    let cookie = page.lines().find(|l| l.to_lowercase().starts_with("set-cookie: ferry_login_csrf=")).unwrap_or_else(|| panic!("{page}"));
    assert!(cookie.trim_end().ends_with("; Secure"), "{cookie}");
    let csrf = csrf_in(&page);
    let answer = curl(&["--data-urlencode", &format!("csrf={csrf}"), "--data-urlencode", &format!("token={admin}"), &s.url("/login")]);
    let session = answer.lines().find(|l| l.to_lowercase().starts_with("set-cookie: ferry_session=")).unwrap_or_else(|| panic!("{answer}"));
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Strict") && session.trim_end().ends_with("; Secure"), "{session}");
}

fn have_browser(python: &Path) -> bool {
    let selenium = Command::new(python).args(["-c", "import selenium"]).output().is_ok_and(|o| o.status.success());
    selenium && Path::new("/usr/bin/chromium").exists() && Path::new("/usr/bin/chromedriver").exists()
}

/// The whole page in headless Chromium: log in, estimate, create, follow, download,
/// delete, log out; refusals; no console error or CSP violation. Takes the screenshots
/// (into `$FERRY_SCREENSHOTS`, e.g. `docs/screenshots`, else under target/).
#[test]
fn page_in_a_real_browser() {
    let python = std::env::var_os("FERRY_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/py/bin/python"));
    assert!(
        have_browser(&python),
        "headless Chromium is not set up: run the tests with `bash tests/run.sh`, which installs Debian's chromium and \
         chromium-driver and selenium into target/py (or point FERRY_PYTHON at a Python with selenium)"
    );
    let resources = "[[resource]]\nname = \"users\"\n[[resource]]\nname = \"accounts\"\n[[resource]]\nname = \"transactions\"\nmonths = 12\n[[resource]]\nname = \"attachments\"\n";
    let setup = Setup::new(0.5, "archive = \"tar\"\npart_size = \"1MiB\"\nprice_per_gib = 0.023", resources, "");
    // A second job whose plugin fails, for a failed row in the history.
    let hostile = crate::common::plugin("ferry-test-hostile");
    let broken = format!("[[resource]]\nname = \"ledger\"\nplugin = \"{}\"\noptions = {{ mode = \"panic\" }}\n", hostile.display());
    setup.platform.job("ledger", "", &broken);
    let text = std::fs::read_to_string(&setup.config).unwrap();
    std::fs::write(&setup.config, format!("{text}\n[[job]]\nname = \"ledger\"\nfile = \"ledger.toml\"\n")).unwrap();
    let admin = token(&setup.config, "ops", "admin");
    let reader = token(&setup.config, "warehouse", "reader");
    // Each run holds 2 s before publishing: the page must be seen following it in progress.
    let s = Server::start_env(&setup.config, "127.0.0.1:0", &[("FERRY_FAULT_HOLD_BEFORE_PUBLISH_MS", "2000")]);
    // A history to look at: snapshots made through the API, one of them failed.
    for (body, status) in [
        (json!({"job": "demo", "name": "March close", "description": "month-end export for the auditors"}), "completed"),
        (json!({"job": "ledger", "name": "General ledger", "description": "the finance team's ledger export"}), "failed"),
        (
            json!({"job": "demo", "name": "Users and accounts", "resources": ["users", "accounts"], "description": "the CRM sync"}),
            "completed",
        ),
    ] {
        let (code, created) = create(&s, &admin, body);
        assert_eq!(code, 202, "{created}");
        let done = wait_for(&s, &admin, created["id"].as_str().unwrap(), Duration::from_secs(180), finished);
        assert_eq!(done["status"], status, "{done}");
    }
    let shots = std::env::var_os("FERRY_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/page_test.py");
    let out = Command::new(&python)
        .arg(script)
        .args(["--base", &s.base, "--admin", &admin, "--reader", &reader, "--shots"])
        .arg(&shots)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the browser test failed (screenshot and HTML in {}):\n{stdout}\n{}",
        shots.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
    println!("{stdout}");
}
