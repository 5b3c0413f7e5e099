//! The job file as written, and its validation into a [`Job`].

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Deserialize;
use toml::Spanned;

use super::values::{parse_duration, parse_size};
use super::{AvroCodec, Job, JobError, OnError, PluginRef, ResourceSpec, SourceSpec, Split};
use crate::window::Months;
use crate::formats::Format;
use crate::runtime::{Limits, builtin, builtin_names};
use crate::source::DemoSpec;

/// A ferry job: what to export, from where, to where.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobFile {
    /// The snapshot's identity.
    pub snapshot: SnapshotSection,
    /// The platform's data.
    pub source: SourceSection,
    /// Where and how the snapshot is written.
    pub output: OutputSection,
    /// Default limits for every resource's plugin.
    #[serde(default)]
    pub limits: LimitsSection,
    /// The resources to export, in order.
    #[serde(default, rename = "resource")]
    pub resources: Vec<Spanned<ResourceSection>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotSection {
    /// A short name for people (the snapshot's id is a generated GUID).
    pub name: Spanned<String>,
    /// A longer description, kept in the manifest.
    pub description: Option<String>,
    /// The point in time the snapshot represents (RFC 3339); default: now, UTC.
    pub as_of: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSection {
    /// The platform's SQLite database, relative to the job file.
    pub sqlite: Spanned<String>,
    /// The platform's blob store directory, relative to the job file.
    pub blobs: Option<Spanned<String>>,
    /// When present and the database is missing, generate the demo platform there.
    pub demo: Option<DemoSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoSection {
    /// Random seed: the same seed gives the same platform (default 42).
    pub seed: Option<u64>,
    /// 1.0 = 1,000 users and about 100,000 transactions (default 1.0).
    pub scale: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSection {
    /// Directory that receives one subdirectory per snapshot, relative to the job file.
    pub dir: Spanned<String>,
    /// `avro` (default), `csv` or `jsonl`; a resource may override it.
    pub format: Option<Spanned<Format>>,
    /// Gzip each file (default true); a resource may override it.
    pub gzip: Option<bool>,
    /// Avro block codec: `null` (default), `deflate`, `snappy` or `zstd`.
    pub codec: Option<AvroCodec>,
    /// Split a resource into numbered files of at most this many records.
    pub max_records_per_file: Option<u64>,
    /// Split a resource into numbered files of about this size ("512MiB"); a file is
    /// closed at the first block boundary past it.
    pub max_bytes_per_file: Option<Spanned<String>>,
    /// `fail` (default): a failed resource publishes nothing. `continue`: publish the
    /// rest, marked incomplete.
    pub on_error: Option<OnError>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Memory cap of each plugin (default "256MiB").
    pub memory: Option<Spanned<String>>,
    /// Wall-time cap of each export (default "30m").
    pub time: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceSection {
    /// The resource's name; a built-in plugin of that name exports it unless `plugin` is set.
    pub name: Spanned<String>,
    /// Path to a plugin component (`.wasm`), relative to the job file.
    pub plugin: Option<Spanned<String>>,
    /// Overrides `output.format`.
    pub format: Option<Spanned<Format>>,
    /// Overrides `output.gzip`.
    pub gzip: Option<bool>,
    /// Overrides `output.codec`.
    pub codec: Option<AvroCodec>,
    /// Overrides `output.max_records_per_file`.
    pub max_records_per_file: Option<u64>,
    /// Overrides `output.max_bytes_per_file`.
    pub max_bytes_per_file: Option<Spanned<String>>,
    /// Time window for resources that have one (transactions): 1, 2, 3, 6, 12 or 24
    /// months before as_of, or "all" (the default).
    pub months: Option<Spanned<toml::Value>>,
    /// Overrides `limits.memory`.
    pub memory_limit: Option<Spanned<String>>,
    /// Overrides `limits.time`.
    pub time_limit: Option<Spanned<String>>,
    /// Free-form options handed to the plugin.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

impl JobFile {
    /// Parses the TOML; type errors and unknown keys name the key, line and column.
    pub fn parse(path: &Path, text: &str) -> Result<JobFile, JobError> {
        let de = toml::de::Deserializer::parse(text)
            .map_err(|e| JobError::at(path, text, e.span(), "", e.message().to_string(), None))?;
        serde_path_to_error::deserialize(de).map_err(|e| {
            // `Spanned` values add a private segment to the path; people never wrote it.
            let key = e.path().to_string().replace(".$__serde_spanned_private_value", "");
            let inner = e.inner();
            let message = inner.message().to_string();
            let help = if message.starts_with("unknown field") {
                Some("check the spelling; the job file format is documented in README.md".into())
            } else if message.starts_with("missing field") {
                Some("add it; examples/demo.toml shows a complete job".into())
            } else {
                None
            };
            JobError::at(path, text, inner.span(), if key == "." { "" } else { &key }, message, help)
        })
    }

    /// Validates into a runnable [`Job`].
    pub fn build(self, path: &Path, text: &str) -> Result<Job, JobError> {
        let err = |span: std::ops::Range<usize>, key: &str, message: String, help: Option<&str>| {
            JobError::at(path, text, Some(span), key, message, help.map(str::to_string))
        };
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let resolve = |p: &str| -> PathBuf { if Path::new(p).is_absolute() { PathBuf::from(p) } else { base.join(p) } };

        let name = self.snapshot.name.get_ref().trim().to_string();
        if name.is_empty() {
            return Err(err(self.snapshot.name.span(), "snapshot.name", "is empty".into(), Some("give the snapshot a name, e.g. name = \"nightly\"")));
        }
        let as_of = match &self.snapshot.as_of {
            None => Utc::now(),
            Some(s) => DateTime::parse_from_rfc3339(s.get_ref()).map(|t| t.with_timezone(&Utc)).map_err(|e| {
                err(s.span(), "snapshot.as_of", format!("{:?} is not an RFC 3339 time ({e})", s.get_ref()), Some("write it like \"2026-03-31T14:30:22Z\""))
            })?,
        };

        let sqlite = resolve(self.source.sqlite.get_ref());
        let demo = match &self.source.demo {
            None => None,
            Some(d) => {
                let scale = d.scale.as_ref().map(|s| (*s.get_ref(), s.span())).unwrap_or((1.0, 0..0));
                if !(scale.0 > 0.0 && scale.0 <= 1000.0) {
                    return Err(err(scale.1, "source.demo.scale", format!("{} is out of range", scale.0), Some("use a scale above 0 and at most 1000 (1.0 = about 100,000 transactions)")));
                }
                Some(DemoSpec { seed: d.seed.unwrap_or(42), scale: scale.0 })
            }
        };
        if demo.is_none() && !sqlite.is_file() {
            return Err(err(
                self.source.sqlite.span(),
                "source.sqlite",
                format!("{} does not exist", sqlite.display()),
                Some("fix the path (it is relative to the job file), generate a platform with `ferry demo --out DIR`, or add a [source.demo] table to generate it on first run"),
            ));
        }
        let blobs = self.source.blobs.as_ref().map(|b| resolve(b.get_ref()));
        let output_dir = resolve(self.output.dir.get_ref());
        // Writing into the platform's own data would export the export next time.
        let out_abs = absolute(&output_dir);
        let inside = |dir: &Path| absolute(dir).is_ok_and(|d| out_abs.as_ref().is_ok_and(|o| o == &d || o.starts_with(&d)));
        if sqlite.parent().is_some_and(|d| absolute(d).ok() == out_abs.as_ref().ok().cloned()) || blobs.as_deref().is_some_and(inside) {
            return Err(err(self.output.dir.span(), "output.dir", format!("{} is inside the source", output_dir.display()), Some("write snapshots outside the platform's data directory")));
        }

        let default_limits = Limits::default();
        let job_memory = parse_limit(&self.limits.memory, "limits.memory", parse_size, &err)?.unwrap_or(default_limits.memory_bytes);
        let job_time = parse_limit(&self.limits.time, "limits.time", parse_duration, &err)?.unwrap_or(default_limits.time);
        let format = self.output.format.as_ref().map(|f| *f.get_ref()).unwrap_or(Format::Avro);
        let gzip = self.output.gzip.unwrap_or(true);
        let codec = self.output.codec.unwrap_or(AvroCodec::Null);
        let max_bytes = parse_limit(&self.output.max_bytes_per_file, "output.max_bytes_per_file", parse_size, &err)?;
        let max_records = self.output.max_records_per_file;
        if max_records == Some(0) {
            return Err(JobError::at(path, text, None, "output.max_records_per_file", "is 0", Some("use a positive number, or leave it out for one file per resource".into())));
        }

        if self.resources.is_empty() {
            return Err(JobError::at(path, text, None, "resource", "the job exports nothing", Some(format!("add a [[resource]] table with name = one of: {}", builtin_names().collect::<Vec<_>>().join(", ")))));
        }
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut resources = Vec::new();
        for (i, r) in self.resources.iter().enumerate() {
            let r = r.get_ref();
            let key = |k: &str| format!("resource[{i}].{k}");
            let rname = r.name.get_ref().clone();
            if let Some(first) = seen.insert(rname.clone(), i) {
                return Err(err(r.name.span(), &key("name"), format!("resource {rname:?} is listed twice (also resource[{first}])"), Some("export each resource once; remove one of them")));
            }
            if rname.is_empty() || !rname.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
                return Err(err(r.name.span(), &key("name"), format!("{rname:?} is not a resource name"), Some("use letters, digits, _ and -")));
            }
            let plugin = match &r.plugin {
                Some(p) => {
                    let pp = resolve(p.get_ref());
                    if !pp.is_file() {
                        return Err(err(p.span(), &key("plugin"), format!("{} does not exist", pp.display()), Some("the path is relative to the job file; build the plugin with `cargo build --release --target wasm32-wasip2`")));
                    }
                    PluginRef::Path(pp)
                }
                None if builtin(&rname).is_some() => PluginRef::Builtin(rname.clone()),
                None => {
                    return Err(err(r.name.span(), &key("name"), format!("no built-in plugin exports {rname:?}"), Some(&format!("built-ins are: {}; or set `plugin = \"path/to/plugin.wasm\"`", builtin_names().collect::<Vec<_>>().join(", ")))));
                }
            };
            let memory_bytes = parse_limit(&r.memory_limit, &key("memory_limit"), parse_size, &err)?.unwrap_or(job_memory);
            let time = parse_limit(&r.time_limit, &key("time_limit"), parse_duration, &err)?.unwrap_or(job_time);
            let months = r
                .months
                .as_ref()
                .map(|m| Months::parse(m.get_ref()).map_err(|msg| err(m.span(), &key("months"), msg, Some("MX offers the past 1, 2, 3, 6, 12 or 24 months, or all transactions"))))
                .transpose()?;
            let split = Split {
                max_records: match r.max_records_per_file {
                    Some(0) => return Err(err(r.name.span(), &key("max_records_per_file"), "is 0".into(), Some("use a positive number"))),
                    Some(n) => Some(n),
                    None => max_records,
                },
                max_bytes: parse_limit(&r.max_bytes_per_file, &key("max_bytes_per_file"), parse_size, &err)?.or(max_bytes),
            };
            resources.push(ResourceSpec {
                name: rname,
                plugin,
                format: r.format.as_ref().map(|f| *f.get_ref()).unwrap_or(format),
                gzip: r.gzip.unwrap_or(gzip),
                months,
                split,
                codec: r.codec.unwrap_or(codec),
                limits: Limits { memory_bytes, time, ..default_limits },
                options: r.options.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            });
        }

        Ok(Job {
            path: path.into(),
            name,
            description: self.snapshot.description,
            as_of,
            source: SourceSpec { sqlite, blobs, demo },
            output_dir,
            on_error: self.output.on_error.unwrap_or(OnError::Fail),
            resources,
        })
    }
}

fn absolute(p: &Path) -> std::io::Result<PathBuf> {
    std::path::absolute(p)
}

type ErrFn<'a> = dyn Fn(std::ops::Range<usize>, &str, String, Option<&str>) -> JobError + 'a;

fn parse_limit<T>(value: &Option<Spanned<String>>, key: &str, parse: fn(&str) -> Result<T, String>, err: &ErrFn) -> Result<Option<T>, JobError> {
    value.as_ref().map(|v| parse(v.get_ref()).map_err(|m| err(v.span(), key, m, None))).transpose()
}
