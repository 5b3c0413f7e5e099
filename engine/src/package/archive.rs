//! Tar parts, ION style: `snapshot_tables_part1_2026-03-31-143022.tar`, ... A part holds
//! whole files only (a file larger than the cap gets a part of its own), headers are
//! deterministic (mode 0644, uid/gid 0, no user names, mtime = the snapshot's as-of
//! time), and every part ends with its end-of-archive blocks. Files stream from the
//! staging directory into the part and are removed once packed, so disk use stays near
//! one copy and memory stays flat.
//!
//! Where a part goes is a [`PartSink`]: a file beside the staging files ([`PartDir`]) or
//! an upload that never touches local disk (`s3::PartUploads`).

use std::io::{self, Write};

use super::{ConfinedDir, OutputFile};

/// Bytes a member takes in a tar: a header block and its data padded to 512.
fn member_bytes(size: u64) -> u64 {
    512 + size.div_ceil(512) * 512
}

/// The end-of-archive marker: two zero blocks.
const END_BYTES: u64 = 1024;

/// One finished part.
#[derive(Debug, Clone)]
pub struct Part {
    pub name: String,
    pub number: u32,
    pub bytes: u64,
    pub sha256: String,
    /// Member names, in order.
    pub members: Vec<String>,
    /// What the part held before the sink encrypted it (`[output] encrypt_to`).
    pub plaintext: Option<super::Plaintext>,
}

/// Where parts are written. `finish` makes a part whole (synced, or its upload
/// completed) and reports its size and sha256; a writer dropped unfinished is abandoned.
pub trait PartSink {
    type Writer: Write;
    /// Why the sink failed. A staged file's I/O error (reading a member) converts into it.
    type Error: From<io::Error>;

    fn create(&mut self, name: &str) -> Result<Self::Writer, Self::Error>;
    fn finish(&mut self, writer: Self::Writer) -> Result<(u64, String), Self::Error>;

    /// The sink's own error behind a write the tar writer saw fail. `Write` can only
    /// return an `io::Error`, so a writer that failed for a reason of its own (an upload)
    /// records that reason with its sink, and this takes it back; otherwise the I/O
    /// error is the reason.
    fn write_failed(&mut self, e: io::Error) -> Self::Error {
        e.into()
    }

    /// The name a part named `name` is stored under (an encrypting sink adds `.age`).
    fn part_name(&self, name: &str) -> String {
        name.to_string()
    }

    /// The plaintext's size and sha256 of the part just finished, when the sink
    /// transformed it (encrypted it) on the way.
    fn take_plaintext(&mut self) -> Option<super::Plaintext> {
        None
    }
}

/// Parts as files in a directory.
pub struct PartDir(pub ConfinedDir);

impl PartSink for PartDir {
    type Writer = OutputFile;
    type Error = io::Error;

    fn create(&mut self, name: &str) -> io::Result<OutputFile> {
        OutputFile::create(&self.0, name, false)
    }

    fn finish(&mut self, writer: OutputFile) -> io::Result<(u64, String)> {
        let stats = writer.finish()?;
        Ok((stats.bytes, stats.sha256))
    }
}

/// Packs `files` (names in `dir`, in this order) into parts of at most `max_bytes`
/// named `snapshot_{kind}_part{N}_{stamp}.tar`, handed to `sink`.
pub fn pack<S: PartSink>(
    dir: &ConfinedDir,
    files: &[String],
    kind: &str,
    stamp: &str,
    max_bytes: u64,
    mtime: u64,
    sink: &mut S,
) -> Result<Vec<Part>, S::Error> {
    let mut packer = Packer::new(kind, stamp, max_bytes, mtime);
    for name in files {
        packer.add(sink, dir, name)?;
    }
    packer.finish(sink)
}

/// Fills parts one file at a time, so files can be packed as they are finished.
pub struct Packer<W: Write> {
    kind: String,
    stamp: String,
    max_bytes: u64,
    mtime: u64,
    parts: Vec<Part>,
    current: Option<Open<W>>,
}

impl<W: Write> Packer<W> {
    pub fn new(kind: &str, stamp: &str, max_bytes: u64, mtime: u64) -> Self {
        Packer { kind: kind.into(), stamp: stamp.into(), max_bytes, mtime, parts: Vec::new(), current: None }
    }

    /// Appends `dir/name` as member `name`, then removes the file.
    pub fn add<S: PartSink<Writer = W>>(&mut self, sink: &mut S, dir: &ConfinedDir, name: &str) -> Result<(), S::Error> {
        let file = dir.open_file(name)?;
        let size = file.metadata()?.len();
        self.add_member(sink, name, size, file)?;
        Ok(dir.remove_file(name)?)
    }

    /// Appends member `name` of `size` bytes read from `data` (closing the part first
    /// when it would overflow).
    pub fn add_member<S: PartSink<Writer = W>>(
        &mut self,
        sink: &mut S,
        name: &str,
        size: u64,
        data: impl io::Read,
    ) -> Result<(), S::Error> {
        let needed = member_bytes(size);
        if let Some(open) = &self.current
            && open.used > 0
            && open.used + needed + END_BYTES > self.max_bytes
        {
            let number = self.parts.len() as u32 + 1;
            self.parts.push(self.current.take().expect("checked").finish(sink, number)?);
        }
        let open = match &mut self.current {
            Some(open) => open,
            None => {
                let name = sink.part_name(&super::layout::part_name(&self.kind, self.parts.len() + 1, &self.stamp));
                self.current.insert(Open { builder: tar::Builder::new(sink.create(&name)?), name, used: 0, members: Vec::new() })
            }
        };
        let mut header = tar::Header::new_ustar();
        header.set_path(name)?;
        header.set_size(size);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(self.mtime);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        // A member shorter than its header says would shift every later one: counted.
        let mut data = Counted { inner: data.take(size), bytes: 0 };
        open.builder.append(&header, &mut data).map_err(|e| sink.write_failed(e))?;
        if data.bytes != size {
            let why = format!("staged member {name} ended after {} of its {size} bytes", data.bytes);
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, why).into());
        }
        open.used += needed;
        open.members.push(name.into());
        Ok(())
    }

    /// Closes the last part; returns every part, in order.
    pub fn finish<S: PartSink<Writer = W>>(mut self, sink: &mut S) -> Result<Vec<Part>, S::Error> {
        if let Some(last) = self.current.take() {
            let number = self.parts.len() as u32 + 1;
            self.parts.push(last.finish(sink, number)?);
        }
        Ok(self.parts)
    }
}

/// A reader that counts what it gave.
struct Counted<R> {
    inner: R,
    bytes: u64,
}

impl<R: io::Read> io::Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
}

/// A part being filled.
struct Open<W: Write> {
    builder: tar::Builder<W>,
    name: String,
    used: u64,
    members: Vec<String>,
}

impl<W: Write> Open<W> {
    fn finish<S: PartSink<Writer = W>>(self, sink: &mut S, number: u32) -> Result<Part, S::Error> {
        // `into_inner` writes the end-of-archive blocks.
        let writer = self.builder.into_inner().map_err(|e| sink.write_failed(e))?;
        let (bytes, sha256) = sink.finish(writer)?;
        Ok(Part { name: self.name, number, bytes, sha256, members: self.members, plaintext: sink.take_plaintext() })
    }
}
