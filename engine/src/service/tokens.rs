//! API tokens: random, shown once, kept as their sha256, compared in constant time.

use rand::RngCore as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;

use crate::catalog::{Role, TokenRecord};

/// Every token starts with this, so a leaked one is easy to recognise in a scan.
pub const PREFIX: &str = "ferry_";

/// A new token: the prefix and 32 random bytes (from the thread's CSPRNG) in hex.
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{PREFIX}{}", hex::encode(bytes))
}

/// What the catalog keeps of a token.
pub fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The active token matching `presented`, if any. Every active token's hash is compared
/// (no early exit), each in constant time, so the time taken says nothing about which
/// bytes matched.
pub fn find<'a>(tokens: &'a [TokenRecord], presented: &str) -> Option<(&'a str, Role)> {
    let digest = hash(presented);
    let mut found = None;
    for t in tokens {
        let same: bool = t.sha256.ct_eq(&digest).into();
        if same && t.revoked_at.is_none() {
            found = Some((t.name.as_str(), t.role));
        }
    }
    found
}

/// The token of an `Authorization: Bearer <token>` header value.
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_only_active_hashes() {
        let a = generate();
        let b = generate();
        assert_ne!(a, b);
        assert!(a.starts_with(PREFIX) && a.len() == PREFIX.len() + 64);
        let rec = |name: &str, t: &str, role, revoked: bool| TokenRecord {
            name: name.into(),
            role,
            sha256: hash(t),
            created_at: String::new(),
            revoked_at: revoked.then(String::new),
        };
        let tokens = vec![rec("a", &a, Role::Admin, false), rec("b", &b, Role::Reader, true)];
        assert_eq!(find(&tokens, &a), Some(("a", Role::Admin)));
        assert_eq!(find(&tokens, &b), None, "a revoked token must not authenticate");
        assert_eq!(find(&tokens, "ferry_x"), None);
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
    }
}
