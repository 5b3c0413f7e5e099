//! Encryption at rest (`[output] encrypt_to`): every tar part, and every loose file,
//! encrypted with age for the job's recipients (`age1...` X25519 keys and
//! `ssh-ed25519` keys), streaming: the plaintext passes through in age's 64 KiB chunks
//! and no part is ever held in memory. What is stored is `<name>.age`; the manifest
//! keeps its size and sha256 beside the plaintext's (age is randomized, so the plaintext
//! is what stays byte-identical from run to run).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::archive::PartSink;
use super::{ConfinedDir, FileEntry, Plaintext, ResourceEntry};

/// The suffix of an encrypted object.
pub const AGE_SUFFIX: &str = ".age";

#[derive(Debug, thiserror::Error)]
pub enum EncryptError {
    #[error(
        "{recipient:?} is not an age recipient: expected \"age1...\" or \"ssh-ed25519 AAAA...\" (an ssh-rsa key works too); `age-keygen -y key.txt` prints a key's recipient"
    )]
    Recipient { recipient: String },
    #[error("no recipients to encrypt for; list at least one in `encrypt_to`")]
    NoRecipients,
    #[error("cannot encrypt for these recipients: {0}")]
    Encryptor(String),
    #[error("cannot encrypt {path}: {source}")]
    File { path: PathBuf, source: io::Error },
}

/// The recipients every part and loose file is encrypted for.
#[derive(Clone)]
pub struct Recipients {
    keys: Arc<Vec<Box<dyn age::Recipient + Send + Sync>>>,
    /// As written in the job (public keys: they go into the manifest).
    written: Vec<String>,
}

impl std::fmt::Debug for Recipients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Recipients").field(&self.written).finish()
    }
}

impl Recipients {
    /// Parses `age1...` and `ssh-...` public keys.
    pub fn parse(list: &[String]) -> Result<Recipients, EncryptError> {
        if list.is_empty() {
            return Err(EncryptError::NoRecipients);
        }
        let mut keys: Vec<Box<dyn age::Recipient + Send + Sync>> = Vec::new();
        for written in list {
            let text = written.trim();
            let bad = || EncryptError::Recipient { recipient: written.clone() };
            if text.starts_with("age1") {
                keys.push(Box::new(text.parse::<age::x25519::Recipient>().map_err(|_| bad())?));
            } else if text.starts_with("ssh-") {
                keys.push(Box::new(text.parse::<age::ssh::Recipient>().map_err(|_| bad())?));
            } else {
                return Err(bad());
            }
        }
        Ok(Recipients { keys: Arc::new(keys), written: list.iter().map(|r| r.trim().to_string()).collect() })
    }

    /// The recipients as written (for the manifest).
    pub fn written(&self) -> &[String] {
        &self.written
    }

    /// Wraps `inner`: what is written to the result reaches `inner` encrypted.
    pub fn encrypt<W: Write>(&self, inner: W) -> io::Result<Encrypting<W>> {
        let encryptor = age::Encryptor::with_recipients(self.keys.iter().map(|k| k.as_ref() as &dyn age::Recipient))
            .map_err(|e| io::Error::other(EncryptError::Encryptor(e.to_string())))?;
        Ok(Encrypting { stream: encryptor.wrap_output(inner)?, plain: Sha256::new(), bytes: 0 })
    }
}

/// A writer that encrypts into `W`, hashing the plaintext on the way.
pub struct Encrypting<W: Write> {
    stream: age::stream::StreamWriter<W>,
    plain: Sha256,
    bytes: u64,
}

impl<W: Write> Encrypting<W> {
    /// Writes age's last chunk; returns the inner writer and what the plaintext was.
    pub fn finish(self) -> io::Result<(W, Plaintext)> {
        let inner = self.stream.finish()?;
        Ok((inner, Plaintext { bytes: self.bytes, sha256: hex::encode(self.plain.finalize()) }))
    }
}

impl<W: Write> Write for Encrypting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.stream.write(buf)?;
        self.plain.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

/// A [`PartSink`] that encrypts every part for `recipients` (when set) before `inner`
/// stores it, as `<part>.tar.age`.
pub struct Sealed<S: PartSink> {
    inner: S,
    recipients: Option<Recipients>,
    last_plaintext: Option<Plaintext>,
}

impl<S: PartSink> Sealed<S> {
    pub fn new(inner: S, recipients: Option<Recipients>) -> Self {
        Sealed { inner, recipients, last_plaintext: None }
    }

    pub fn into_inner(self) -> S {
        self.inner
    }
}

/// A part being written through [`Sealed`].
pub enum SealedWriter<W: Write> {
    Plain(W),
    Age(Encrypting<W>),
}

impl<W: Write> Write for SealedWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            SealedWriter::Plain(w) => w.write(buf),
            SealedWriter::Age(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            SealedWriter::Plain(w) => w.flush(),
            SealedWriter::Age(w) => w.flush(),
        }
    }
}

impl<S: PartSink> PartSink for Sealed<S> {
    type Writer = SealedWriter<S::Writer>;
    type Error = S::Error;

    fn part_name(&self, name: &str) -> String {
        let name = self.inner.part_name(name);
        if self.recipients.is_some() { format!("{name}{AGE_SUFFIX}") } else { name }
    }

