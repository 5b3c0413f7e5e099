//! The job file as written, and its validation into a [`Job`].

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Deserialize;
use toml::Spanned;

use super::values::{parse_duration, parse_size};
use super::{Archive, AvroCodec, Job, JobError, OnError, PluginRef, ResourceSpec, SourceSpec, Split};
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
    /// S3 access for `s3://` blobs and output; overrides the `AWS_*` environment.
    pub s3: Option<S3Section>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Section {
    /// The S3-protocol server, e.g. "http://127.0.0.1:9000"; default: AWS (or `AWS_ENDPOINT_URL`).
    pub endpoint: Option<String>,
    /// The bucket's region; default: `AWS_REGION`, else us-east-1.
    pub region: Option<String>,
    /// Access key id; default: `AWS_ACCESS_KEY_ID`. Prefer the environment for keys.
    pub access_key_id: Option<String>,
    /// Secret key; default: `AWS_SECRET_ACCESS_KEY`. Never logged or kept in the manifest.
    pub secret_access_key: Option<String>,
    /// Allow a plain-http endpoint (a local server); default: true for `http://` endpoints.
    pub allow_http: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotSection {
    /// A short name for people (the snapshot's id is a generated GUID).
    pub name: Spanned<String>,
    /// A longer description, kept in the manifest.
    pub description: Option<String>,
    /// The point in time the snapshot represents: an RFC 3339 string, or a TOML offset
    /// date-time, in years 1 to 9999; default: now, UTC.
    pub as_of: Option<Spanned<toml::Value>>,
    /// How long the snapshot is kept before `ferry snapshots purge` removes it
    /// ("30d", "12h"); default 30 days.
    pub retention: Option<Spanned<String>>,
    /// What the snapshot holds: "tables", "attachments" or "both" (default).
    pub content: Option<super::Content>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSection {
    /// The platform's SQLite database, relative to the job file (this or `postgres`).
    pub sqlite: Option<Spanned<String>>,
    /// The platform's PostgreSQL database, "postgres://user:password@host:port/db"
    /// (this or `sqlite`); the password never reaches logs or the manifest.
    pub postgres: Option<Spanned<String>>,
    /// The platform's blob store: a directory relative to the job file, or "s3://bucket/prefix".
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
    /// Directory that receives one subdirectory per snapshot, relative to the job file;
    /// or "s3://bucket/prefix": each snapshot is uploaded to `prefix/<id>/`, manifest last.
    pub dir: Spanned<String>,
    /// `avro` (default), `csv`, `jsonl` or `parquet`; a resource may override it.
    pub format: Option<Spanned<Format>>,
    /// Gzip each file (default true); a resource may override it.
    pub gzip: Option<bool>,
    /// Avro block codec: `null` (default), `deflate`, `snappy` or `zstd`; Parquet page
    /// compression: `zstd` (default), `snappy` or `none`.
    pub codec: Option<AvroCodec>,
    /// Split a resource into numbered files of at most this many records.
    pub max_records_per_file: Option<Spanned<u64>>,
    /// Split a resource into numbered files of about this size ("512MiB"); a file is
    /// closed at the first block boundary past it.
    pub max_bytes_per_file: Option<Spanned<String>>,
    /// `tar` (default): pack files into `snapshot_tables_partN_<time>.tar` parts;
    /// `none`: leave them as files beside the manifest.
    pub archive: Option<Archive>,
    /// Cap of each tar part (default "1GiB"); a larger file gets a part of its own.
    pub part_size: Option<Spanned<String>>,
    /// `fail` (default): a failed resource publishes nothing. `continue`: publish the
    /// rest, marked incomplete.
    pub on_error: Option<OnError>,
    /// Storage price per GiB and month (e.g. 0.023): `ferry plan` shows the cost.
    pub price_per_gib: Option<Spanned<f64>>,
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
    pub max_records_per_file: Option<Spanned<u64>>,
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
            Some(v) => parse_as_of(v.get_ref()).map_err(|m| err(v.span(), "snapshot.as_of", m, Some("write it like \"2026-03-31T14:30:22Z\", in years 1 to 9999")))?,
        };

        let retention = match &self.snapshot.retention {
            None => super::DEFAULT_RETENTION,
            Some(r) => match parse_duration(r.get_ref()).and_then(super::check_retention) {
                Ok(d) if !d.is_zero() => d,
                Ok(_) => return Err(err(r.span(), "snapshot.retention", "is 0".into(), Some("keep snapshots for a positive time, e.g. retention = \"30d\""))),
                Err(m) => return Err(err(r.span(), "snapshot.retention", m, None)),
            },
        };
        let price_per_gib = match &self.output.price_per_gib {
            Some(p) if !(p.get_ref().is_finite() && *p.get_ref() >= 0.0) => {
                return Err(err(p.span(), "output.price_per_gib", format!("{} is not a price", p.get_ref()), Some("use a price per GiB and month of 0 or more, e.g. 0.023")));
            }
            p => p.as_ref().map(|p| *p.get_ref()),
        };
        let postgres = match (&self.source.sqlite, &self.source.postgres) {
            (Some(_), Some(p)) => return Err(err(p.span(), "source.postgres", "is set together with `sqlite`".into(), Some("a job reads one database: keep either `sqlite` or `postgres`"))),
            (None, None) => return Err(JobError::at(path, text, None, "source", "names no database", Some("add `sqlite = \"demo/platform.db\"` or `postgres = \"postgres://user@host/db\"`".into()))),
            (_, Some(p)) => Some(crate::source::PostgresUrl::parse(p.get_ref()).map_err(|e| err(p.span(), "source.postgres", e.to_string(), None))?),
            (Some(_), None) => None,
        };
        // With PostgreSQL there is no SQLite file; the demo generator's default place for
        // blobs is then beside the job.
        let sqlite = self.source.sqlite.as_ref().map(|s| resolve(s.get_ref())).unwrap_or_default();
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
        if self.source.demo.is_some() && postgres.is_some() {
            return Err(JobError::at(path, text, None, "source.demo", "cannot generate into PostgreSQL on a run", Some("load the demo with `ferry demo --out DIR --postgres URL` first, then remove [source.demo]".into())));
        }
        if let (Some(sq), true) = (&self.source.sqlite, sqlite.is_dir()) {
            return Err(err(sq.span(), "source.sqlite", format!("{} is a directory, not a database file", sqlite.display()), Some("name the SQLite file itself, e.g. \"demo/platform.db\"")));
        }
        if let (Some(sq), true) = (&self.source.sqlite, demo.is_none() && !sqlite.is_file()) {
            return Err(err(
                sq.span(),
                "source.sqlite",
                format!("{} does not exist", sqlite.display()),
                Some("fix the path (it is relative to the job file), generate a platform with `ferry demo --out DIR`, or add a [source.demo] table to generate it on first run"),
            ));
        }
        let s3_url = |v: &Spanned<String>, key: &str| -> Result<Option<crate::s3::S3Url>, JobError> {
            crate::s3::S3Url::parse(v.get_ref()).transpose().map_err(|m| err(v.span(), key, m, Some("write it like \"s3://bucket/prefix\"")))
        };
        let blobs_s3 = match &self.source.blobs {
            Some(b) => s3_url(b, "source.blobs")?,
            None => None,
        };
        let blobs = self.source.blobs.as_ref().filter(|_| blobs_s3.is_none()).map(|b| resolve(b.get_ref()));
        let delivery = s3_url(&self.output.dir, "output.dir")?;
        // An S3 job still needs a local root for its catalog and staging: a hidden
        // directory beside the job, one per bucket and prefix.
        let output_dir = match &delivery {
            Some(u) => base.join(".ferry-s3").join(&u.bucket).join(if u.prefix.is_empty() { "_" } else { u.prefix.as_str() }),
            None => resolve(self.output.dir.get_ref()),
        };
        let s3 = self
            .s3
            .map(|s| crate::s3::S3Settings { endpoint: s.endpoint, region: s.region, access_key_id: s.access_key_id, secret_access_key: s.secret_access_key, allow_http: s.allow_http })
            .unwrap_or_default();
        // Writing into the platform's own data would export the export next time.
        let out_abs = absolute(&output_dir);
        let inside = |dir: &Path| absolute(dir).is_ok_and(|d| out_abs.as_ref().is_ok_and(|o| o == &d || o.starts_with(&d)));
        if (postgres.is_none() && sqlite.parent().is_some_and(|d| absolute(d).ok() == out_abs.as_ref().ok().cloned())) || blobs.as_deref().is_some_and(inside) {
            return Err(err(self.output.dir.span(), "output.dir", format!("{} is inside the source", output_dir.display()), Some("write snapshots outside the platform's data directory")));
        }

        let default_limits = Limits::default();
        let job_memory = parse_limit(&self.limits.memory, "limits.memory", parse_memory, &err)?.unwrap_or(default_limits.memory_bytes);
        let job_time = parse_limit(&self.limits.time, "limits.time", parse_time_limit, &err)?.unwrap_or(default_limits.time);
        let format = self.output.format.as_ref().map(|f| *f.get_ref()).unwrap_or(Format::Avro);
        let gzip = self.output.gzip.unwrap_or(true);
        let codec = self.output.codec.unwrap_or(AvroCodec::Null);
        let part_size = parse_limit(&self.output.part_size, "output.part_size", parse_size, &err)?.unwrap_or(1 << 30);
        if part_size < 4096 {
            let span = self.output.part_size.as_ref().map(|p| p.span()).unwrap_or(0..0);
            return Err(err(span, "output.part_size", format!("{part_size} bytes is too small for a tar part"), Some("use at least \"4KiB\"; the default is \"1GiB\"")));
        }
        let archive = match self.output.archive.unwrap_or(Archive::Tar) {
            Archive::Tar => Some(part_size),
            Archive::None => None,
        };
        let max_bytes = parse_limit(&self.output.max_bytes_per_file, "output.max_bytes_per_file", parse_file_size, &err)?;
        let max_records = match &self.output.max_records_per_file {
            Some(n) if *n.get_ref() == 0 => {
                return Err(err(n.span(), "output.max_records_per_file", "is 0".into(), Some("use a positive number, or leave it out for one file per resource")));
            }
            n => n.as_ref().map(|n| *n.get_ref()),
        };

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
            let memory_bytes = parse_limit(&r.memory_limit, &key("memory_limit"), parse_memory, &err)?.unwrap_or(job_memory);
            let time = parse_limit(&r.time_limit, &key("time_limit"), parse_time_limit, &err)?.unwrap_or(job_time);
            let months = r
                .months
                .as_ref()
                .map(|m| {
                    Months::parse(m.get_ref())
                        .and_then(|months| crate::window::check(as_of, months).map(|_| months))
                        .map_err(|msg| err(m.span(), &key("months"), msg, Some("MX offers the past 1, 2, 3, 6, 12 or 24 months, or all transactions")))
                })
                .transpose()?;
            let split = Split {
                max_records: match &r.max_records_per_file {
                    Some(n) if *n.get_ref() == 0 => return Err(err(n.span(), &key("max_records_per_file"), "is 0".into(), Some("use a positive number"))),
                    Some(n) => Some(*n.get_ref()),
                    None => max_records,
                },
                max_bytes: parse_limit(&r.max_bytes_per_file, &key("max_bytes_per_file"), parse_file_size, &err)?.or(max_bytes),
            };
            let rformat = r.format.as_ref().map(|f| *f.get_ref()).unwrap_or(format);
            let (gzip, codec) = if rformat == Format::Parquet {
                // gzip and codec carry no span: point at the format that makes them wrong.
                let span = r.format.as_ref().or(self.output.format.as_ref()).map(|f| f.span()).unwrap_or(0..0);
                parquet_settings(r, &self.output, &key).map_err(|(k, msg, hint)| err(span, &k, msg, Some(hint)))?
            } else {
                (r.gzip.unwrap_or(gzip), r.codec.unwrap_or(codec))
            };
            resources.push(ResourceSpec {
                name: rname,
                plugin,
                format: rformat,
                gzip,
                months,
                split,
                codec,
                limits: Limits { memory_bytes, time, ..default_limits },
                options: r.options.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            });
        }

        Ok(Job {
            path: path.into(),
            name,
            description: self.snapshot.description,
            as_of,
            source: SourceSpec { sqlite, blobs, demo, postgres, blobs_s3 },
            output_dir,
            delivery,
            s3,
            on_error: self.output.on_error.unwrap_or(OnError::Fail),
            retention,
            price_per_gib,
            tar_part_size: archive,
            content: self.snapshot.content.unwrap_or(super::Content::Both),
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

/// `as_of`: an RFC 3339 string or a TOML offset date-time, in years 1 to 9999 (what RFC
/// 3339 can write), not a leap second (the window's end would then differ from as_of).
fn parse_as_of(value: &toml::Value) -> Result<DateTime<Utc>, String> {
    let text = match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Datetime(d) if d.offset.is_none() || d.date.is_none() || d.time.is_none() => {
            return Err(format!("{d} has no date, time or time zone; a snapshot's as_of needs all three (\"Z\" for UTC)"));
        }
        toml::Value::Datetime(d) => d.to_string(),
        other => return Err(format!("is not a time (a TOML {})", other.type_str())),
    };
    let t = DateTime::parse_from_rfc3339(&text).map_err(|e| format!("{text:?} is not an RFC 3339 time ({e})"))?;
    if t.timestamp_subsec_nanos() >= 1_000_000_000 {
        return Err(format!("{text:?} is a leap second, which has no place in a window's microseconds; use the second before or after it"));
    }
    let t = t.with_timezone(&Utc);
    if !(1..=9999).contains(&chrono::Datelike::year(&t)) {
        return Err(format!("{text:?} is in UTC year {}, outside years 1 to 9999", chrono::Datelike::year(&t)));
    }
    Ok(t)
}

/// A plugin's memory cap: 0 leaves no room to start any plugin.
fn parse_memory(text: &str) -> Result<u64, String> {
    match parse_size(text)? {
        0 => Err(format!("{text:?} is 0 bytes, too little to start any plugin; use at least \"16MiB\" (the default is \"256MiB\")")),
        n => Ok(n),
    }
}

/// An export's time limit: 0 would stop every export before it starts.
fn parse_time_limit(text: &str) -> Result<std::time::Duration, String> {
    match parse_duration(text)? {
        d if d.is_zero() => Err(format!("{text:?} is no time at all; use a positive limit such as \"90s\" (the default is \"30m\")")),
        d => Ok(d),
    }
}

/// `max_bytes_per_file`: 0 would give a file per block.
fn parse_file_size(text: &str) -> Result<u64, String> {
    match parse_size(text)? {
        0 => Err(format!("{text:?} is 0 bytes; use a size such as \"512MiB\", or leave it out for one file per resource")),
        n => Ok(n),
    }
}

/// A Parquet resource's gzip and codec. A Parquet file is compressed per page and never
/// gzipped again: `gzip = true` is an error rather than a silently different file. The
/// codec defaults to zstd; `deflate` is Avro's only.
fn parquet_settings(r: &ResourceSection, output: &OutputSection, key: &dyn Fn(&str) -> String) -> Result<(bool, AvroCodec), (String, String, &'static str)> {
    let (gzip_key, gzip) = match (r.gzip, output.gzip) {
        (Some(g), _) => (key("gzip"), g),
        (None, Some(g)) => ("output.gzip".to_string(), g),
        (None, None) => (String::new(), false),
    };
    if gzip {
        return Err((
            gzip_key,
            "gzip = true with format = \"parquet\": a Parquet file is compressed inside, page by page".into(),
            "remove `gzip`, or set `gzip = false` for this resource; choose the compression with `codec` (zstd, snappy or none)",
        ));
    }
    let (codec_key, codec) = match (r.codec, output.codec) {
        (Some(c), _) => (key("codec"), c),
        (None, Some(c)) => ("output.codec".to_string(), c),
        (None, None) => (String::new(), AvroCodec::Zstd),
    };
    if codec == AvroCodec::Deflate {
        return Err((codec_key, "codec = \"deflate\" is not offered for Parquet".into(), "use codec = \"zstd\" (the default for Parquet), \"snappy\" or \"none\""));
    }
    Ok((false, codec))
}
