//! Relationships between a snapshot's resources: the load order the manifest records,
//! and `ferry verify --relations`, which checks that every reference resolves inside
//! the snapshot.
//!
//! The check streams: each resource's files are read once, record by record; every key
//! and every reference value goes into an external sort ([`super::extsort`]), and each
//! reference's sorted values are merged against its target's sorted keys. Memory is a
//! fixed sort budget per sort, whatever the snapshot's size.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Component, Path};

use super::encrypt::{AGE_SUFFIX, Identities};
use super::extsort::{Merged, Sorter, read_key};
use super::verify::{Report, VerifyError, load_manifest};
use super::{ConfinedDir, FileEntry, MANIFEST, ResourceEntry};

/// Bytes of keys each sort holds before spilling a run to disk.
const SORT_BUDGET: usize = 32 << 20;
/// Dangling values quoted per reference.
const EXAMPLES: usize = 5;

/// The entry a reference names: the resource of that name, else the one whose plugin
/// has that name (a job may export `users` under another name).
fn target<'a>(entries: &'a [ResourceEntry], resource: &str) -> Option<&'a ResourceEntry> {
    entries.iter().find(|e| e.name == resource).or_else(|| entries.iter().find(|e| e.plugin.name == resource))
}

/// The resources parents first: each after every resource it references, otherwise in
/// job order. A cycle (which no built-in plugin declares) is broken at the first
/// resource of it in job order.
pub fn load_order(entries: &[ResourceEntry]) -> Vec<String> {
    let parents: Vec<BTreeSet<&str>> = entries
        .iter()
        .map(|e| {
            e.references.iter().filter_map(|r| target(entries, &r.resource)).map(|t| t.name.as_str()).filter(|t| *t != e.name).collect()
        })
        .collect();
    let mut placed: BTreeSet<&str> = BTreeSet::new();
    let mut order = Vec::with_capacity(entries.len());
    while order.len() < entries.len() {
        let ready = (0..entries.len())
            .filter(|&i| !placed.contains(entries[i].name.as_str()))
            .find(|&i| parents[i].iter().all(|p| placed.contains(p)))
            .or_else(|| (0..entries.len()).find(|&i| !placed.contains(entries[i].name.as_str())));
        let Some(i) = ready else { break };
        placed.insert(&entries[i].name);
        order.push(entries[i].name.clone());
    }
    order
}

/// One sort of one resource's field: its keys, or a reference's values.
struct Column {
    resource: String,
    field: String,
    sorter: Sorter,
    nulls: u64,
}

