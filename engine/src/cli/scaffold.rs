//! `ferry plugins new NAME`: a plugin project outside ferry's tree, built with the kit
//! (by path to this checkout, or `--kit`), a unit test on the kit's mock host, a job
//! exporting it from the demo platform, and its README.

use std::path::{Path, PathBuf};

/// Why no project was written.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error("{0:?} is not a plugin name; use a letter, then letters, digits, _ or - (like `balances-per-currency`)")]
    BadName(String),
    #[error("language {0:?} has no scaffold yet; use `--lang rust`")]
    Language(String),
    #[error("{} already exists; choose another name or `--dir`", .0.display())]
    Exists(PathBuf),
    #[error("the plugin kit is not at {}; pass `--kit PATH/TO/ferry/plugins/pdk`", .0.display())]
    NoKit(PathBuf),
    #[error("cannot write {}: {source}", .path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

/// The kit of the checkout this binary was built from.
pub fn default_kit() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins").join("pdk")
}

/// Writes the project for plugin `name` into `dir` (which must not exist); returns its files.
pub fn new(name: &str, lang: &str, dir: &Path, kit: &Path) -> Result<Vec<PathBuf>, ScaffoldError> {
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && name.len() <= 64;
    if !valid {
        return Err(ScaffoldError::BadName(name.into()));
    }
    if lang != "rust" {
        return Err(ScaffoldError::Language(lang.into()));
    }
    let kit = std::fs::canonicalize(kit).map_err(|_| ScaffoldError::NoKit(kit.into()))?;
    if !kit.join("Cargo.toml").is_file() {
        return Err(ScaffoldError::NoKit(kit));
    }
    if dir.exists() {
        return Err(ScaffoldError::Exists(dir.into()));
    }
    let lib = name.replace('-', "_");
    let fill =
        |t: &str| t.replace("@NAME@", name).replace("@CRATE@", name).replace("@LIB@", &lib).replace("@KIT@", &kit.display().to_string());
    let files = [
        ("Cargo.toml", include_str!("scaffold/Cargo.toml.in")),
        ("src/lib.rs", include_str!("scaffold/lib.rs.in")),
        ("job.toml", include_str!("scaffold/job.toml.in")),
        ("README.md", include_str!("scaffold/README.md.in")),
        (".gitignore", include_str!("scaffold/gitignore.in")),
    ];
    let mut written = Vec::new();
    for (file, template) in files {
        let path = dir.join(file);
        let io = |source| ScaffoldError::Io { path: path.clone(), source };
        std::fs::create_dir_all(path.parent().unwrap_or(dir)).map_err(io)?;
        std::fs::write(&path, fill(template)).map_err(io)?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_languages_and_existing_dirs_are_checked() {
        let dir = std::env::temp_dir().join(format!("ferry-scaffold-{}", std::process::id()));
        let kit = default_kit();
        assert!(matches!(new("1x", "rust", &dir, &kit), Err(ScaffoldError::BadName(_))));
        assert!(matches!(new("x", "cobol", &dir, &kit), Err(ScaffoldError::Language(_))));
        let files = new("my-plugin", "rust", &dir, &kit).unwrap();
        assert_eq!(files.len(), 5);
        let cargo = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        assert!(cargo.contains("name = \"my-plugin\"") && cargo.contains(&kit.canonicalize().unwrap().display().to_string()));
        assert!(std::fs::read_to_string(dir.join("job.toml")).unwrap().contains("release/my_plugin.wasm"));
        assert!(matches!(new("my-plugin", "rust", &dir, &kit), Err(ScaffoldError::Exists(_))));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
