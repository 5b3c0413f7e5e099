//! The jobs the service may run, and how a request narrows one.
//!
//! A request never edits a job: it can only pick a subset of the job's resources, a
//! window no wider than the job's, and tables or attachments within the job's content.
//! The run gets a derived job file (the job's own TOML with those narrowings applied, its
//! paths made absolute and its output pointed at the service's root); `ferry run` then
//! validates it exactly as any job. Plugin paths, sources and outputs come only from the
//! operator's job file, since a request has no field that could name them.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::job::{Content, Job, JobError, JobFile};
use crate::window::Months;

/// What the service knows of a configured job, read once at start.
#[derive(Debug)]
pub struct ServiceJob {
    pub name: String,
    pub file: PathBuf,
    pub job: Job,
    /// The job file's TOML, as written.
    table: toml::Table,
    pub resources: Vec<ResourceInfo>,
}

/// A resource of a job, with what its plugin said about itself.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ResourceInfo {
    pub name: String,
    /// The plugin has a time window (so `months` applies).
    pub windowed: bool,
    /// The plugin exports attachments (it imports the blob store).
    pub attachments: bool,
    /// The job's own window, when it sets one ("all" otherwise).
    #[serde(skip)]
    pub months: Option<Months>,
}

#[derive(Debug, thiserror::Error)]
pub enum JobsError {
    #[error("job `{name}`: {source}")]
    Job { name: String, source: JobError },
    #[error("job `{name}`: {message}")]
    Plugin { name: String, message: String },
}

/// A request's narrowing of its job (validated by [`ServiceJob::narrow`]).
#[derive(Debug, Clone, Default)]
pub struct Narrowing {
    pub resources: Option<Vec<String>>,
    /// 1, 2, 3, 6, 12, 24 or "all", as the client sent it.
    pub months: Option<serde_json::Value>,
    pub content: Option<Content>,
}

/// Why a narrowing is refused: the field and what is wrong with it.
#[derive(Debug)]
pub struct Refused {
    pub field: &'static str,
    pub message: String,
}

fn refused(field: &'static str, message: String) -> Refused {
    Refused { field, message }
}

impl ServiceJob {
    /// Reads a job file and loads its plugins once (compiled ones come from the cache) to
    /// learn which resources have a window and which export attachments.
    pub fn load(name: &str, file: &Path, runtime: &crate::runtime::Runtime) -> Result<ServiceJob, JobsError> {
        let job = Job::load(file).map_err(|source| JobsError::Job { name: name.into(), source })?;
        let text = std::fs::read_to_string(file)
            .map_err(|source| JobsError::Job { name: name.into(), source: JobError::Read { path: file.into(), source } })?;
        let table: toml::Table =
            text.parse().map_err(|e: toml::de::Error| JobsError::Plugin { name: name.into(), message: e.to_string() })?;
        let mut resources = Vec::new();
        for spec in &job.resources {
            let plugin = runtime
                .load_resource(&spec.name, &spec.plugin)
                .map_err(|e| JobsError::Plugin { name: name.into(), message: e.to_string() })?;
            resources.push(ResourceInfo {
                name: spec.name.clone(),
                windowed: plugin.info.window_column.is_some(),
                attachments: plugin.uses_blobs,
                months: spec.months,
            });
        }
        let file = file.canonicalize().unwrap_or_else(|_| file.into());
        Ok(ServiceJob { name: name.into(), file, job, table, resources })
    }

    /// Checks a narrowing against the job: the resources that will run, and the window.
    pub fn narrow(&self, n: &Narrowing) -> Result<(Vec<&ResourceInfo>, Option<Months>), Refused> {
        let names: Vec<&str> = self.resources.iter().map(|r| r.name.as_str()).collect();
        let mut selected: Vec<&ResourceInfo> = match &n.resources {
            None => self.resources.iter().collect(),
            Some(list) => {
                if list.is_empty() {
                    return Err(refused(
                        "resources",
                        format!("is empty; leave it out for all of job `{}`'s resources ({})", self.name, names.join(", ")),
                    ));
                }
                for (i, r) in list.iter().enumerate() {
                    if !names.contains(&r.as_str()) {
                        return Err(refused(
                            "resources",
                            format!("{r:?} is not a resource of job `{}`; its resources are: {}", self.name, names.join(", ")),
                        ));
                    }
                    if list[..i].contains(r) {
                        return Err(refused("resources", format!("{r:?} is listed twice")));
                    }
                }
                self.resources.iter().filter(|r| list.contains(&r.name)).collect()
            }
        };
        let job_content = self.job.content;
        if let Some(c) = n.content
            && job_content != Content::Both
            && c != job_content
        {
            return Err(refused(
                "content",
                format!("{c:?} would widen job `{}`, whose content is {job_content:?}; ask for {job_content:?}", self.name).to_lowercase(),
            ));
        }
        let content = n.content.unwrap_or(job_content);
        selected.retain(|r| content.includes(r.attachments));
        if selected.is_empty() {
            return Err(refused("content", format!("{content:?} leaves none of the selected resources to export").to_lowercase()));
        }
        let months = match &n.months {
            None => None,
            Some(v) => {
                let value = match v {
                    serde_json::Value::Number(x) if x.as_i64().is_some() => toml::Value::Integer(x.as_i64().unwrap_or_default()),
                    serde_json::Value::String(s) => toml::Value::String(s.clone()),
                    other => return Err(refused("months", format!("{other} is not a window; use 1, 2, 3, 6, 12, 24 or \"all\""))),
                };
                let m = Months::parse(&value).map_err(|e| refused("months", e))?;
                let windowed: Vec<_> = selected.iter().filter(|r| r.windowed).collect();
                if windowed.is_empty() {
                    let list: Vec<_> = selected.iter().map(|r| r.name.as_str()).collect();
                    return Err(refused("months", format!("none of the selected resources ({}) has a time window", list.join(", "))));
                }
                for r in windowed {
                    if wider(m, r.months.unwrap_or(Months::All)) {
                        return Err(refused(
                            "months",
                            format!(
                                "{} would widen the window of `{}` in job `{}` ({}); ask for that or fewer months",
                                show(m),
                                r.name,
                                self.name,
                                show(r.months.unwrap_or(Months::All))
                            ),
                        ));
                    }
                }
                Some(m)
            }
        };
        Ok((selected, months))
    }

