//! `ferry run --shard` options and `ferry assemble`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use ferry::job::Job;
use ferry::package::layout::Shard;
use ferry::package::shards::DirShards;
use ferry::s3::{S3, S3Settings, S3Shards, S3Url};

/// The environment variables `--shard auto` reads the index from, in order: Kubernetes
/// Indexed Jobs, AWS Batch array jobs, ferry's own.
const INDEX_VARS: &[&str] = &["JOB_COMPLETION_INDEX", "AWS_BATCH_JOB_ARRAY_INDEX", "FERRY_SHARD_INDEX"];
/// Where the shard count comes from without `--shards`.
const COUNT_VARS: &[&str] = &["FERRY_SHARDS", "JOB_COMPLETIONS", "AWS_BATCH_JOB_ARRAY_SIZE"];

/// The first of `vars` that is set, and its value.
fn env(vars: &'static [&'static str]) -> Option<(&'static str, String)> {
    vars.iter().find_map(|v| std::env::var(v).ok().map(|value| (*v, value)))
}

/// `--shard i/N` or `--shard auto` (with `--shards N` or the environment).
pub fn parse(shard: &str, shards: Option<u32>) -> Result<Shard> {
    let (index, count) = if shard == "auto" {
        let Some((var, index)) = env(INDEX_VARS) else {
            bail!(
                "--shard auto found no shard index; set one of {} (Kubernetes and AWS Batch set theirs), or pass --shard i/N",
                INDEX_VARS.join(", ")
            )
        };
        let index: u32 = index.trim().parse().with_context(|| format!("{var}={index:?} is not a shard index (0, 1, 2, ...)"))?;
        let count = match shards {
            Some(n) => n,
            None => {
                let Some((var, n)) = env(COUNT_VARS) else {
                    bail!("--shard auto needs the shard count; pass --shards N or set one of {}", COUNT_VARS.join(", "))
                };
                n.trim().parse().with_context(|| format!("{var}={n:?} is not a shard count"))?
            }
        };
        (index, count)
    } else {
        let parsed = shard.split_once('/').and_then(|(i, n)| Some((i.trim().parse::<u32>().ok()?, n.trim().parse::<u32>().ok()?)));
        let Some((index, count)) = parsed else {
            bail!("--shard {shard:?} is not a shard; write it as INDEX/COUNT with INDEX from 0 (\"3/4\" is the last of four), or \"auto\"")
        };
        if let Some(n) = shards.filter(|n| *n != count) {
            bail!("--shard {shard} says {count} shards but --shards says {n}; give one or make them agree");
        }
        (index, count)
    };
    if count == 0 || count > 100_000 {
        bail!("the shard count {count} is out of range; use 1 to 100000");
    }
    if index >= count {
        bail!("shard index {index} is not below the shard count {count}; indices run from 0 to {}", count - 1);
    }
    Ok(Shard { index, count })
}

/// `--snapshot-id ID`: a UUID as ferry writes them (lowercase, hyphenated), so the
/// service's API, which takes only those, serves the assembled snapshot.
pub fn check_snapshot_id(id: &str) -> Result<()> {
    match uuid::Uuid::parse_str(id) {
        Ok(u) if u.hyphenated().to_string() == id => Ok(()),
        _ => bail!(
            "--snapshot-id {id:?} is not a snapshot id; ids are lowercase UUIDs such as 0f8e4a52-1c3b-4d7e-9a61-2b5c8d9e0f13 (`uuidgen`), or leave it out to derive one from the job and its as_of"
        ),
    }
}

