//! Signed manifests (`[output] sign_with`): `manifest.json` signed with Ed25519 in the
//! minisign format (`manifest.json.minisig`, prehashed), so a recipient checks it with
//! `minisign -V -m manifest.json -p ferry.pub` or `ferry verify --key ferry.pub`. The
//! manifest holds the sha256 of every part and file, so the signature covers the whole
//! snapshot. Keys come from `ferry keys generate` (minisign's key file formats; the
//! secret key is stored unencrypted, readable by its owner only, for unattended runs).

use std::io::{self, Cursor, Write};
use std::path::{Path, PathBuf};

/// The signature's name beside the manifest.
pub const SIGNATURE_FILE: &str = "manifest.json.minisig";
/// The names `ferry keys generate` writes.
pub const SECRET_KEY_FILE: &str = "ferry.key";
pub const PUBLIC_KEY_FILE: &str = "ferry.pub";

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("cannot read key file {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path} is not a minisign secret key without a password ({reason}); `ferry keys generate` writes one")]
    SecretKey { path: PathBuf, reason: String },
    #[error("{path} is not a minisign public key ({reason}); use the ferry.pub that `ferry keys generate` wrote beside the secret key")]
    PublicKey { path: PathBuf, reason: String },
    #[error("cannot sign the manifest: {0}")]
    Sign(String),
    #[error("{path} already exists; remove it or choose another directory with --dir (a key pair is never overwritten)")]
    Exists { path: PathBuf },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot generate a key pair: {0}")]
    Generate(String),
}

/// Why a signature was refused.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    #[error("{path} is missing: the snapshot is not signed, but a key was given (was the job run without `sign_with`?)")]
    Missing { path: PathBuf },
    #[error("{path} cannot be read: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path} is not a minisign signature: {reason}")]
    Malformed { path: PathBuf, reason: String },
    #[error("the signature does not verify with this key: {reason} (the manifest was changed, or it was signed with another key)")]
    Invalid { reason: String },
}

/// A secret key to sign manifests with.
#[derive(Clone)]
pub struct SigningKey {
    sk: minisign::SecretKey,
    path: PathBuf,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("path", &self.path).finish_non_exhaustive()
    }
}

impl SigningKey {
    pub fn read(path: &Path) -> Result<SigningKey, SignError> {
        let text = std::fs::read_to_string(path).map_err(|source| SignError::Read { path: path.into(), source })?;
        let bad = |reason: String| SignError::SecretKey { path: path.into(), reason };
        let boxed = minisign::SecretKeyBox::from_string(&text).map_err(|e| bad(e.to_string()))?;
        let sk = boxed.into_unencrypted_secret_key().map_err(|e| bad(e.to_string()))?;
        Ok(SigningKey { sk, path: path.into() })
    }

    /// The `.minisig` text for `data`; the trusted comment names the snapshot.
    pub fn sign(&self, data: &[u8], snapshot_id: &str) -> Result<String, SignError> {
        let trusted = format!("timestamp:{}\tfile:manifest.json\tsnapshot:{snapshot_id}", chrono::Utc::now().timestamp());
        let signature = minisign::sign(None, &self.sk, Cursor::new(data), Some(&trusted), Some("signature from ferry secret key"))
            .map_err(|e| SignError::Sign(e.to_string()))?;
        Ok(signature.into_string())
    }
}

/// A public key to check signatures with.
pub struct VerifyingKey(minisign::PublicKey);

impl VerifyingKey {
    pub fn read(path: &Path) -> Result<VerifyingKey, SignError> {
        let text = std::fs::read_to_string(path).map_err(|source| SignError::Read { path: path.into(), source })?;
        let bad = |reason: String| SignError::PublicKey { path: path.into(), reason };
        // A bare base64 key (`minisign -P`'s form) or the two-line key file.
        let pk = if text.trim().lines().count() == 1 {
            minisign::PublicKey::from_base64(text.trim())
        } else {
            minisign::PublicKeyBox::from_string(&text).and_then(|b| b.into_public_key())
        };
        pk.map(VerifyingKey).map_err(|e| bad(e.to_string()))
    }

