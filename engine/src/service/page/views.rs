//! What the templates get: the API's views, formatted for people.

use serde::Serialize;

use super::format;
use crate::service::jobs::ServiceJob;
use crate::service::routes::views::{FileView, SnapshotView};
use crate::window::{ALLOWED_MONTHS, Months};

/// The label of an API status.
pub fn status_label(status: &str) -> &'static str {
    match status {
        "pending" => "Pending",
        "in_progress" => "In progress",
        "completed" => "Completed",
        "failed" => "Failed",
        "deleted" => "Deleted",
        _ => "Unknown",
    }
}

/// A run's live progress.
#[derive(Debug, Serialize)]
pub struct ProgressView {
    pub records: String,
    pub expected: Option<String>,
    pub bytes: String,
    pub eta: Option<String>,
    /// 0 to 100, when the expected records are known.
    pub percent: Option<u64>,
}

fn progress(v: &serde_json::Value) -> ProgressView {
    let records = v["records"].as_u64().unwrap_or(0);
    // Expected counts only what the source could count up front (not attachments' index
    // records): past it, the count alone is shown.
    let counted = v["expected_records"].as_u64();
    let expected = counted.filter(|&e| e >= records);
    ProgressView {
        records: format::count(records),
        expected: expected.map(format::count),
        bytes: format::bytes(v["bytes"].as_u64().unwrap_or(0)),
        eta: v["eta_seconds"].as_f64().map(format::duration),
        percent: counted.filter(|&e| e > 0).map(|e| (records.saturating_mul(100) / e).min(100)),
    }
}

/// One row of the history table (and the head of the detail panel).
#[derive(Debug, Serialize)]
pub struct SnapshotRow {
    pub id: String,
    pub job: String,
    pub name: String,
    pub description: Option<String>,
    pub status: String,
    pub status_label: &'static str,
    pub in_flight: bool,
    pub error: Option<String>,
    pub incomplete: bool,
    pub progress: Option<ProgressView>,
    pub records: Option<String>,
    pub files: Option<String>,
    pub parts: Option<String>,
    pub attachment_versions: Option<String>,
    pub size: Option<String>,
    pub created: String,
    pub created_at: String,
    pub completed: Option<String>,
    pub expires: Option<String>,
    pub as_of: Option<String>,
    pub requested_by: Option<String>,
    pub started: Option<String>,
    /// Deleting is refused while it runs, and once it is gone.
    pub deletable: bool,
}

impl SnapshotRow {
    /// `attachment_versions`: counted in the manifest, for a completed snapshot.
    pub fn new(v: &SnapshotView, attachment_versions: Option<u64>) -> SnapshotRow {
        let in_flight = matches!(v.status.as_str(), "pending" | "in_progress");
        SnapshotRow {
            id: v.id.clone(),
            job: v.job.clone(),
            name: v.name.clone(),
            description: v.description.clone(),
            status: v.status.clone(),
            status_label: status_label(&v.status),
            in_flight,
            error: v.error.as_ref().map(|e| e.message.clone()),
            incomplete: v.incomplete,
            progress: v.progress.as_ref().filter(|_| in_flight).map(progress),
            records: v.records.map(format::count),
            files: v.files.map(format::count),
            parts: v.parts.map(format::count),
            attachment_versions: attachment_versions.map(format::count),
            size: v.bytes.map(format::bytes),
            created: format::when(&v.created),
            created_at: v.created.clone(),
            // A failed run has a finish time and a record that expires, but no data to keep.
            completed: v.completed.as_deref().map(format::when).filter(|_| v.status != "failed"),
            expires: v.expires.as_deref().map(format::when).filter(|_| v.status == "completed"),
            as_of: v.as_of.as_deref().map(format::when),
            requested_by: v.requested_by.clone(),
            started: v.started.as_deref().map(format::when),
            deletable: v.status != "in_progress" && v.status != "deleted" && !(v.status == "failed" && v.snapshot_id.is_none()),
        }
    }
}

/// A file of the detail panel.
#[derive(Debug, Serialize)]
pub struct FileRow {
    pub name: String,
    pub kind: String,
    pub resource: Option<String>,
    pub size: String,
    pub bytes: u64,
    pub sha256: String,
    pub url: String,
}

impl From<&FileView> for FileRow {
    fn from(f: &FileView) -> FileRow {
        FileRow {
            name: f.name.clone(),
            kind: f.kind.clone(),
            resource: f.resource.clone(),
            size: format::bytes(f.bytes),
            bytes: f.bytes,
            sha256: f.sha256.clone(),
            url: f.url.clone(),
        }
    }
}

