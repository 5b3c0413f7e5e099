//! Validating a [`JobFile`] into a [`Job`]: one `build()` per section, each checking its
//! own values and cross-field rules, then one step that probes the filesystem (the
//! database exists, the output is not inside the source, plugin files are there).
//! Every error names the key and, where the file has one, its line and column.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use toml::Spanned;

use super::file::{JobFile, LimitsSection, OutputSection, ResourceSection, S3Section, SnapshotSection, SourceSection};
use super::values::{parse_duration, parse_size};
use super::{Archive, AvroCodec, Content, Job, JobError, OnError, PluginRef, ResourceSpec, SourceSpec, Split};
use crate::formats::Format;
use crate::runtime::{Limits, builtin, builtin_names};
use crate::source::{DemoSpec, PostgresUrl};
use crate::window::Months;

/// Where the job file is, for paths relative to it and for messages.
struct Cx<'a> {
    path: &'a Path,
    text: &'a str,
    base: PathBuf,
}

impl Cx<'_> {
    /// An error at a value of the file.
    fn at(&self, span: std::ops::Range<usize>, key: &str, message: String, help: Option<&str>) -> JobError {
        JobError::at(self.path, self.text, Some(span), key, message, help.map(str::to_string))
    }

    /// An error about the file as a whole (a missing section, say).
    fn whole(&self, key: &str, message: &str, help: String) -> JobError {
        JobError::at(self.path, self.text, None, key, message, Some(help))
    }

    fn resolve(&self, p: &str) -> PathBuf {
        if Path::new(p).is_absolute() { PathBuf::from(p) } else { self.base.join(p) }
    }

    /// An optional size, duration or limit, parsed by `parse`.
    fn value<T>(&self, value: &Option<Spanned<String>>, key: &str, parse: fn(&str) -> Result<T, String>) -> Result<Option<T>, JobError> {
        value.as_ref().map(|v| parse(v.get_ref()).map_err(|m| self.at(v.span(), key, m, None))).transpose()
    }
}

/// `[snapshot]`, validated.
struct Snapshot {
    name: String,
    as_of: DateTime<Utc>,
    as_of_given: bool,
    retention: std::time::Duration,
}

/// `[output]`, validated: where the snapshot goes and the resources' defaults.
struct Output {
    output_dir: PathBuf,
    delivery: Option<crate::s3::S3Url>,
    tar_part_size: Option<u64>,
    price_per_gib: Option<f64>,
    defaults: ResourceDefaults,
}

/// What a resource gets when it does not say.
struct ResourceDefaults {
    format: Format,
    /// Where `output.format` is, for errors about what it makes wrong.
    format_span: std::ops::Range<usize>,
    /// `output.gzip` and `output.codec` as written: their defaults depend on the format.
    gzip: Option<bool>,
    codec: Option<AvroCodec>,
    split: Split,
    limits: Limits,
}

impl JobFile {
    /// Validates into a runnable [`Job`].
    pub fn build(self, path: &Path, text: &str) -> Result<Job, JobError> {
        let cx = Cx { path, text, base: path.parent().map(Path::to_path_buf).unwrap_or_default() };
        let snapshot = self.snapshot.build(&cx)?;
        let source = self.source.build(&cx)?;
        let mut output = self.output.build(&cx)?;
        output.defaults.limits = self.limits.build(&cx)?;
        let resources = build_resources(&cx, &self.resources, &output.defaults, snapshot.as_of)?;
        check_environment(&cx, &self, &source, &output.output_dir)?;
        let trust = self.output.trust(&cx)?;
        Ok(Job {
            path: path.into(),
            name: snapshot.name,
            description: self.snapshot.description,
            as_of: snapshot.as_of,
            as_of_given: snapshot.as_of_given,
            source,
            output_dir: output.output_dir,
            delivery: output.delivery,
            s3: self.s3.map(S3Section::build).unwrap_or_default(),
            on_error: self.output.on_error.unwrap_or(OnError::Fail),
            retention: snapshot.retention,
            price_per_gib: output.price_per_gib,
            tar_part_size: output.tar_part_size,
            content: self.snapshot.content.unwrap_or(Content::Both),
            resources,
            trust,
        })
    }
}

