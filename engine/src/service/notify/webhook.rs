//! Webhooks: the event as a JSON body, POSTed with a signature a receiver checks with
//! the shared secret, as Stripe's and GitHub's are:
//!
//! ```text
//! Ferry-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
//! ```
//!
//! Signing the timestamp with the body lets a receiver refuse replays (a `t` far from
//! its clock); `Ferry-Delivery` is the same on every retry of one delivery, for
//! receivers that deduplicate. The README shows a receiver's check.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::config::SecretSlot;
use super::{Event, NotifyError};

/// The signature header's name.
pub const SIGNATURE_HEADER: &str = "Ferry-Signature";

/// hex HMAC-SHA256 of `"<timestamp>.<body>"` under `secret`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// The `Ferry-Signature` value.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    format!("t={timestamp},v1={}", sign(secret, timestamp, body))
}

/// The client every webhook goes through: rustls on ring, no redirects followed (a
/// signed body goes only where it was configured to).
pub fn client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION"))).build()
}

/// The URL as it may be shown: without its query (which may hold a token).
pub fn shown(url: &reqwest::Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    let _ = u.set_password(None);
    u.to_string()
}

/// One attempt: `Ok(status)` on a 2xx answer.
pub async fn post(
    client: &reqwest::Client,
    url: &reqwest::Url,
    secret: &SecretSlot,
    event: &Event,
    body: &[u8],
    delivery_id: &str,
    timeout: Duration,
) -> Result<Option<u16>, NotifyError> {
    let Some(secret) = secret.get() else { return Err(NotifyError::NoSecret { url: shown(url) }) };
    let t = chrono::Utc::now().timestamp();
    let sent = client
        .post(url.clone())
        .timeout(timeout)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(SIGNATURE_HEADER, signature(secret.expose().as_bytes(), t, body))
        .header("Ferry-Event", event.event)
        .header("Ferry-Delivery", delivery_id)
        .body(body.to_vec())
        .send()
        .await;
    match sent {
        Ok(r) if r.status().is_success() => Ok(Some(r.status().as_u16())),
        Ok(r) => Err(NotifyError::Status { url: shown(url), status: r.status().as_u16() }),
        Err(e) if e.is_timeout() => Err(NotifyError::Timeout { url: shown(url), after: timeout }),
        Err(e) => Err(NotifyError::Connect { url: shown(url), source: e.without_url() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Computed independently:
        // printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec_test
        let s = signature(b"whsec_test", 1_700_000_000, br#"{"a":1}"#);
        assert_eq!(s, "t=1700000000,v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789");
        assert_ne!(sign(b"whsec_test", 1_700_000_000, b"x"), sign(b"whsec_test", 1_700_000_001, b"x"));
    }

    #[test]
    fn shown_urls_lose_their_query() {
        let u = reqwest::Url::parse("https://user:pw@hooks.example.com/ferry?token=abc").unwrap();
        assert_eq!(shown(&u), "https://user@hooks.example.com/ferry");
    }
}