/// `ferry verify --relations DIR`: every reference of every resource resolves to a key
/// of the resource it names, inside the snapshot; every key is unique. Encrypted parts
/// and files are read through `identity` (without one they are reported unreadable).
pub fn verify_relations(path: &Path, identity: Option<&Identities>) -> Result<Report, VerifyError> {
    let manifest = load_manifest(path)?;
    let dir = &ConfinedDir::open(path).map_err(|source| VerifyError::Manifest { path: path.join(MANIFEST), source })?;
    let mut report = Report { status: Some(manifest.status), ..Report::default() };
    let work = tempfile::tempdir().map_err(|source| VerifyError::Manifest { path: std::env::temp_dir(), source })?;
    // What to collect: (resource, field) -> column index; keys first, then references.
    let mut columns: Vec<Column> = Vec::new();
    let mut index: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut checks: Vec<(usize, usize, String)> = Vec::new(); // (reference column, key column, subject)
    let mut wanted = |columns: &mut Vec<Column>, resource: &str, field: &str| -> usize {
        *index.entry((resource.into(), field.into())).or_insert_with(|| {
            let dir = work.path().join(format!("c{}", columns.len()));
            let _ = std::fs::create_dir(&dir);
            columns.push(Column { resource: resource.into(), field: field.into(), sorter: Sorter::new(&dir, SORT_BUDGET), nulls: 0 });
            columns.len() - 1
        })
    };
    for e in &manifest.resources {
        for r in &e.references {
            let subject = format!("{}.{} -> {}.{}", e.name, r.field, r.resource, r.key);
            let Some(t) = target(&manifest.resources, &r.resource) else {
                report.push(
                    false,
                    subject,
                    format!(
                        "resource `{}` is not in the snapshot, so these references cannot resolve; export it in the same job",
                        r.resource
                    ),
                );
                continue;
            };
            if let Some(error) = &t.error {
                report.push(false, subject, format!("resource `{}` failed ({}), so these references cannot resolve", t.name, error.kind));
                continue;
            }
            let key = wanted(&mut columns, &t.name, &r.key);
            let reference = wanted(&mut columns, &e.name, &r.field);
            checks.push((reference, key, subject));
        }
    }
    if checks.is_empty() && report.findings.is_empty() {
        report.push(true, "relations", "no resource declares references");
        return Ok(report);
    }
    for e in &manifest.resources {
        let mine: Vec<usize> = (0..columns.len()).filter(|&i| columns[i].resource == e.name).collect();
        if mine.is_empty() {
            continue;
        }
        for f in e.files.iter().filter(|f| !f.is_attachment()) {
            let fields: Vec<String> = mine.iter().map(|&i| columns[i].field.clone()).collect();
            let read = with_file(dir, identity, f, |raw| {
                // Decrypted on the way: its type is that of the name under `.age`.
                each_value(f.path.strip_suffix(AGE_SUFFIX).unwrap_or(&f.path), raw, &fields, |k, value| {
                    let c = &mut columns[mine[k]];
                    match value {
                        Some(v) => c.sorter.push(&v).map_err(|e| e.to_string()),
                        None => {
                            c.nulls += 1;
                            Ok(())
                        }
                    }
                })
            });
            if let Err(why) = read {
                report.push(false, format!("{}: {}", e.name, f.path), format!("cannot be read for relations: {why}"));
            }
        }
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| VerifyError::Manifest { path, source }
    };
    // Each key column, merged into one file of distinct keys; duplicates reported.
    let mut merged: BTreeMap<usize, (std::path::PathBuf, u64)> = BTreeMap::new();
    let mut outcome: Vec<Option<Merged>> = Vec::new();
    let mut totals = Vec::new();
    for c in columns {
        totals.push((c.resource, c.field, c.sorter.pushed, c.nulls));
        outcome.push(Some(c.sorter.finish().map_err(io(work.path()))?));
    }
    let key_columns: BTreeSet<usize> = checks.iter().map(|c| c.1).collect();
    for &k in &key_columns {
        let path = work.path().join(format!("keys-{k}"));
        let mut out = BufWriter::new(File::create(&path).map_err(io(&path))?);
        let mut keys = outcome[k].take().expect("each key column merges once");
        let (mut last, mut distinct, mut dups, mut dup_example) = (None::<Vec<u8>>, 0u64, 0u64, None);
        while let Some(key) = keys.next_key().map_err(io(&path))? {
            if last.as_ref() == Some(&key) {
                dups += 1;
                dup_example.get_or_insert_with(|| String::from_utf8_lossy(&key).into_owned());
                continue;
            }
            out.write_all(&(key.len() as u32).to_le_bytes()).and_then(|_| out.write_all(&key)).map_err(io(&path))?;
            distinct += 1;
            last = Some(key);
        }
        out.flush().map_err(io(&path))?;
        let (resource, field, _, nulls) = &totals[k];
        let subject = format!("{resource}.{field} (key)");
        match (dups, nulls) {
            (0, 0) => report.push(true, subject, format!("{distinct} keys, each unique")),
            (0, n) => report.push(false, subject, format!("{n} records have no key")),
            (d, _) => report.push(false, subject, format!("{d} records repeat a key (e.g. {:?})", dup_example.unwrap_or_default())),
        }
        merged.insert(k, (path, distinct));
    }
    for (reference, key, subject) in checks {
        let (path, _) = &merged[&key];
        let mut keys = BufReader::new(File::open(path).map_err(io(path))?);
        // A reference column may be checked against two targets: merge it again then.
        let Some(values) = outcome[reference].take() else {
            report.push(false, subject, "declared twice; checked once");
            continue;
        };
        let (checked, dangling, examples) = join(values, &mut keys).map_err(io(path))?;
        let nulls = totals[reference].3;
        let null_note = if nulls > 0 { format!(" ({nulls} null, not references)") } else { String::new() };
        if dangling == 0 {
            report.push(true, subject, format!("{checked} references{null_note}, all resolve"));
        } else {
            report.push(
                false,
                subject,
                format!("{dangling} of {checked} references{null_note} resolve to no record, e.g. {}", examples.join(", ")),
            );
        }
    }
    Ok(report)
}

