//! `ferry plugins new NAME [--lang rust|python|js]`: a plugin project outside ferry's tree
//! that builds and exports the demo platform out of the box, with its README and a job.
//! A Rust project builds with the kit (by path to this checkout, or `--kit`) and has a
//! unit test on the kit's mock host; a Python or JavaScript one carries ferry's WIT
//! (embedded in this binary) and builds with componentize-py or componentize-js, at the
//! versions ferry is tested with.

use std::path::{Path, PathBuf};

/// Why no project was written.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error("{0:?} is not a plugin name; use a letter, then letters, digits, _ or - (like `balances-per-currency`)")]
    BadName(String),
    #[error("language {0:?} has no scaffold; use `--lang rust`, `--lang python` or `--lang js`")]
    Language(String),
    #[error("{} already exists; choose another name or `--dir`", .0.display())]
    Exists(PathBuf),
    #[error("the plugin kit is not at {}; pass `--kit PATH/TO/ferry/plugins/pdk`", .0.display())]
    NoKit(PathBuf),
    #[error("cannot write {}: {source}", .path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

/// A language with a scaffold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Rust,
    Python,
    Js,
}

impl std::str::FromStr for Lang {
    type Err = ScaffoldError;

    fn from_str(s: &str) -> Result<Self, ScaffoldError> {
        match s.to_ascii_lowercase().as_str() {
            "rust" | "rs" => Ok(Lang::Rust),
            "python" | "py" => Ok(Lang::Python),
            "js" | "javascript" => Ok(Lang::Js),
            _ => Err(ScaffoldError::Language(s.into())),
        }
    }
}

/// ferry's contract and the blob-free world the componentize tools build against (they
/// import every interface of their world; importing `blobs` makes an attachments plugin).
const FERRY_WIT: &str = include_str!("../../../wit/ferry.wit");
const COMPUTING_WIT: &str = include_str!("../../../examples/plugin-python-monthly/wit/computing.wit");
/// The tool versions ferry's tests build with: the scaffolds pin the same.
const COMPONENTIZE_PY_PIN: &str = include_str!("../../../tests/py/componentize.txt");
const COMPONENTIZE_JS_PIN: &str = include_str!("../../../examples/plugin-js-monthly/package.json");

/// componentize-py's pinned version (`componentize-py==X` in tests/py/componentize.txt).
pub fn componentize_py_version() -> &'static str {
    COMPONENTIZE_PY_PIN.lines().find_map(|l| l.trim().strip_prefix("componentize-py==")).unwrap_or_default()
}

/// componentize-js's pinned version (the JavaScript example's package.json).
pub fn componentize_js_version() -> &'static str {
    let after = COMPONENTIZE_JS_PIN.split_once("\"@bytecodealliance/componentize-js\"").map_or("", |(_, rest)| rest);
    after.split('"').nth(1).unwrap_or_default()
}

/// The kit of the checkout this binary was built from.
pub fn default_kit() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins").join("pdk")
}

/// The project's files: path in the project, template.
fn templates(lang: Lang) -> Vec<(&'static str, String)> {
    let job = include_str!("scaffold/job.toml.in");
    let wit = || format!("{FERRY_WIT}\n{COMPUTING_WIT}");
    match lang {
        Lang::Rust => vec![
            ("Cargo.toml", include_str!("scaffold/rust/Cargo.toml.in").into()),
            ("src/lib.rs", include_str!("scaffold/rust/lib.rs.in").into()),
            ("job.toml", job.into()),
            ("README.md", include_str!("scaffold/rust/README.md.in").into()),
            (".gitignore", include_str!("scaffold/rust/gitignore.in").into()),
        ],
        Lang::Python => vec![
            ("app.py", include_str!("scaffold/python/app.py.in").into()),
            ("build.py", include_str!("scaffold/python/build.py.in").into()),
            ("wit/ferry.wit", wit()),
            ("job.toml", job.into()),
            ("README.md", include_str!("scaffold/python/README.md.in").into()),
            (".gitignore", include_str!("scaffold/python/gitignore.in").into()),
        ],
        Lang::Js => vec![
            ("app.js", include_str!("scaffold/js/app.js.in").into()),
            ("build.mjs", include_str!("scaffold/js/build.mjs.in").into()),
            ("package.json", include_str!("scaffold/js/package.json.in").into()),
            ("wit/ferry.wit", wit()),
            ("job.toml", job.into()),
            ("README.md", include_str!("scaffold/js/README.md.in").into()),
            (".gitignore", include_str!("scaffold/js/gitignore.in").into()),
        ],
    }
}

/// The component a project builds, relative to it.
pub fn component_path(lang: Lang, name: &str) -> String {
    let lib = name.replace('-', "_");
    match lang {
        Lang::Rust => format!("target/wasm32-wasip2/release/{lib}.wasm"),
        Lang::Python | Lang::Js => format!("build/{lib}.wasm"),
    }
}

/// The command that builds a project's component, run in the project.
pub fn build_command(lang: Lang) -> &'static str {
    match lang {
        Lang::Rust => "cargo build --target wasm32-wasip2 --release",
        Lang::Python => "python3 build.py",
        Lang::Js => "npm install --ignore-scripts && npm run build",
    }
}