/// A shell script that downloads every file (resumable) into the current directory.
pub fn script(tool: Tool, base: &str, files: &[FileView]) -> String {
    let mut s = String::from("#!/bin/sh\n# Set FERRY_TOKEN to a reader or admin token (`ferry tokens create`).\nset -e\n");
    for f in files {
        let url = format!("{base}{}", f.url);
        let line = match tool {
            Tool::Curl => format!("curl -fL -C - -H \"Authorization: Bearer $FERRY_TOKEN\" -o '{}' '{url}'\n", f.name),
            Tool::Wget => format!("wget -c --header=\"Authorization: Bearer $FERRY_TOKEN\" -O '{}' '{url}'\n", f.name),
        };
        s.push_str(&line);
    }
    s
}

#[derive(Debug, Clone, Copy)]
pub enum Tool {
    Curl,
    Wget,
}

/// Attachment versions listed in a manifest (not their version lists).
pub fn attachment_versions(manifest: &serde_json::Value) -> u64 {
    let files = manifest["resources"].as_array().into_iter().flatten().filter_map(|r| r["files"].as_array()).flatten();
    files.filter(|f| f["kind"] == "attachment" && !f["path"].as_str().is_some_and(|p| p.contains("/versions/"))).count() as u64
}

/// A job as the new-snapshot form offers it.
#[derive(Debug, Serialize)]
pub struct JobForm {
    pub name: String,
    pub resources: Vec<ResourceChoice>,
    /// Whether any resource has a time window.
    pub windowed: bool,
    pub months: Vec<MonthChoice>,
    pub contents: Vec<ContentChoiceView>,
}

#[derive(Debug, Serialize)]
pub struct ResourceChoice {
    pub name: String,
    pub windowed: bool,
    pub attachments: bool,
}

#[derive(Debug, Serialize)]
pub struct MonthChoice {
    pub value: String,
    pub label: String,
    /// Wider than the job's window: the service would refuse it.
    pub disabled: bool,
    pub checked: bool,
}

#[derive(Debug, Serialize)]
pub struct ContentChoiceView {
    pub value: &'static str,
    pub label: &'static str,
    pub disabled: bool,
    pub checked: bool,
}

impl JobForm {
    pub fn new(job: &ServiceJob) -> JobForm {
        let windowed: Vec<_> = job.resources.iter().filter(|r| r.windowed).collect();
        // The narrowest window of the job's windowed resources bounds what may be asked.
        let limit = windowed.iter().map(|r| r.months.unwrap_or(Months::All)).fold(Months::All, |a, b| match (a, b) {
            (Months::All, x) | (x, Months::All) => x,
            (Months::Last(x), Months::Last(y)) => Months::Last(x.min(y)),
        });
        let allowed = |m: Months| match (m, limit) {
            (_, Months::All) => true,
            (Months::All, Months::Last(_)) => false,
            (Months::Last(x), Months::Last(y)) => x <= y,
        };
        let mut months: Vec<MonthChoice> = ALLOWED_MONTHS
            .iter()
            .map(|&m| MonthChoice {
                value: m.to_string(),
                label: if m == 1 { "1 month".into() } else { format!("{m} months") },
                disabled: !allowed(Months::Last(m)),
                checked: limit == Months::Last(m),
            })
            .collect();
        months.push(MonthChoice {
            value: "all".into(),
            label: "All".into(),
            disabled: !allowed(Months::All),
            checked: limit == Months::All,
        });
        let content = job.job.content;
        let contents = [("tables", "Tables"), ("attachments", "Attachments"), ("both", "Both")]
            .into_iter()
            .map(|(value, label)| {
                let own = format!("{content:?}").to_lowercase();
                ContentChoiceView { value, label, disabled: own != "both" && own != value, checked: own == value }
            })
            .collect();
        JobForm {
            name: job.name.clone(),
            resources: job
                .resources
                .iter()
                .map(|r| ResourceChoice { name: r.name.clone(), windowed: r.windowed, attachments: r.attachments })
                .collect(),
            windowed: !windowed.is_empty(),
            months,
            contents,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_counted_without_their_lists() {
        let m = serde_json::json!({"resources": [
            {"files": [{"path": "users.avro.gz"}]},
            {"files": [
                {"path": "attachments/A_x.pdf/S1_1", "kind": "attachment"},
                {"path": "attachments/A_x.pdf/S2_2", "kind": "attachment"},
                {"path": "attachments/versions/A_x.pdf.json", "kind": "attachment"}
            ]}
        ]});
        assert_eq!(attachment_versions(&m), 2);
        assert_eq!(attachment_versions(&serde_json::json!({})), 0);
    }
}