/// Merge-joins sorted reference values against sorted distinct keys: (values checked,
/// values with no key, a few of them).
fn join(mut values: Merged, keys: &mut impl Read) -> io::Result<(u64, u64, Vec<String>)> {
    let mut key = read_key(keys)?;
    let (mut checked, mut dangling, mut examples) = (0u64, 0u64, Vec::new());
    while let Some(v) = values.next_key()? {
        checked += 1;
        while key.as_ref().is_some_and(|k| *k < v) {
            key = read_key(keys)?;
        }
        if key.as_ref() != Some(&v) {
            dangling += 1;
            let example = format!("{:?}", String::from_utf8_lossy(&v));
            // Values come sorted: a repeated one is the last example.
            if examples.len() < EXAMPLES && examples.last() != Some(&example) {
                examples.push(example);
            }
        }
    }
    Ok((checked, dangling, examples))
}

/// Opens the stored file `name` of the snapshot (confined to it), decrypted when it is
/// an age file.
fn open_stored(dir: &ConfinedDir, identity: Option<&Identities>, name: &str) -> Result<Box<dyn Read>, String> {
    let file = BufReader::new(dir.open_file(name).map_err(|e| e.to_string())?);
    if !name.ends_with(AGE_SUFFIX) {
        return Ok(Box::new(file));
    }
    let identity = identity.ok_or("it is encrypted; pass --identity KEY to check its relations")?;
    Ok(Box::new(identity.decrypt(file).map_err(|e| e.to_string())?))
}

/// Runs `read` over a file's bytes, loose or inside its tar part, decrypted on the way
/// when stored encrypted. Names that would leave the snapshot directory are refused.
fn with_file(
    dir: &ConfinedDir,
    identity: Option<&Identities>,
    f: &FileEntry,
    read: impl FnOnce(&mut dyn Read) -> Result<(), String>,
) -> Result<(), String> {
    let inside = |name: &str| !name.is_empty() && Path::new(name).components().all(|c| matches!(c, Component::Normal(_)));
    match &f.archive {
        None if inside(&f.path) => read(&mut open_stored(dir, identity, &f.path)?),
        Some(part) if inside(part) => {
            let mut archive = tar::Archive::new(open_stored(dir, identity, part)?);
            for entry in archive.entries().map_err(|e| e.to_string())? {
                let mut entry = entry.map_err(|e| e.to_string())?;
                if entry.path().map_err(|e| e.to_string())?.to_string_lossy() == f.path {
                    return read(&mut entry);
                }
            }
            Err(format!("not found in {part}"))
        }
        _ => Err("its name leaves the snapshot directory".into()),
    }
}