    /// The job file a run of this narrowing gets, as TOML text, validated as a job.
    pub fn derive(
        &self,
        n: &Narrowing,
        name: Option<&str>,
        description: Option<&str>,
        root: &Path,
        at: &Path,
    ) -> Result<(String, Job), Refused> {
        let (selected, months) = self.narrow(n)?;
        let base = self.file.parent().map(Path::to_path_buf).unwrap_or_default();
        let abs = |v: &toml::Value| -> toml::Value {
            match v.as_str() {
                Some(p) if !p.starts_with("s3://") && !Path::new(p).is_absolute() => {
                    toml::Value::String(base.join(p).display().to_string())
                }
                _ => v.clone(),
            }
        };
        let mut t = self.table.clone();
        let section = |t: &mut toml::Table, key: &str| -> Option<toml::Table> { t.get(key).and_then(|v| v.as_table()).cloned() };
        let mut snapshot = section(&mut t, "snapshot").unwrap_or_default();
        if let Some(name) = name {
            snapshot.insert("name".into(), name.into());
        }
        if let Some(d) = description {
            snapshot.insert("description".into(), d.into());
        }
        if let Some(c) = n.content {
            snapshot.insert("content".into(), format!("{c:?}").to_lowercase().into());
        }
        t.insert("snapshot".into(), snapshot.into());
        if let Some(mut source) = section(&mut t, "source") {
            for key in ["sqlite", "blobs"] {
                if let Some(v) = source.get(key).map(&abs) {
                    source.insert(key.into(), v);
                }
            }
            t.insert("source".into(), source.into());
        }
        let mut output = section(&mut t, "output").unwrap_or_default();
        let root_text = toml::Value::String(root.display().to_string());
        let delivers = output.get("dir").and_then(|d| d.as_str()).is_some_and(|d| d.starts_with("s3://"));
        output.insert(if delivers { "local_dir" } else { "dir" }.into(), root_text);
        t.insert("output".into(), output.into());
        let resources: Vec<toml::Value> = t
            .get("resource")
            .and_then(|r| r.as_array())
            .into_iter()
            .flatten()
            .filter_map(|r| r.as_table())
            .filter(|r| selected.iter().any(|s| r.get("name").and_then(|n| n.as_str()) == Some(&s.name)))
            .map(|r| {
                let mut r = r.clone();
                if let Some(p) = r.get("plugin").map(&abs) {
                    r.insert("plugin".into(), p);
                }
                let windowed = selected.iter().any(|s| s.windowed && r.get("name").and_then(|n| n.as_str()) == Some(&s.name));
                if let (Some(m), true) = (months, windowed) {
                    r.insert("months".into(), months_value(m));
                }
                toml::Value::Table(r)
            })
            .collect();
        t.insert("resource".into(), toml::Value::Array(resources));
        let text = toml::to_string(&t).map_err(|e| refused("job", format!("cannot write the derived job: {e}")))?;
        let job = JobFile::parse(at, &text)
            .and_then(|f| f.build(at, &text))
            .map_err(|e| refused("job", format!("job `{}` no longer validates: {e}", self.name)))?;
        Ok((text, job))
    }
}

fn months_value(m: Months) -> toml::Value {
    match m {
        Months::All => "all".into(),
        Months::Last(n) => toml::Value::Integer(n as i64),
    }
}

fn show(m: Months) -> String {
    match m {
        Months::All => "all months".into(),
        Months::Last(n) => format!("{n} months"),
    }
}

/// Whether window `a` covers more than `b`.
fn wider(a: Months, b: Months) -> bool {
    match (a, b) {
        (_, Months::All) => false,
        (Months::All, Months::Last(_)) => true,
        (Months::Last(x), Months::Last(y)) => x > y,
    }
}

/// The configured jobs.
#[derive(Debug)]
pub struct Jobs {
    pub list: Vec<ServiceJob>,
}

impl Jobs {
    pub fn get(&self, name: &str) -> Option<&ServiceJob> {
        self.list.iter().find(|j| j.name == name)
    }

    pub fn names(&self) -> Vec<&str> {
        self.list.iter().map(|j| j.name.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_only_narrow() {
        assert!(wider(Months::All, Months::Last(24)));
        assert!(wider(Months::Last(12), Months::Last(6)));
        assert!(!wider(Months::Last(6), Months::Last(6)));
        assert!(!wider(Months::Last(1), Months::All));
        assert!(!wider(Months::All, Months::All));
    }
}
