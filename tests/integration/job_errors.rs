//! Bad job files: fixtures under `tests/fixtures/jobs/` as input/expected pairs. Each
//! `NAME.toml` must make `ferry run` exit non-zero with every line of `NAME.expected`
//! somewhere in its error output (`{dir}` stands for the fixture's directory).

use std::path::Path;

use crate::common::{assert_nothing_published, ferry, stderr};

#[test]
fn every_bad_job_fixture_fails_with_its_message() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/jobs");
    let work = tempfile::tempdir().unwrap();
    // The fixtures' good source: an empty file is enough, validation stops earlier.
    std::fs::write(work.path().join("platform.db"), b"").unwrap();
    let mut checked = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&fixtures).unwrap().flatten().map(|e| e.path()).collect();
    entries.sort();
    for toml in entries.iter().filter(|p| p.extension().is_some_and(|e| e == "toml")) {
        let name = toml.file_stem().unwrap().to_string_lossy().to_string();
        let expected = std::fs::read_to_string(toml.with_extension("expected"))
            .unwrap_or_else(|_| panic!("{name}.toml has no {name}.expected"));
        let job = work.path().join(format!("{name}.toml"));
        std::fs::copy(toml, &job).unwrap();
        let out = ferry().arg("run").arg(&job).output().unwrap();
        let err = stderr(&out);
        assert!(!out.status.success(), "{name}: ferry run succeeded on a bad job");
        assert_eq!(out.status.code(), Some(1), "{name}: exit status");
        for line in expected.lines().filter(|l| !l.trim().is_empty()) {
            let line = line.replace("{dir}", &work.path().display().to_string());
            assert!(err.contains(&line), "{name}: expected {line:?} in:\n{err}");
        }
        assert_nothing_published(&work.path().join("out"));
        checked += 1;
    }
    assert!(checked >= 8, "only {checked} fixtures found");
}