impl SnapshotSection {
    fn build(&self, cx: &Cx<'_>) -> Result<Snapshot, JobError> {
        let name = self.name.get_ref().trim().to_string();
        if name.is_empty() {
            return Err(cx.at(
                self.name.span(),
                "snapshot.name",
                "is empty".into(),
                Some("give the snapshot a name, e.g. name = \"nightly\""),
            ));
        }
        let as_of_given = self.as_of.is_some();
        let as_of = match &self.as_of {
            None => Utc::now(),
            Some(v) => parse_as_of(v.get_ref())
                .map_err(|m| cx.at(v.span(), "snapshot.as_of", m, Some("write it like \"2026-03-31T14:30:22Z\", in years 1 to 9999")))?,
        };
        let retention = match &self.retention {
            None => super::DEFAULT_RETENTION,
            Some(r) => match parse_duration(r.get_ref()).and_then(super::check_retention) {
                Ok(d) if !d.is_zero() => d,
                Ok(_) => {
                    return Err(cx.at(
                        r.span(),
                        "snapshot.retention",
                        "is 0".into(),
                        Some("keep snapshots for a positive time, e.g. retention = \"30d\""),
                    ));
                }
                Err(m) => return Err(cx.at(r.span(), "snapshot.retention", m, None)),
            },
        };
        Ok(Snapshot { name, as_of, as_of_given, retention })
    }
}

impl SourceSection {
    fn build(&self, cx: &Cx<'_>) -> Result<SourceSpec, JobError> {
        let postgres = match (&self.sqlite, &self.postgres) {
            (Some(_), Some(p)) => {
                return Err(cx.at(
                    p.span(),
                    "source.postgres",
                    "is set together with `sqlite`".into(),
                    Some("a job reads one database: keep either `sqlite` or `postgres`"),
                ));
            }
            (None, None) => {
                return Err(cx.whole(
                    "source",
                    "names no database",
                    "add `sqlite = \"demo/platform.db\"` or `postgres = \"postgres://user@host/db\"`".into(),
                ));
            }
            (_, Some(p)) => Some(PostgresUrl::parse(p.get_ref()).map_err(|e| cx.at(p.span(), "source.postgres", e.to_string(), None))?),
            (Some(_), None) => None,
        };
        // With PostgreSQL there is no SQLite file; the demo generator's default place for
        // blobs is then beside the job.
        let sqlite = self.sqlite.as_ref().map(|s| cx.resolve(s.get_ref())).unwrap_or_default();
        let demo = match &self.demo {
            None => None,
            Some(d) => {
                let (scale, span) = d.scale.as_ref().map(|s| (*s.get_ref(), s.span())).unwrap_or((1.0, 0..0));
                if !(scale > 0.0 && scale <= 1000.0) {
                    return Err(cx.at(
                        span,
                        "source.demo.scale",
                        format!("{scale} is out of range"),
                        Some("use a scale above 0 and at most 1000 (1.0 = about 100,000 transactions)"),
                    ));
                }
                Some(DemoSpec { seed: d.seed.unwrap_or(42), scale })
            }
        };
        if demo.is_some() && postgres.is_some() {
            return Err(cx.whole(
                "source.demo",
                "cannot generate into PostgreSQL on a run",
                "load the demo with `ferry demo --out DIR --postgres URL` first, then remove [source.demo]".into(),
            ));
        }
        let blobs_s3 = self.blobs.as_ref().map(|b| s3_url(cx, b, "source.blobs")).transpose()?.flatten();
        let blobs = self.blobs.as_ref().filter(|_| blobs_s3.is_none()).map(|b| cx.resolve(b.get_ref()));
        Ok(SourceSpec { sqlite, blobs, demo, postgres, blobs_s3 })
    }
}

