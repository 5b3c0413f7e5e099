//! `attachments`: every uploaded file with all of its versions (ION's "attachments";
//! the document-backup layout: `<UID>_<file name>/<SID>_<version>` plus a `versions/`
//! JSON per attachment).
//!
//! The bytes never enter the plugin: for each version it names the blob and the host
//! streams it into the snapshot, checking its size and sha256. The records are the
//! index: one per archived path (each version's file and each versions JSON), with the
//! attachment's original file name, owner and the sha256 of the archived bytes.

use ferry_pdk::blobs::{self, AttachmentVersion, Stored};
use ferry_pdk::prelude::*;

const ATTACHMENT_COLUMNS: &[&str] = &["uid", "file_name", "content_type", "owner_type", "owner_id", "created_at", "updated_at"];
const VERSION_COLUMNS: &[&str] = &["sid", "attachment_uid", "version", "size", "sha256", "created_at", "blob_key"];

struct Attachments;

struct Attachment {
    uid: String,
    file_name: String,
    content_type: String,
    owner_type: String,
    owner_id: String,
    created_at: i64,
    updated_at: i64,
}

struct Version {
    sid: String,
    attachment_uid: String,
    version: i64,
    size: i64,
    sha256: String,
    created_at: i64,
    blob_key: String,
}

fn text(row: &Row, table: &str, column: &str) -> Result<String> {
    match row.get(column)? {
        Cell::Text(t) => Ok(t.to_string()),
        other => Err(Error::bad_data(format!("table `{table}` column `{column}`: {} is not text", other.describe()))),
    }
}

fn integer(row: &Row, table: &str, column: &str) -> Result<i64> {
    row.get(column)?
        .integer()
        .ok_or_else(|| Error::bad_data(format!("table `{table}` column `{column}`: {} is not an integer", row.get(column).map(|c| c.describe()).unwrap_or_default())))
}

fn attachment(row: &Row) -> Result<Attachment> {
    let t = "attachments";
    Ok(Attachment {
        uid: text(row, t, "uid")?,
        file_name: text(row, t, "file_name")?,
        content_type: text(row, t, "content_type")?,
        owner_type: text(row, t, "owner_type")?,
        owner_id: text(row, t, "owner_id")?,
        created_at: integer(row, t, "created_at")?,
        updated_at: integer(row, t, "updated_at")?,
    })
}

fn version(row: &Row) -> Result<Version> {
    let t = "attachment_versions";
    Ok(Version {
        sid: text(row, t, "sid")?,
        attachment_uid: text(row, t, "attachment_uid")?,
        version: integer(row, t, "version")?,
        size: integer(row, t, "size")?,
        sha256: text(row, t, "sha256")?,
        created_at: integer(row, t, "created_at")?,
        blob_key: text(row, t, "blob_key")?,
    })
}

impl Resource for Attachments {
    fn describe() -> Describe {
        Describe::new("attachments", env!("CARGO_PKG_VERSION"))
            .about("uploaded files with every version, archived as <UID>_<file name>/<SID>_<version>; records index each archived path")
            .created("created_at")
            .reads("attachments", ATTACHMENT_COLUMNS)
            .reads("attachment_versions", VERSION_COLUMNS)
            .computed("path", Type::String)
            .computed("kind", Type::String)
            .computed("uid", Type::String)
            .computed("file_name", Type::String)
            .computed("content_type", Type::String)
            .computed("owner_type", Type::String)
            .computed("owner_id", Type::String)
            .computed("created_at", Type::TimestampMicros)
            .computed("updated_at", Type::TimestampMicros)
            .computed("sid", Type::String.or_null())
            .computed("version", Type::Long.or_null())
            .computed("version_created_at", Type::TimestampMicros.or_null())
            .computed("size", Type::Long)
            .computed("sha256", Type::String)
    }