/// `ferry assemble DIR --shards N`: checks the shard manifests, writes the manifest and
/// records the snapshot in the catalog of DIR's parent (the output root); for
/// `s3://bucket/prefix/<id>`, in the bucket and in the catalog of the local root.
pub fn assemble(dir: &Path, shards: u32, job: Option<&Path>) -> Result<()> {
    let started = std::time::Instant::now();
    let (assembled, local) = match s3_place(dir)? {
        Some((base, id)) => assemble_s3(&base, &id, shards, job)?,
        None => {
            let dir = dir.components().as_path().to_path_buf();
            let assembled = ferry::package::shards::assemble(&DirShards { dir: dir.clone() }, shards)?;
            (assembled, dir)
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    let root = local.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut catalog = ferry::catalog::Catalog::open(root)?;
    catalog.record_assembled(&local, assembled.shards)?;
    let m = &assembled.manifest;
    let records: u64 = m.resources.iter().map(|r| r.records).sum();
    let files: usize = m.resources.iter().map(|r| r.files.len()).sum();
    println!(
        "snapshot {} assembled from {} shards: {} records, {files} files, {} parts in {seconds:.2}s",
        m.snapshot_id,
        assembled.shards,
        super::count(records),
        m.archives.len()
    );
    match s3_place(dir)? {
        Some(_) => println!("{}", dir.display()),
        None => println!("{}", super::clean_path(&local).display()),
    }
    Ok(())
}

/// Assembles `s3://bucket/prefix/<id>`: the manifest goes up beside the parts, and the
/// local root keeps `<id>/manifest.json` and `delivery.json` as a delivery's does.
fn assemble_s3(base: &S3Url, id: &str, shards: u32, job: Option<&Path>) -> Result<(ferry::package::shards::Assembled, PathBuf)> {
    let (settings, root) = match job {
        Some(path) => {
            let job = Job::load(path)?;
            if job.delivery.as_ref() != Some(base) {
                bail!(
                    "job {} writes to {}, not {base}; pass the job whose `[output] dir` is {base}",
                    path.display(),
                    job.delivery.as_ref().map(|u| u.to_string()).unwrap_or_else(|| "a local directory".into())
                );
            }
            (job.s3.clone(), job.output_dir.clone())
        }
        None => {
            let prefix = if base.prefix.is_empty() { "_" } else { base.prefix.as_str() };
            (S3Settings::default(), Path::new(".ferry-s3").join(&base.bucket).join(prefix))
        }
    };
    let s3 = S3::connect(base, &settings)?;
    let assembled = ferry::package::shards::assemble(&S3Shards::new(&s3, id), shards)?;
    let url = format!("{}/{id}/", base.to_string().trim_end_matches('/'));
    let local = ferry::package::shards::keep_delivered_copy(&root, &assembled.manifest, &url)
        .with_context(|| format!("writing the local copy of the manifest under {}", root.display()))?;
    Ok((assembled, local))
}

/// `s3://bucket/prefix/<id>` split into the prefix the shards wrote under and the id;
/// `None` for a local path.
fn s3_place(place: &Path) -> Result<Option<(S3Url, String)>> {
    let Some(text) = place.to_str() else { return Ok(None) };
    let Some(url) = S3Url::parse(text) else { return Ok(None) };
    let url = url.map_err(|e| anyhow::anyhow!("{text}: {e}"))?;
    let Some((prefix, id)) = url
        .prefix
        .rsplit_once('/')
        .map(|(p, id)| (p.to_string(), id.to_string()))
        .or_else(|| (!url.prefix.is_empty()).then(|| (String::new(), url.prefix.clone())))
    else {
        bail!("{text} names no snapshot; write it as s3://bucket/prefix/<snapshot-id>")
    };
    Ok(Some((S3Url { bucket: url.bucket, prefix }, id)))
}

/// A snapshot to read in place: a local directory as is, or a delivered one
/// (`s3://bucket/prefix/<id>`) downloaded into a temporary directory, returned beside
/// the path so it lives as long as the caller needs it.
pub fn local_copy(place: &Path, job: Option<&Path>) -> Result<(PathBuf, Option<tempfile::TempDir>)> {
    let Some((base, id)) = s3_place(place)? else { return Ok((place.to_path_buf(), None)) };
    let settings = match job {
        Some(path) => Job::load(path)?.s3,
        None => S3Settings::default(),
    };
    let s3 = S3::connect(&base, &settings)?;
    let tmp = tempfile::Builder::new().prefix("ferry-verify-").tempdir().context("creating a temporary directory for the download")?;
    let dir = tmp.path().join(&id);
    ferry::s3::download_snapshot(&s3, &id, &dir).with_context(|| format!("downloading {} to check it", place.display()))?;
    Ok((dir, Some(tmp)))
}