impl OutputSection {
    fn build(&self, cx: &Cx<'_>) -> Result<Output, JobError> {
        let price_per_gib = match &self.price_per_gib {
            Some(p) if !(p.get_ref().is_finite() && *p.get_ref() >= 0.0) => {
                return Err(cx.at(
                    p.span(),
                    "output.price_per_gib",
                    format!("{} is not a price", p.get_ref()),
                    Some("use a price per GiB and month of 0 or more, e.g. 0.023"),
                ));
            }
            p => p.as_ref().map(|p| *p.get_ref()),
        };
        let delivery = s3_url(cx, &self.dir, "output.dir")?;
        // An S3 job still needs a local root for its catalog and staging: a hidden
        // directory beside the job, one per bucket and prefix.
        let output_dir = match (&delivery, &self.local_dir) {
            (Some(_), Some(local)) => cx.resolve(local.get_ref()),
            (None, Some(local)) => {
                return Err(cx.at(
                    local.span(),
                    "output.local_dir",
                    "is set, but `dir` is not an s3:// URL".into(),
                    Some("remove it: a local `dir` is itself the output root"),
                ));
            }
            (Some(u), None) => cx.base.join(".ferry-s3").join(&u.bucket).join(if u.prefix.is_empty() { "_" } else { u.prefix.as_str() }),
            (None, None) => cx.resolve(self.dir.get_ref()),
        };
        let part_size = cx.value(&self.part_size, "output.part_size", parse_size)?.unwrap_or(1 << 30);
        if part_size < 4096 {
            let span = self.part_size.as_ref().map(|p| p.span()).unwrap_or(0..0);
            return Err(cx.at(
                span,
                "output.part_size",
                format!("{part_size} bytes is too small for a tar part"),
                Some("use at least \"4KiB\"; the default is \"1GiB\""),
            ));
        }
        let tar_part_size = match self.archive.unwrap_or(Archive::Tar) {
            Archive::Tar => Some(part_size),
            Archive::None => None,
        };
        let split = Split {
            max_records: positive_count(
                cx,
                &self.max_records_per_file,
                "output.max_records_per_file",
                "use a positive number, or leave it out for one file per resource",
            )?,
            max_bytes: cx.value(&self.max_bytes_per_file, "output.max_bytes_per_file", parse_file_size)?,
        };
        let defaults = ResourceDefaults {
            format: self.format.as_ref().map(|f| *f.get_ref()).unwrap_or(Format::Avro),
            format_span: self.format.as_ref().map(|f| f.span()).unwrap_or(0..0),
            gzip: self.gzip,
            codec: self.codec,
            split,
            limits: Limits::default(),
        };
        Ok(Output { output_dir, delivery, tar_part_size, price_per_gib, defaults })
    }
}

impl OutputSection {
    /// `encrypt_to` and `sign_with`: the recipients parsed and the signing key read now,
    /// so a bad key fails the job before anything is exported.
    fn trust(&self, cx: &Cx<'_>) -> Result<super::Trust, JobError> {
        let encrypt_to = match &self.encrypt_to {
            None => None,
            Some(list) => Some(crate::package::encrypt::Recipients::parse(list.get_ref()).map_err(|e| {
                cx.at(
                    list.span(),
                    "output.encrypt_to",
                    e.to_string(),
                    Some("list public keys, e.g. encrypt_to = [\"age1...\"]; `age-keygen -o key.txt` makes a key pair"),
                )
            })?),
        };
        let sign_with = match &self.sign_with {
            None => None,
            Some(key) => Some(crate::package::sign::SigningKey::read(&cx.resolve(key.get_ref())).map_err(|e| {
                cx.at(
                    key.span(),
                    "output.sign_with",
                    e.to_string(),
                    Some("the path is relative to the job file; `ferry keys generate` writes ferry.key and ferry.pub"),
                )
            })?),
        };
        Ok(super::Trust { encrypt_to, sign_with })
    }
}

impl LimitsSection {
    fn build(&self, cx: &Cx<'_>) -> Result<Limits, JobError> {
        let defaults = Limits::default();
        Ok(Limits {
            memory_bytes: cx.value(&self.memory, "limits.memory", parse_memory)?.unwrap_or(defaults.memory_bytes),
            time: cx.value(&self.time, "limits.time", parse_time_limit)?.unwrap_or(defaults.time),
            ..defaults
        })
    }
}

impl S3Section {
    fn build(self) -> crate::s3::S3Settings {
        crate::s3::S3Settings {
            endpoint: self.endpoint,
            region: self.region,
            access_key_id: self.access_key_id,
            secret_access_key: self.secret_access_key,
            allow_http: self.allow_http,
        }
    }
}