    fn create(&mut self, name: &str) -> Result<Self::Writer, S::Error> {
        let writer = self.inner.create(name)?;
        Ok(match &self.recipients {
            // The age header goes to the inner writer at once.
            Some(r) => SealedWriter::Age(r.encrypt(writer).map_err(|e| self.inner.write_failed(e))?),
            None => SealedWriter::Plain(writer),
        })
    }

    fn finish(&mut self, writer: Self::Writer) -> Result<(u64, String), S::Error> {
        let (inner, plaintext) = match writer {
            SealedWriter::Plain(w) => (w, None),
            SealedWriter::Age(w) => {
                // Finishing writes the last chunk to the inner writer.
                let (w, p) = w.finish().map_err(|e| self.inner.write_failed(e))?;
                (w, Some(p))
            }
        };
        self.last_plaintext = plaintext;
        self.inner.finish(inner)
    }

    fn write_failed(&mut self, e: io::Error) -> S::Error {
        self.inner.write_failed(e)
    }

    fn take_plaintext(&mut self) -> Option<Plaintext> {
        self.last_plaintext.take()
    }
}

/// Encrypts every loose file (one outside any tar part) of `entries` in `dir`: `path`
/// becomes `path.age`, its entry names and hashes what is stored and keeps the
/// plaintext's size and sha256 under `plaintext`. Streams; the plaintext is removed.
pub fn seal_loose_files(dir: &ConfinedDir, entries: &mut [ResourceEntry], recipients: &Recipients) -> Result<(), EncryptError> {
    for file in entries.iter_mut().flat_map(|e| e.files.iter_mut()).filter(|f| f.archive.is_none() && f.plaintext.is_none()) {
        seal_file(dir, file, recipients)?;
    }
    Ok(())
}

fn seal_file(dir: &ConfinedDir, file: &mut FileEntry, recipients: &Recipients) -> Result<(), EncryptError> {
    let from = dir.display(&file.path);
    let stored = format!("{}{AGE_SUFFIX}", file.path);
    let seal = || -> io::Result<(u64, String, Plaintext)> {
        let mut input = dir.open_file(&file.path)?;
        let out = super::OutputFile::create(dir, &stored, false)?;
        let mut enc = recipients.encrypt(out)?;
        io::copy(&mut input, &mut enc)?;
        let (out, plaintext) = enc.finish()?;
        let stats = out.finish()?;
        dir.remove_file(&file.path)?;
        Ok((stats.bytes, stats.sha256, plaintext))
    };
    let (bytes, sha256, plaintext) = seal().map_err(|source| {
        let _ = dir.remove_file(&stored);
        EncryptError::File { path: from.clone(), source }
    })?;
    if plaintext.sha256 != file.sha256 {
        // The file changed between its writing and its encryption: nothing else writes there.
        return Err(EncryptError::File { path: from, source: io::Error::other("the file changed while it was encrypted") });
    }
    file.plaintext = Some(plaintext);
    file.path = stored;
    file.bytes = bytes;
    file.sha256 = sha256;
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("cannot read identity file {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error(
        "{path} holds no identity ferry can use: expected an age key file (from `age-keygen`) or an unencrypted OpenSSH ed25519/rsa private key"
    )]
    Invalid { path: PathBuf },
}

/// The secret keys `ferry verify --identity` decrypts with.
pub struct Identities(Vec<Box<dyn age::Identity + Send + Sync>>);

impl Identities {
    /// Reads an age identity file (`AGE-SECRET-KEY-1...` lines) or an OpenSSH private key.
    pub fn read(path: &Path) -> Result<Identities, IdentityError> {
        let text = std::fs::read(path).map_err(|source| IdentityError::Read { path: path.into(), source })?;
        let invalid = || IdentityError::Invalid { path: path.into() };
        if text.starts_with(b"-----BEGIN") {
            let id = age::ssh::Identity::from_buffer(BufReader::new(&text[..]), Some(path.display().to_string())).map_err(|_| invalid())?;
            if !matches!(id, age::ssh::Identity::Unencrypted(_)) {
                return Err(invalid());
            }
            return Ok(Identities(vec![Box::new(id)]));
        }
        let file = age::IdentityFile::from_buffer(BufReader::new(&text[..])).map_err(|_| invalid())?;
        let ids = file.into_identities().map_err(|_| invalid())?;
        if ids.is_empty() {
            return Err(invalid());
        }
        Ok(Identities(ids))
    }

    /// A reader of the plaintext of the age file `input`.
    pub fn decrypt<R: Read>(&self, input: R) -> io::Result<impl Read + use<R>> {
        let decryptor = age::Decryptor::new(input).map_err(|e| io::Error::other(format!("not an age file: {e}")))?;
        decryptor
            .decrypt(self.0.iter().map(|i| i.as_ref() as &dyn age::Identity))
            .map_err(|e| io::Error::other(format!("cannot decrypt with the given identity: {e}")))
    }
}

/// Whether `reader` is at the start of an age file (its header's first line).
pub fn looks_encrypted(reader: &mut impl BufRead) -> io::Result<bool> {
    Ok(reader.fill_buf()?.starts_with(b"age-encryption.org/"))
}
