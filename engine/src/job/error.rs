//! Job file errors: the file, the line and column, the key, what is wrong, how to fix it.

use std::fmt;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("cannot read job file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("job file {path} is {kind}; give the path of a TOML job file")]
    NotAFile { path: PathBuf, kind: &'static str },
    #[error("job file {path} is larger than {max} bytes; a job file is a page of settings, check the path")]
    TooLarge { path: PathBuf, max: u64 },
    #[error("job file {path} is not UTF-8 text (invalid byte at offset {offset}); save it as UTF-8")]
    NotUtf8 { path: PathBuf, offset: usize },
    #[error("{0}")]
    Invalid(Box<Invalid>),
}

/// One problem in a job file.
#[derive(Debug)]
pub struct Invalid {
    pub path: PathBuf,
    /// 1-based line and column, when the problem has a place in the file.
    pub at: Option<(usize, usize)>,
    /// Dotted key, such as `output.gzip` or `resource[1].name`.
    pub key: String,
    pub message: String,
    pub help: Option<String>,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some((line, col)) = self.at {
            write!(f, ":{line}:{col}")?;
        }
        if self.key.is_empty() {
            write!(f, ": {}", self.message)?;
        } else {
            write!(f, ": `{}`: {}", self.key, self.message)?;
        }
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

impl JobError {
    pub(crate) fn at(path: &std::path::Path, text: &str, span: Option<std::ops::Range<usize>>, key: &str, message: impl Into<String>, help: Option<String>) -> Self {
        JobError::Invalid(Box::new(Invalid {
            path: path.into(),
            at: span.map(|s| line_col(text, s.start)),
            key: key.into(),
            message: message.into(),
            help,
        }))
    }

    /// The problem, when it is one in the file's contents.
    pub fn invalid(&self) -> Option<&Invalid> {
        match self {
            JobError::Invalid(i) => Some(i),
            _ => None,
        }
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map(|l| l.chars().count()).unwrap_or(0) + 1;
    (line, col)
}
