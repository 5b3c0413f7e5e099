//! Tar parts, ION style: `snapshot_tables_part1_2026-03-31-143022.tar`, ... A part holds
//! whole files only (a file larger than the cap gets a part of its own), headers are
//! deterministic (mode 0644, uid/gid 0, no user names, mtime = the snapshot's as-of
//! time), and every part ends with its end-of-archive blocks. Files stream from the
//! staging directory into the part and are removed once packed, so disk use stays near
//! one copy and memory stays flat.

use std::fs::File;
use std::io;
use std::path::Path;

use super::{FileStats, OutputFile};

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
    pub stats: FileStats,
    /// Member names, in order.
    pub members: Vec<String>,
}

/// Packs `files` (names in `dir`, in this order) into parts of at most `max_bytes`
/// named `snapshot_{kind}_part{N}_{stamp}.tar`.
pub fn pack(dir: &Path, files: &[String], kind: &str, stamp: &str, max_bytes: u64, mtime: u64) -> io::Result<Vec<Part>> {
    let mut parts = Vec::new();
    let mut current: Option<(tar::Builder<OutputFile>, u64, Vec<String>)> = None;
    let finish = |(builder, _, members): (tar::Builder<OutputFile>, u64, Vec<String>), parts: &mut Vec<Part>| -> io::Result<()> {
        let stats = builder.into_inner()?.finish()?;
        let number = parts.len() as u32 + 1;
        let name = stats.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        parts.push(Part { name, number, stats, members });
        Ok(())
    };
    for name in files {
        let path = dir.join(name);
        let file = File::open(&path)?;
        let size = file.metadata()?.len();
        let needed = member_bytes(size);
        if let Some((_, used, _)) = &current
            && *used > 0
            && used + needed + END_BYTES > max_bytes
        {
            finish(current.take().expect("checked"), &mut parts)?;
        }
        if current.is_none() {
            let part_name = format!("snapshot_{kind}_part{}_{stamp}.tar", parts.len() + 1);
            current = Some((tar::Builder::new(OutputFile::create(&dir.join(part_name), false)?), 0, Vec::new()));
        }
        let (builder, used, members) = current.as_mut().expect("opened above");
        let mut header = tar::Header::new_ustar();
        header.set_path(name)?;
        header.set_size(size);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(mtime);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        builder.append(&header, file)?;
        *used += needed;
        members.push(name.clone());
        std::fs::remove_file(&path)?;
    }
    if let Some(last) = current.take() {
        finish(last, &mut parts)?;
    }
    Ok(parts)
}