fn build_resources(
    cx: &Cx<'_>,
    sections: &[Spanned<ResourceSection>],
    defaults: &ResourceDefaults,
    as_of: DateTime<Utc>,
) -> Result<Vec<ResourceSpec>, JobError> {
    if sections.is_empty() {
        let names = builtin_names().collect::<Vec<_>>().join(", ");
        return Err(cx.whole("resource", "the job exports nothing", format!("add a [[resource]] table with name = one of: {names}")));
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut resources = Vec::with_capacity(sections.len());
    for (i, r) in sections.iter().enumerate() {
        let r = r.get_ref();
        if let Some(first) = seen.insert(r.name.get_ref(), i) {
            let message = format!("resource {:?} is listed twice (also resource[{first}])", r.name.get_ref());
            return Err(cx.at(
                r.name.span(),
                &format!("resource[{i}].name"),
                message,
                Some("export each resource once; remove one of them"),
            ));
        }
        resources.push(r.build(cx, i, defaults, as_of)?);
    }
    Ok(resources)
}

impl ResourceSection {
    /// The resource's gzip and codec. Avro, CSV and JSONL: gzip by default, codec `null`.
    /// A Parquet file is compressed per page (zstd by default) and never gzipped again:
    /// `gzip = true` is an error rather than a silently different file, and `deflate` is
    /// Avro's only.
    fn compression(
        &self,
        cx: &Cx<'_>,
        key: &dyn Fn(&str) -> String,
        defaults: &ResourceDefaults,
        format: Format,
    ) -> Result<(bool, AvroCodec), JobError> {
        let gzip = self.gzip.map(|g| (key("gzip"), g)).or(defaults.gzip.map(|g| ("output.gzip".to_string(), g)));
        let codec = self.codec.map(|c| (key("codec"), c)).or(defaults.codec.map(|c| ("output.codec".to_string(), c)));
        if format != Format::Parquet {
            return Ok((gzip.is_none_or(|(_, g)| g), codec.map(|(_, c)| c).unwrap_or(AvroCodec::Null)));
        }
        // gzip and codec carry no span: point at the format that makes them wrong.
        let span = self.format.as_ref().map(|f| f.span()).unwrap_or(defaults.format_span.clone());
        if let Some((k, true)) = gzip {
            let message = "gzip = true with format = \"parquet\": a Parquet file is compressed inside, page by page".to_string();
            return Err(cx.at(
                span,
                &k,
                message,
                Some("remove `gzip`, or set `gzip = false`; choose the compression with `codec` (zstd, snappy or none)"),
            ));
        }
        match codec {
            Some((k, AvroCodec::Deflate)) => Err(cx.at(
                span,
                &k,
                "codec = \"deflate\" is not offered for Parquet".into(),
                Some("use codec = \"zstd\" (the default for Parquet), \"snappy\" or \"none\""),
            )),
            Some((_, c)) => Ok((false, c)),
            None => Ok((false, AvroCodec::Zstd)),
        }
    }

    fn build(&self, cx: &Cx<'_>, i: usize, defaults: &ResourceDefaults, as_of: DateTime<Utc>) -> Result<ResourceSpec, JobError> {
        let key = |k: &str| format!("resource[{i}].{k}");
        let name = self.name.get_ref().clone();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            return Err(cx.at(
                self.name.span(),
                &key("name"),
                format!("{name:?} is not a resource name"),
                Some("use letters, digits, _ and -"),
            ));
        }
        let plugin = match &self.plugin {
            Some(p) => PluginRef::Path(cx.resolve(p.get_ref())),
            None if builtin(&name).is_some() => PluginRef::Builtin(name.clone()),
            None => {
                let help =
                    format!("built-ins are: {}; or set `plugin = \"path/to/plugin.wasm\"`", builtin_names().collect::<Vec<_>>().join(", "));
                return Err(cx.at(self.name.span(), &key("name"), format!("no built-in plugin exports {name:?}"), Some(&help)));
            }
        };
        let months = self
            .months
            .as_ref()
            .map(|m| {
                Months::parse(m.get_ref()).and_then(|months| crate::window::check(as_of, months).map(|()| months)).map_err(|msg| {
                    cx.at(m.span(), &key("months"), msg, Some("MX offers the past 1, 2, 3, 6, 12 or 24 months, or all transactions"))
                })
            })
            .transpose()?;
        let split = Split {
            max_records: positive_count(cx, &self.max_records_per_file, &key("max_records_per_file"), "use a positive number")?
                .or(defaults.split.max_records),
            max_bytes: cx.value(&self.max_bytes_per_file, &key("max_bytes_per_file"), parse_file_size)?.or(defaults.split.max_bytes),
        };
        let limits = Limits {
            memory_bytes: cx.value(&self.memory_limit, &key("memory_limit"), parse_memory)?.unwrap_or(defaults.limits.memory_bytes),
            time: cx.value(&self.time_limit, &key("time_limit"), parse_time_limit)?.unwrap_or(defaults.limits.time),
            ..defaults.limits
        };
        let format = self.format.as_ref().map(|f| *f.get_ref()).unwrap_or(defaults.format);
        let (gzip, codec) = self.compression(cx, &key, defaults, format)?;
        Ok(ResourceSpec {
            name,
            plugin,
            format,
            gzip,
            codec,
            months,
            split,
            limits,
            options: self.options.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        })
    }
}