/// The build tool, when it is not on PATH, and how to install it: `(tool, how)`.
pub fn missing_tool(lang: Lang) -> Option<(&'static str, String)> {
    let (tool, how) = match lang {
        Lang::Rust => ("cargo", "install Rust from https://rustup.rs, then `rustup target add wasm32-wasip2`".to_string()),
        Lang::Python => ("componentize-py", format!("install it with `pip install componentize-py=={}`", componentize_py_version())),
        Lang::Js => (
            "npm",
            format!(
                "install Node.js 20 or later with npm; `npm install --ignore-scripts` then fetches componentize-js {}",
                componentize_js_version()
            ),
        ),
    };
    let on_path = std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()));
    (!on_path).then_some((tool, how))
}

/// Writes the project for plugin `name` into `dir` (which must not exist); returns its files.
pub fn new(name: &str, lang: Lang, dir: &Path, kit: &Path) -> Result<Vec<PathBuf>, ScaffoldError> {
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && name.len() <= 64;
    if !valid {
        return Err(ScaffoldError::BadName(name.into()));
    }
    let kit = if lang == Lang::Rust { checked_kit(kit)? } else { PathBuf::new() };
    if dir.exists() {
        return Err(ScaffoldError::Exists(dir.into()));
    }
    let lib = name.replace('-', "_");
    let fill = |t: &str| {
        t.replace("@NAME@", name)
            .replace("@CRATE@", name)
            .replace("@LIB@", &lib)
            .replace("@KIT@", &kit.display().to_string())
            .replace("@BUILD@", build_command(lang))
            .replace("@WASM@", &component_path(lang, name))
            .replace("@COMPONENTIZE_PY_VERSION@", componentize_py_version())
            .replace("@COMPONENTIZE_JS_VERSION@", componentize_js_version())
    };
    let mut written = Vec::new();
    for (file, template) in templates(lang) {
        let path = dir.join(file);
        let io = |source| ScaffoldError::Io { path: path.clone(), source };
        std::fs::create_dir_all(path.parent().unwrap_or(dir)).map_err(io)?;
        std::fs::write(&path, fill(&template)).map_err(io)?;
        written.push(path);
    }
    Ok(written)
}

fn checked_kit(kit: &Path) -> Result<PathBuf, ScaffoldError> {
    let kit = std::fs::canonicalize(kit).map_err(|_| ScaffoldError::NoKit(kit.into()))?;
    if !kit.join("Cargo.toml").is_file() {
        return Err(ScaffoldError::NoKit(kit));
    }
    Ok(kit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(tag: &str) -> PathBuf {
        std::env::temp_dir().join(format!("ferry-scaffold-{tag}-{}", std::process::id()))
    }

    #[test]
    fn names_languages_and_existing_dirs_are_checked() {
        let dir = temp("rust");
        let kit = default_kit();
        assert!(matches!(new("1x", Lang::Rust, &dir, &kit), Err(ScaffoldError::BadName(_))));
        assert!(matches!("cobol".parse::<Lang>(), Err(ScaffoldError::Language(_))));
        assert_eq!("JavaScript".parse::<Lang>().unwrap(), Lang::Js);
        let files = new("my-plugin", Lang::Rust, &dir, &kit).unwrap();
        assert_eq!(files.len(), 5);
        let cargo = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        assert!(cargo.contains("name = \"my-plugin\"") && cargo.contains(&kit.canonicalize().unwrap().display().to_string()));
        assert!(std::fs::read_to_string(dir.join("job.toml")).unwrap().contains("release/my_plugin.wasm"));
        assert!(matches!(new("my-plugin", Lang::Rust, &dir, &kit), Err(ScaffoldError::Exists(_))));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn python_and_js_projects_carry_the_wit_and_pinned_tools_and_need_no_kit() {
        assert_eq!((componentize_py_version(), componentize_js_version()), ("0.25.1", "0.23.0"));
        for (lang, tag, pin) in [(Lang::Python, "py", "componentize-py==0.25.1"), (Lang::Js, "js", "\"0.23.0\"")] {
            let dir = temp(tag);
            let files = new("my-plugin", lang, &dir, Path::new("/nonexistent")).unwrap();
            let all: String = files.iter().map(|f| std::fs::read_to_string(f).unwrap()).collect();
            for placeholder in ["@NAME@", "@LIB@", "@KIT@", "@BUILD@", "@WASM@", "@COMPONENTIZE_PY_VERSION@", "@COMPONENTIZE_JS_VERSION@"] {
                assert!(!all.contains(placeholder), "{tag}: {placeholder} was left");
            }
            assert!(all.contains("world computing-plugin") && all.contains("package ferry:plugin@0.2.0"));
            assert!(all.contains(pin), "{tag}: {pin} missing");
            assert!(all.contains("\"my_plugin\"") && all.contains("\"my-plugin\""));
            assert!(std::fs::read_to_string(dir.join("job.toml")).unwrap().contains("plugin = \"build/my_plugin.wasm\""));
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }
}