/// Calls `each(i, value)` for field `fields[i]` of every record of the file (by its
/// name: `.avro`, `.csv` or `.jsonl`, optionally `.gz`). A value is its text (numbers as
/// decimal text), `None` for null.
fn each_value(
    path: &str,
    raw: &mut dyn Read,
    fields: &[String],
    mut each: impl FnMut(usize, Option<Vec<u8>>) -> Result<(), String>,
) -> Result<(), String> {
    let plain: Box<dyn Read + '_> = match path.strip_suffix(".gz") {
        Some(_) => Box::new(flate2::read::MultiGzDecoder::new(raw)),
        None => Box::new(raw),
    };
    let name = path.strip_suffix(".gz").unwrap_or(path);
    let missing = |f: &str| format!("has no field `{f}`");
    match name.rsplit_once('.').map(|(_, ext)| ext).unwrap_or("") {
        "avro" => {
            let reader = apache_avro::Reader::new(plain).map_err(|e| e.to_string())?;
            for record in reader {
                let apache_avro::types::Value::Record(values) = record.map_err(|e| e.to_string())? else {
                    return Err("holds a datum that is not a record".into());
                };
                for (i, field) in fields.iter().enumerate() {
                    let (_, v) = values.iter().find(|(n, _)| n == field).ok_or_else(|| missing(field))?;
                    each(i, avro_text(v))?;
                }
            }
        }
        "csv" => {
            let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(plain);
            let headers = reader.byte_headers().map_err(|e| e.to_string())?.clone();
            let at: Vec<usize> = fields
                .iter()
                .map(|f| headers.iter().position(|h| h == f.as_bytes()).ok_or_else(|| missing(f)))
                .collect::<Result<_, _>>()?;
            let mut record = csv::ByteRecord::new();
            while reader.read_byte_record(&mut record).map_err(|e| e.to_string())? {
                for (i, &col) in at.iter().enumerate() {
                    // CSV writes null as an empty cell.
                    let v = record.get(col).filter(|v| !v.is_empty()).map(<[u8]>::to_vec);
                    each(i, v)?;
                }
            }
        }
        "jsonl" => {
            for line in BufReader::new(plain).lines() {
                let value: serde_json::Value = serde_json::from_str(&line.map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
                for (i, field) in fields.iter().enumerate() {
                    let v = value.get(field).ok_or_else(|| missing(field))?;
                    each(
                        i,
                        match v {
                            serde_json::Value::Null => None,
                            serde_json::Value::String(s) => Some(s.as_bytes().to_vec()),
                            other => Some(other.to_string().into_bytes()),
                        },
                    )?;
                }
            }
        }
        other => return Err(format!("unknown file type .{other}")),
    }
    Ok(())
}

fn avro_text(v: &apache_avro::types::Value) -> Option<Vec<u8>> {
    use apache_avro::types::Value as V;
    match v {
        V::Null => None,
        V::Union(_, inner) => avro_text(inner),
        V::String(s) | V::Enum(_, s) => Some(s.as_bytes().to_vec()),
        V::Uuid(u) => Some(u.to_string().into_bytes()),
        V::Int(n) => Some(n.to_string().into_bytes()),
        V::Long(n) => Some(n.to_string().into_bytes()),
        V::Bytes(b) | V::Fixed(_, b) => Some(b.clone()),
        other => Some(format!("{other:?}").into_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::{PluginEntry, ReferenceEntry};

    fn entry(name: &str, refs: &[&str]) -> ResourceEntry {
        let plugin = PluginEntry { name: name.into(), version: "1".into(), origin: "builtin".into(), sha256: String::new() };
        let mut entry = ResourceEntry::new(name, plugin, "null", crate::formats::Format::Avro, "null", false);
        entry.key = Some("guid".into());
        entry.references =
            refs.iter().map(|r| ReferenceEntry { field: format!("{r}_guid"), resource: r.to_string(), key: "guid".into() }).collect();
        entry
    }

    #[test]
    fn parents_come_first_whatever_the_job_order() {
        let entries = vec![
            entry("transactions", &["accounts", "members", "users"]),
            entry("goals", &["users", "accounts"]),
            entry("accounts", &["users", "members"]),
            entry("members", &["users"]),
            entry("users", &[]),
            entry("other", &["nowhere"]),
        ];
        assert_eq!(load_order(&entries), ["users", "members", "accounts", "transactions", "goals", "other"]);
        // A cycle still lists every resource once.
        let cycle = vec![entry("a", &["b"]), entry("b", &["a"])];
        assert_eq!(load_order(&cycle), ["a", "b"]);
    }
}