    /// Checks `signature` (the `.minisig` text) over `data`; returns the trusted comment.
    pub fn verify(&self, data: &[u8], signature: &str, path: &Path) -> Result<String, SignatureError> {
        let sig = minisign::SignatureBox::from_string(signature)
            .map_err(|e| SignatureError::Malformed { path: path.into(), reason: e.to_string() })?;
        minisign::verify(&self.0, &sig, Cursor::new(data), true, false, false)
            .map_err(|e| SignatureError::Invalid { reason: e.to_string() })?;
        Ok(sig.trusted_comment().unwrap_or_default())
    }
}

/// Checks `dir/manifest.json.minisig` against `dir/manifest.json` with `key`; a missing
/// signature is an error. Returns the trusted comment.
pub fn verify_manifest(dir: &Path, key: &VerifyingKey) -> Result<String, SignatureError> {
    let sig_path = dir.join(SIGNATURE_FILE);
    let signature = match std::fs::read_to_string(&sig_path) {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(SignatureError::Missing { path: sig_path }),
        Err(source) => return Err(SignatureError::Read { path: sig_path, source }),
    };
    let manifest_path = dir.join("manifest.json");
    let manifest = std::fs::read(&manifest_path).map_err(|source| SignatureError::Read { path: manifest_path, source })?;
    key.verify(&manifest, &signature, &sig_path)
}

/// Writes a new key pair, `ferry.key` (mode 0600) and `ferry.pub`, into `dir`; refuses
/// to overwrite either. Returns their paths.
pub fn generate(dir: &Path) -> Result<(PathBuf, PathBuf), SignError> {
    let (sk_path, pk_path) = (dir.join(SECRET_KEY_FILE), dir.join(PUBLIC_KEY_FILE));
    for p in [&sk_path, &pk_path] {
        if p.exists() {
            return Err(SignError::Exists { path: p.clone() });
        }
    }
    let minisign::KeyPair { pk, sk } = minisign::KeyPair::generate_unencrypted_keypair().map_err(|e| SignError::Generate(e.to_string()))?;
    let sk_text = sk.to_box(Some("ferry secret key")).map_err(|e| SignError::Generate(e.to_string()))?.into_string();
    let pk_text = pk.to_box().map_err(|e| SignError::Generate(e.to_string()))?.into_string();
    write_new(&sk_path, sk_text.as_bytes(), 0o600)?;
    write_new(&pk_path, pk_text.as_bytes(), 0o644)?;
    Ok((sk_path, pk_path))
}

/// Creates `path` (never replacing a file) with `mode` from the start, so the secret is
/// never readable by others, not even for a moment.
fn write_new(path: &Path, data: &[u8], mode: u32) -> Result<(), SignError> {
    use std::os::unix::fs::OpenOptionsExt;
    let write = || -> io::Result<()> {
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(path)?;
        file.write_all(data)?;
        file.sync_all()
    };
    write().map_err(|source| SignError::Write { path: path.into(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_and_a_changed_manifest_or_other_key_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let (sk, pk) = generate(dir.path()).unwrap();
        let key = SigningKey::read(&sk).unwrap();
        let public = VerifyingKey::read(&pk).unwrap();
        let sig = key.sign(b"{\"a\":1}\n", "id").unwrap();
        let comment = public.verify(b"{\"a\":1}\n", &sig, Path::new("x")).unwrap();
        assert!(comment.contains("snapshot:id"), "{comment}");
        assert!(matches!(public.verify(b"{\"a\":2}\n", &sig, Path::new("x")), Err(SignatureError::Invalid { .. })));
        let other = tempfile::tempdir().unwrap();
        let (_, other_pk) = generate(other.path()).unwrap();
        assert!(VerifyingKey::read(&other_pk).unwrap().verify(b"{\"a\":1}\n", &sig, Path::new("x")).is_err());
        assert!(matches!(generate(dir.path()), Err(SignError::Exists { .. })));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&sk).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