/// The checks that look at the filesystem, after every value is valid: the database is a
/// file (or will be generated), plugin files exist, and the output is not inside the
/// source (writing into the platform's own data would export the export next time).
fn check_environment(cx: &Cx<'_>, file: &JobFile, source: &SourceSpec, output_dir: &Path) -> Result<(), JobError> {
    if let Some(sq) = &file.source.sqlite {
        if source.sqlite.is_dir() {
            return Err(cx.at(
                sq.span(),
                "source.sqlite",
                format!("{} is a directory, not a database file", source.sqlite.display()),
                Some("name the SQLite file itself, e.g. \"demo/platform.db\""),
            ));
        }
        if source.demo.is_none() && !source.sqlite.is_file() {
            return Err(cx.at(
                sq.span(),
                "source.sqlite",
                format!("{} does not exist", source.sqlite.display()),
                Some("fix the path (it is relative to the job file), generate a platform with `ferry demo --out DIR`, or add a [source.demo] table to generate it on first run"),
            ));
        }
    }
    let out_abs = std::path::absolute(output_dir);
    let same = |dir: &Path| std::path::absolute(dir).is_ok_and(|d| out_abs.as_ref().is_ok_and(|o| o == &d));
    let inside = |dir: &Path| std::path::absolute(dir).is_ok_and(|d| out_abs.as_ref().is_ok_and(|o| o == &d || o.starts_with(&d)));
    if (source.postgres.is_none() && source.sqlite.parent().is_some_and(same)) || source.blobs.as_deref().is_some_and(inside) {
        return Err(cx.at(
            file.output.dir.span(),
            "output.dir",
            format!("{} is inside the source", output_dir.display()),
            Some("write snapshots outside the platform's data directory"),
        ));
    }
    for (i, r) in file.resources.iter().enumerate() {
        if let Some(p) = &r.get_ref().plugin
            && !cx.resolve(p.get_ref()).is_file()
        {
            let message = format!("{} does not exist", cx.resolve(p.get_ref()).display());
            return Err(cx.at(
                p.span(),
                &format!("resource[{i}].plugin"),
                message,
                Some("the path is relative to the job file; build the plugin with `cargo build --release --target wasm32-wasip2`"),
            ));
        }
    }
    Ok(())
}

fn s3_url(cx: &Cx<'_>, v: &Spanned<String>, key: &str) -> Result<Option<crate::s3::S3Url>, JobError> {
    crate::s3::S3Url::parse(v.get_ref()).transpose().map_err(|m| cx.at(v.span(), key, m, Some("write it like \"s3://bucket/prefix\"")))
}

/// A record count that must be positive when given.
fn positive_count(cx: &Cx<'_>, value: &Option<Spanned<u64>>, key: &str, help: &str) -> Result<Option<u64>, JobError> {
    match value {
        Some(n) if *n.get_ref() == 0 => Err(cx.at(n.span(), key, "is 0".into(), Some(help))),
        n => Ok(n.as_ref().map(|n| *n.get_ref())),
    }
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
