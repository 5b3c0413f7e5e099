//! Subcommands of the `ferry` command line that live beside `main.rs`.

pub mod plan;
pub mod progress;
pub mod serve;
pub mod snapshots;

/// A byte count for people: 1.5 MiB.
pub fn size(bytes: u64) -> String {
    indicatif::HumanBytes(bytes).to_string()
}

/// A count with thousands separators: 1,234,567.
pub fn count(n: u64) -> String {
    indicatif::HumanCount(n).to_string()
}

/// A catalog time for a table: `2026-03-31 14:30:22` (UTC).
pub fn short_time(t: &str) -> String {
    t.get(..19).map(|s| s.replace('T', " ")).unwrap_or_else(|| t.into())
}
