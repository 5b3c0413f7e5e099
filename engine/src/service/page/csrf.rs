//! CSRF tokens: one per session (every form of the page carries it as the `csrf` field,
//! its scripts send it as `X-CSRF-Token`), and one per login form, double-submitted in a
//! cookie since there is no session yet. Compared in constant time.

use rand::RngCore as _;
use subtle::ConstantTimeEq as _;

/// The form field every page form carries.
pub const FIELD: &str = "csrf";
/// The header the page's scripts send with API calls that change something.
pub const HEADER: &str = "x-csrf-token";
/// The login form's cookie (scoped to `/login`).
pub const LOGIN_COOKIE: &str = "ferry_login_csrf";

/// A new token: 32 random bytes in hex.
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Whether `presented` is `expected` (constant time; an empty token never matches).
pub fn matches(expected: &str, presented: Option<&str>) -> bool {
    match presented {
        Some(p) if !p.is_empty() && !expected.is_empty() => p.as_bytes().ct_eq(expected.as_bytes()).into(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_token_matches() {
        let t = generate();
        assert_eq!(t.len(), 64);
        assert!(matches(&t, Some(&t)));
        assert!(!matches(&t, Some(&generate())));
        assert!(!matches(&t, Some("")) && !matches(&t, None) && !matches("", Some("")));
    }
}
