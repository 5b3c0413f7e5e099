//! Attachments staged for tar parts: one file per resource holding every member back to
//! back, each after a small header naming it (path and size), instead of a staged file
//! per member. Creating and deleting one small file per attachment version cost more
//! than copying its bytes (measured: 7,954 versions, 62% of the run's CPU in the
//! filesystem's inode allocation). The packer reads the spool in order and checks each
//! header against the member it expects, so a spool out of step with the manifest is an
//! error, never a member with another member's bytes.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};

use super::ConfinedDir;

/// The spool's name inside a resource's attachments folder (a dot name: no member has one).
pub const SPOOL: &str = ".spool";

/// Longest member path the header holds (tar's ustar limit is far below it).
const MAX_PATH: u32 = 4096;

/// Appends members to a spool.
pub struct SpoolWriter {
    out: BufWriter<File>,
    len: u64,
}

impl SpoolWriter {
    /// Creates `name` in `dir` (a new file: a spool is never appended to across runs).
    pub fn create(dir: &ConfinedDir, name: &str) -> io::Result<Self> {
        Ok(SpoolWriter { out: BufWriter::with_capacity(1 << 20, dir.create(name)?), len: 0 })
    }

    /// Starts member `path` of `size` bytes; returns where it starts, for [`Self::rollback`].
    pub fn begin(&mut self, path: &str, size: u64) -> io::Result<u64> {
        let start = self.len;
        let len = u32::try_from(path.len()).ok().filter(|&n| n <= MAX_PATH).ok_or_else(|| io::Error::other("member path too long"))?;
        self.out.write_all(&len.to_le_bytes())?;
        self.out.write_all(path.as_bytes())?;
        self.out.write_all(&size.to_le_bytes())?;
        self.len += 4 + path.len() as u64 + 8;
        Ok(start)
    }

    /// Appends bytes of the member begun last.
    pub fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.out.write_all(data)?;
        self.len += data.len() as u64;
        Ok(())
    }

    /// Drops everything from `start` on (a member whose bytes turned out wrong).
    pub fn rollback(&mut self, start: u64) -> io::Result<()> {
        self.out.flush()?;
        let file = self.out.get_mut();
        file.set_len(start)?;
        file.seek(SeekFrom::Start(start))?;
        self.len = start;
        Ok(())
    }

    /// Writes out what is buffered; the spool is read back by the packer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Reads a spool's members in order.
pub struct SpoolReader {
    input: BufReader<File>,
}

impl SpoolReader {
    pub fn open(dir: &ConfinedDir, name: &str) -> io::Result<Self> {
        Ok(SpoolReader { input: BufReader::with_capacity(1 << 20, dir.open_file(name)?) })
    }

    /// The next member, which must be `path` of `size` bytes: its bytes, to be read whole
    /// before the next call.
    pub fn next_member(&mut self, path: &str, size: u64) -> io::Result<io::Take<&mut BufReader<File>>> {
        let mut len = [0u8; 4];
        self.input.read_exact(&mut len)?;
        let len = u32::from_le_bytes(len);
        if len > MAX_PATH {
            return Err(out_of_step(path, "a header longer than any path"));
        }
        let mut name = vec![0u8; len as usize];
        self.input.read_exact(&mut name)?;
        let mut stored = [0u8; 8];
        self.input.read_exact(&mut stored)?;
        if name != path.as_bytes() || u64::from_le_bytes(stored) != size {
            let found = format!("{} of {} bytes", String::from_utf8_lossy(&name), u64::from_le_bytes(stored));
            return Err(out_of_step(path, &found));
        }
        Ok((&mut self.input).take(size))
    }

    /// Whether every member was read.
    pub fn at_end(&mut self) -> io::Result<bool> {
        Ok(self.input.fill_buf()?.is_empty())
    }
}

fn out_of_step(path: &str, found: &str) -> io::Error {
    io::Error::other(format!("the staged attachments are out of step: expected {path}, found {found}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_come_back_in_order_and_a_rolled_back_one_is_gone() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ConfinedDir::open(tmp.path()).unwrap();
        let mut w = SpoolWriter::create(&dir, SPOOL).unwrap();
        w.begin("a/1", 3).unwrap();
        w.write_all(b"one").unwrap();
        let bad = w.begin("a/2", 5).unwrap();
        w.write_all(b"wrong bytes").unwrap();
        w.rollback(bad).unwrap();
        w.begin("b/1", 0).unwrap();
        w.begin("b/2", 2).unwrap();
        w.write_all(b"ok").unwrap();
        w.flush().unwrap();

        let mut r = SpoolReader::open(&dir, SPOOL).unwrap();
        for (path, want) in [("a/1", &b"one"[..]), ("b/1", b""), ("b/2", b"ok")] {
            let mut got = Vec::new();
            r.next_member(path, want.len() as u64).unwrap().read_to_end(&mut got).unwrap();
            assert_eq!(got, want, "{path}");
        }
        assert!(r.at_end().unwrap());

        let mut r = SpoolReader::open(&dir, SPOOL).unwrap();
        let e = r.next_member("a/2", 5).unwrap_err().to_string();
        assert!(e.contains("expected a/2, found a/1 of 3 bytes"), "{e}");
    }
}
