//! Page sessions: logging in with an admin token gives a random session id in an
//! `HttpOnly`, `SameSite=Strict` cookie (`Secure` under TLS) that expires after
//! `limits.session_timeout`. The server keeps each session in memory, keyed by the
//! sha256 of its id, with the hash of the token it was opened with: revoking that token
//! ends its sessions, and so does a restart.
//!
//! The cookie also authorizes the API calls the page makes and its download links
//! ([`api_caller`]); a cookie-authorized call that changes something must send the
//! session's CSRF token as `X-CSRF-Token`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use rand::RngCore as _;
use sha2::{Digest, Sha256};

use super::csrf;
use super::error::PageError;
use crate::catalog::Role;
use crate::service::error::ApiError;
use crate::service::extract::Caller;
use crate::service::state::AppState;

/// The session cookie's name.
pub const COOKIE: &str = "ferry_session";

/// One logged-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    /// The name of the admin token it logged in with.
    pub token_name: String,
    token_sha256: [u8; 32],
    /// Every form and state-changing script call of this session carries it.
    pub csrf: String,
    expires: Instant,
}

/// The open sessions.
pub struct Sessions {
    open: Mutex<HashMap<[u8; 32], Session>>,
    ttl: Duration,
}

impl Sessions {
    pub fn new(ttl: Duration) -> Sessions {
        Sessions { open: Mutex::new(HashMap::new()), ttl }
    }

    /// How long a session lasts.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Opens a session for `token_name` (whose token hashes to `token_sha256`); returns
    /// the id for the cookie and the session.
    pub fn open(&self, token_name: &str, token_sha256: [u8; 32]) -> (String, Session) {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let id = hex::encode(bytes);
        let session = Session { token_name: token_name.into(), token_sha256, csrf: csrf::generate(), expires: Instant::now() + self.ttl };
        let mut open = self.lock();
        let now = Instant::now();
        open.retain(|_, s| s.expires > now);
        open.insert(key(&id), session.clone());
        (id, session)
    }

    /// The live session of `id`; an expired one is removed.
    pub fn get(&self, id: &str) -> Option<Session> {
        let mut open = self.lock();
        let k = key(id);
        match open.get(&k) {
            Some(s) if s.expires > Instant::now() => Some(s.clone()),
            Some(_) => {
                open.remove(&k);
                None
            }
            None => None,
        }
    }

    /// Ends the session of `id` (logging out).
    pub fn end(&self, id: &str) {
        self.lock().remove(&key(id));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Sessions are found by the hash of their id: the map's lookup time depends on the
/// hash, which says nothing about the id's bytes.
fn key(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Strict`, `Secure` under TLS.
pub fn set_cookie(name: &str, value: &str, path: &str, max_age: Duration, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path={path}; Max-Age={}; HttpOnly; SameSite=Strict{secure}", max_age.as_secs())
}

/// A `Set-Cookie` value that removes cookie `name`.
pub fn clear_cookie(name: &str, path: &str, secure: bool) -> String {
    set_cookie(name, "", path, Duration::ZERO, secure)
}

/// Whether the service speaks HTTPS (cookies then get `Secure`).
pub fn secure(state: &AppState) -> bool {
    state.config.tls.is_some()
}

/// The session of the request's cookie, if it is open and its token is still an active
/// admin token (a revoked token ends its sessions here).
async fn current(headers: &HeaderMap, state: &AppState) -> Result<Option<(String, Session)>, ApiError> {
    let Some(id) = cookie(headers, COOKIE).map(str::to_string) else { return Ok(None) };
    let Some(session) = state.sessions.get(&id) else { return Ok(None) };
    let digest = session.token_sha256;
    let active =
        state.db(move |c| Ok(c.tokens()?.iter().any(|t| t.sha256 == digest && t.revoked_at.is_none() && t.role == Role::Admin))).await?;
    if !active {
        state.sessions.end(&id);
        return Ok(None);
    }
    Ok(Some((id, session)))
}

/// The API's caller when the request has no `Authorization` header but a session
/// cookie. A method that changes something needs the session's CSRF token in
/// `X-CSRF-Token`.
pub async fn api_caller(parts: &Parts, state: &AppState) -> Result<Option<Caller>, ApiError> {
    let Some((_, session)) = current(&parts.headers, state).await? else { return Ok(None) };
    let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe {
        let presented = parts.headers.get(csrf::HEADER).and_then(|v| v.to_str().ok());
        if !csrf::matches(&session.csrf, presented) {
            return Err(ApiError::Csrf);
        }
    }
    Ok(Some(Caller { name: session.token_name, role: Role::Admin }))
}

/// A page request from a logged-in admin. Without one, a page answers with the login
/// form (a redirect to `/login`).
#[derive(Debug, Clone)]
pub struct AdminSession {
    pub id: String,
    pub session: Session,
}

impl AdminSession {
    /// The API's caller for this session (page handlers call the API's handlers).
    pub fn caller(&self) -> Caller {
        Caller { name: self.session.token_name.clone(), role: Role::Admin }
    }
}

impl FromRequestParts<AppState> for AdminSession {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<AdminSession, PageError> {
        match current(&parts.headers, state).await? {
            Some((id, session)) => Ok(AdminSession { id, session }),
            None if cookie(&parts.headers, COOKIE).is_some() => Err(PageError::SessionEnded),
            None => Err(PageError::LoggedOut),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn sessions_expire_and_end() {
        let sessions = Sessions::new(Duration::from_millis(50));
        let (id, s) = sessions.open("ops", [1; 32]);
        assert_eq!(sessions.get(&id).map(|s| s.csrf), Some(s.csrf));
        assert!(sessions.get("nope").is_none());
        std::thread::sleep(Duration::from_millis(80));
        assert!(sessions.get(&id).is_none(), "an expired session must not authorize");
        let (id, _) = sessions.open("ops", [1; 32]);
        sessions.end(&id);
        assert!(sessions.get(&id).is_none());
    }

    #[test]
    fn cookies_are_read_and_written_strictly() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("a=1; ferry_session=abc"));
        h.append(header::COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(cookie(&h, COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "b"), Some("2"));
        assert_eq!(cookie(&h, "c"), None);
        let v = set_cookie(COOKIE, "x", "/", Duration::from_secs(60), true);
        assert_eq!(v, "ferry_session=x; Path=/; Max-Age=60; HttpOnly; SameSite=Strict; Secure");
        assert!(clear_cookie(COOKIE, "/", false).contains("Max-Age=0"));
    }
}
