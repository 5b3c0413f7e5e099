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

fn attachment(row: &Row) -> Result<Attachment> {
    Ok(Attachment {
        uid: row.get("uid")?,
        file_name: row.get("file_name")?,
        content_type: row.get("content_type")?,
        owner_type: row.get("owner_type")?,
        owner_id: row.get("owner_id")?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
    })
}

fn version(row: &Row) -> Result<Version> {
    Ok(Version {
        sid: row.get("sid")?,
        attachment_uid: row.get("attachment_uid")?,
        version: row.get("version")?,
        size: row.get("size")?,
        sha256: row.get("sha256")?,
        created_at: row.get("created_at")?,
        blob_key: row.get("blob_key")?,
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
    cx.emit(
        cx.record()
            .set("path", &s.path)
            .set("kind", kind)
            .set("uid", &a.uid)
            .set("file_name", &a.file_name)
            .set("content_type", &a.content_type)
            .set("owner_type", &a.owner_type)
            .set("owner_id", &a.owner_id)
            .set("created_at", a.created_at)
            .set("updated_at", a.updated_at)
            .set("sid", v.map(|v| v.sid.as_str()))
            .set("version", v.map(|v| v.version))
            .set("version_created_at", v.map(|v| v.created_at))
            .set("size", s.size as i64)
            .set("sha256", &s.sha256),
    )
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

#[cfg(test)]
mod tests {
    use ferry_pdk::mock::{MockHost, Value, row};

    use super::{ATTACHMENT_COLUMNS, Attachments, VERSION_COLUMNS};

    fn host() -> MockHost {
        MockHost::new()
            .table(
                "attachments",
                ATTACHMENT_COLUMNS,
                [row!["A2", "b.txt", "text/plain", "user", "U1", 3, 4], row!["A1", "report.pdf", "application/pdf", "user", "U1", 1, 2]],
            )
            .table(
                "attachment_versions",
                VERSION_COLUMNS,
                [row!["S2", "A1", 2, 3, "h2", 20, "k2"], row!["S1", "A1", 1, 2, "h1", 10, "k1"], row!["S9", "GONE", 1, 1, "h9", 10, "k9"]],
            )
            .blob("k1", b"v1")
            .blob("k2", b"v22")
    }

    #[test]
    fn indexes_every_version_then_the_version_list_and_warns_of_orphans() {
        let out = host().export::<Attachments>().unwrap();
        let got: Vec<String> = out.records.iter().map(|r| format!("{} {} {}", r["kind"], r["path"], r["version"])).collect();
        assert_eq!(
            got,
            [
                "version attachments/A1_report.pdf/S1_1 1",
                "version attachments/A1_report.pdf/S2_2 2",
                "versions attachments/versions/A1_report.pdf.json null",
                "versions attachments/versions/A2_b.txt.json null",
            ]
        );
        assert_eq!(out.records[1]["size"], Value::Long(3));
        assert_eq!(out.records[0]["version_created_at"], Value::Timestamp(10));
        assert_eq!(out.logs, ["warn: 1 attachment versions belong to no attachment and were not archived"]);
        let json = String::from_utf8(out.files[2].1.clone()).unwrap();
        assert!(json.contains(r#""created_at":"1970-01-01T00:00:00.000001Z""#), "{json}");
    }

    #[test]
    fn a_version_whose_size_is_not_an_integer_names_the_table_row_and_column() {
        let err = host()
            .table("attachment_versions", VERSION_COLUMNS, [row!["S1", "A1", 1, "2 bytes", "h1", 10, "k1"]])
            .export::<Attachments>()
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "bad data: table `attachment_versions`, row sid \"S1\", column `size`: text \"2 bytes\" is not an integer; \
             read it as an Option or a Cell, or fix the source"
        );
    }
}
