//! Property tests of the job parser: arbitrary TOML-ish text and damaged valid jobs never
//! panic, every line and column reported lies inside the file, and a wrong value or an
//! unknown key is reported at its own line with its key. (`fuzz/` runs the parser under
//! libFuzzer for longer.)

use std::path::PathBuf;
use std::sync::OnceLock;

use proptest::prelude::*;

use super::{Job, JobError, JobFile};

/// A directory with the files a job refers to, so `build`'s checks on disk can pass.
fn job_path() -> &'static PathBuf {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("platform.db"), b"").unwrap();
        std::fs::write(dir.path().join("plugin.wasm"), b"").unwrap();
        std::fs::create_dir(dir.path().join("blobs")).unwrap();
        let path = dir.path().join("job.toml");
        (dir, path)
    })
    .1
}

const VALID: &str = r#"[snapshot]
name = "nightly"
description = "fuzzed"
as_of = "2026-03-31T14:30:22Z"

[source]
sqlite = "platform.db"
blobs = "blobs"

[output]
dir = "out"
format = "avro"
gzip = true
codec = "deflate"
on_error = "continue"
max_records_per_file = 1000

[limits]
memory = "256MiB"
time = "30m"

[[resource]]
name = "users"
memory_limit = "64MiB"
time_limit = "90s"

[[resource]]
name = "custom"
plugin = "plugin.wasm"
months = 12
options = { key = "value" }
"#;

fn load(text: &str) -> Result<Job, JobError> {
    let path = job_path();
    JobFile::parse(path, text).and_then(|f| f.build(path, text))
}

/// Never a panic; an error renders, and its line and column are inside `text`.
fn check(text: &str) -> Result<Job, JobError> {
    let result = load(text);
    if let Err(e) = &result {
        let shown = e.to_string();
        assert!(!shown.is_empty());
        if let Some((line, col)) = e.invalid().and_then(|i| i.at) {
            let lines: Vec<&str> = text.split('\n').collect();
            assert!((1..=lines.len()).contains(&line), "line {line} of {} in {shown}", lines.len());
            let width = lines[line - 1].chars().count();
            assert!((1..=width + 1).contains(&col), "column {col} of {width} in {shown}");
        }
    }
    result
}

const TOKENS: &[&str] = &[
    "[snapshot]", "[source]", "[source.demo]", "[output]", "[limits]", "[[resource]]", "[resource]", "name", "sqlite",
    "dir", "format", "gzip", "codec", "months", "memory", "time", "retention", "as_of", "plugin", "options", "scale",
    "part_size", "price_per_gib", "max_records_per_file", " = ", "=", "\n", " ", "\"", "'", "\"\"\"", "{", "}", "[",
    "]", ",", ".", "#", "\"platform.db\"", "\"plugin.wasm\"", "\"users\"", "\"out\"", "\"csv\"", "\"all\"", "true",
    "0", "-1", "12", "1e999", "nan", "inf", "18446744073709551616", "\"18446744073709551615d\"",
    "\"18446744073709551615TiB\"", "\"0001-01-01T00:00:00Z\"", "\"2026-13-01T00:00:00Z\"", "é", "日", "\u{0}", "\r\n", "\t",
];

/// (line of `VALID` to replace, replacement, key the error must name).
const WRONG: &[(&str, &str, &str)] = &[
    ("name = \"nightly\"", "name = 5", "snapshot.name"),
    ("as_of = \"2026-03-31T14:30:22Z\"", "as_of = \"yesterday\"", "snapshot.as_of"),
    ("sqlite = \"platform.db\"", "sqlite = \"missing.db\"", "source.sqlite"),
    ("gzip = true", "gzip = \"yes\"", "output.gzip"),
    ("format = \"avro\"", "format = \"xml\"", "output.format"),
    ("codec = \"deflate\"", "codec = \"lz4\"", "output.codec"),
    ("memory = \"256MiB\"", "memory = \"18446744073709551615TiB\"", "limits.memory"),
    ("time = \"30m\"", "time = 30", "limits.time"),
    ("memory_limit = \"64MiB\"", "memory_limit = \"lots\"", "resource[0].memory_limit"),
    ("time_limit = \"90s\"", "time_limit = \"18446744073709551615m\"", "resource[0].time_limit"),
    ("plugin = \"plugin.wasm\"", "plugin = \"nowhere.wasm\"", "resource[1].plugin"),
    ("months = 12", "months = 5", "resource[1].months"),
    ("name = \"custom\"", "name = \"users\"", "resource[1].name"),
];

fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l == needle).expect("the line is in VALID") + 1
}

#[test]
fn the_valid_job_builds() {
    let job = check(VALID).unwrap();
    assert_eq!(job.resources.len(), 2);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    /// Text assembled from the job file's own vocabulary.
    #[test]
    fn toml_ish_text_never_panics(tokens in proptest::collection::vec(0..TOKENS.len(), 0..60)) {
        let text: String = tokens.iter().map(|&t| TOKENS[t]).collect();
        let _ = check(&text);
    }

    /// A valid job with characters inserted, removed or replaced.
    #[test]
    fn damaged_valid_jobs_never_panic(edits in proptest::collection::vec((any::<usize>(), 0..3u8, 0..TOKENS.len()), 1..5)) {
        let mut text: Vec<char> = VALID.chars().collect();
        for (at, op, token) in edits {
            let at = at % (text.len() + 1);
            match op {
                0 => { text.splice(at..at, TOKENS[token].chars()); }
                1 if at < text.len() => { text.remove(at); }
                _ => text.truncate(at),
            }
        }
        let _ = check(&text.into_iter().collect::<String>());
    }

    /// A wrong value is reported at its own line and names its key.
    #[test]
    fn a_wrong_value_is_reported_at_its_line(which in 0..WRONG.len()) {
        let (line, replacement, key) = WRONG[which];
        let expected = line_of(VALID, line);
        let text = VALID.replacen(line, replacement, 1);
        let e = check(&text).expect_err("the job has a wrong value");
        let invalid = e.invalid().expect("an error in the file's contents");
        prop_assert_eq!(invalid.at.map(|(l, _)| l), Some(expected), "{}", e);
        prop_assert_eq!(invalid.key.as_str(), key, "{}", e);
    }

    /// An unknown key in any table is reported at its line, with the key named.
    #[test]
    fn an_unknown_key_is_reported_at_its_line(after in 0..VALID.lines().count()) {
        let mut lines: Vec<&str> = VALID.lines().collect();
        // Insert after a line inside a table (headers included), never before the first.
        lines.insert(after + 1, "colour = \"blue\"");
        let text = lines.join("\n");
        let e = check(&text).expect_err("the job has an unknown key");
        let invalid = e.invalid().expect("an error in the file's contents");
        prop_assert_eq!(invalid.at.map(|(l, _)| l), Some(after + 2), "{}", e);
        prop_assert!(e.to_string().contains("colour"), "{}", e);
    }
}
