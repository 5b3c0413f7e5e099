//! Subcommands of the `ferry` command line that live beside `main.rs`.

pub mod keys;
pub mod plan;
pub mod plugin_test;
pub mod progress;
pub mod scaffold;
pub mod schedules;
pub mod serve;
pub mod shards;
pub mod snapshots;

/// A byte count for people: 1.5 MiB.
pub fn size(bytes: u64) -> String {
    indicatif::HumanBytes(bytes).to_string()
}

/// A count with thousands separators: 1,234,567.
pub fn count(n: u64) -> String {
    indicatif::HumanCount(n).to_string()
}

/// A path for people: relative to the current directory when it is under it, with `..`
/// resolved (`examples/../out/ID` prints as `out/ID`); as given when it cannot be resolved.
pub fn clean_path(path: &std::path::Path) -> std::path::PathBuf {
    let Ok(full) = std::fs::canonicalize(path) else { return path.to_path_buf() };
    let here = std::env::current_dir().and_then(std::fs::canonicalize);
    match here.as_deref().map(|here| full.strip_prefix(here)) {
        Ok(Ok(relative)) if !relative.as_os_str().is_empty() => relative.to_path_buf(),
        _ => full,
    }
}

/// A catalog time for a table: `2026-03-31 14:30:22` (UTC).
pub fn short_time(t: &str) -> String {
    t.get(..19).map(|s| s.replace('T', " ")).unwrap_or_else(|| t.into())
}

/// Text from a job or a catalog, safe to print on a terminal: control characters (ANSI
/// escapes, newlines, carriage returns) are shown escaped (`\u{1b}`, `\n`) instead of
/// steering the terminal or faking extra lines.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return s.into();
    }
    s.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect::<String>().into()
}

/// Lets a closed stdout end the process quietly, as it ends `cat` or `ls`: Rust ignores
/// SIGPIPE, so `ferry snapshots list | head -1` made the next `println!` panic. Only for
/// commands that just print; a run keeps SIGPIPE ignored and reports failed writes.
pub fn quiet_on_closed_stdout() {
    // SAFETY: restoring a signal's default disposition, before any other thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