    fn export(cx: &mut Export) -> Result<()> {
        let total = cx.count("attachment_versions", VERSION_COLUMNS, None)?;
        // Both tables in uid order (each has an index on it): a merge join that holds
        // one attachment's versions at a time, whatever the table sizes.
        let mut attachments = cx.read_ordered("attachments", ATTACHMENT_COLUMNS, "uid")?;
        let mut versions = cx.read_ordered("attachment_versions", VERSION_COLUMNS, "attachment_uid")?;
        let mut pending: Option<Version> = match versions.next()? {
            Some(row) => Some(version(&row)?),
            None => None,
        };
        let (mut done, mut orphans) = (0u64, 0u64);
        while let Some(row) = attachments.next()? {
            let a = attachment(&row)?;
            let mut mine = Vec::new();
            while let Some(v) = pending.take() {
                if v.attachment_uid.as_str() > a.uid.as_str() {
                    pending = Some(v);
                    break;
                }
                if v.attachment_uid == a.uid {
                    mine.push(v);
                } else {
                    orphans += 1; // a version whose attachment is gone
                }
                pending = match versions.next()? {
                    Some(row) => Some(version(&row)?),
                    None => None,
                };
            }
            mine.sort_by_key(|v| v.version);
            export_attachment(cx, &a, &mine)?;
            done += mine.len() as u64;
            cx.progress(done, Some(total));
        }
        while pending.take().is_some() {
            orphans += 1;
            pending = match versions.next()? {
                Some(row) => Some(version(&row)?),
                None => None,
            };
        }
        if orphans > 0 {
            cx.warn(&format!("{orphans} attachment versions belong to no attachment and were not archived"));
        }
        Ok(())
    }
}

fn export_attachment(cx: &mut Export, a: &Attachment, versions: &[Version]) -> Result<()> {
    let mut stored = Vec::with_capacity(versions.len());
    for v in versions {
        let size = u64::try_from(v.size)
            .map_err(|_| Error::bad_data(format!("attachment {} version {}: size {} is negative", a.uid, v.sid, v.size)))?;
        let s = blobs::copy(&AttachmentVersion {
            uid: a.uid.clone(),
            file_name: a.file_name.clone(),
            sid: v.sid.clone(),
            version: v.version,
            blob_key: v.blob_key.clone(),
            size,
            sha256: v.sha256.clone(),
        })?;
        record(cx, a, Some(v), &s, "version")?;
        stored.push(s);
    }
    let json = versions_json(a, versions, &stored);
    let s = blobs::write_versions(&a.uid, &a.file_name, json.as_bytes())?;
    record(cx, a, None, &s, "versions")
}

fn record(cx: &mut Export, a: &Attachment, v: Option<&Version>, s: &Stored, kind: &str) -> Result<()> {
    cx.record(|w| {
        w.string(&s.path);
        w.string(kind);
        w.string(&a.uid);
        w.string(&a.file_name);
        w.string(&a.content_type);
        w.string(&a.owner_type);
        w.string(&a.owner_id);
        w.long(a.created_at);
        w.long(a.updated_at);
        match v {
            Some(v) => {
                w.some();
                w.string(&v.sid);
                w.some();
                w.long(v.version);
                w.some();
                w.long(v.created_at);
            }
            None => {
                w.null();
                w.null();
                w.null();
            }
        }
        w.long(s.size as i64);
        w.string(&s.sha256);
        Ok(())
    })
}

/// The attachment and its versions, as the document-backup layout's `versions/` JSON.
fn versions_json(a: &Attachment, versions: &[Version], stored: &[Stored]) -> String {
    let mut out = String::from("{");
    out += &format!(
        "\"uid\":{},\"file_name\":{},\"content_type\":{},\"owner_type\":{},\"owner_id\":{},\"created_at\":{},\"updated_at\":{},\"versions\":[",
        json_string(&a.uid),
        json_string(&a.file_name),
        json_string(&a.content_type),
        json_string(&a.owner_type),
        json_string(&a.owner_id),
        json_string(&rfc3339(a.created_at)),
        json_string(&rfc3339(a.updated_at)),
    );
    for (i, (v, s)) in versions.iter().zip(stored).enumerate() {
        if i > 0 {
            out.push(',');
        }
        out += &format!(
            "{{\"sid\":{},\"version\":{},\"size\":{},\"sha256\":{},\"created_at\":{},\"path\":{}}}",
            json_string(&v.sid),
            v.version,
            s.size,
            json_string(&s.sha256),
            json_string(&rfc3339(v.created_at)),
            json_string(&s.path),
        );
    }
    out += "]}";
    out
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Microseconds since the epoch as RFC 3339 UTC (proleptic Gregorian, days-from-civil
/// inverted as in Howard Hinnant's `civil_from_days`).
fn rfc3339(micros: i64) -> String {
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:06}Z", sod / 3600, sod % 3600 / 60, sod % 60)
}

export_resource!(Attachments);
