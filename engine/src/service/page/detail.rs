//! One snapshot: its files and downloads, manifest, status history, how to check it;
//! and deleting it, after a confirmation.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Serialize;

use super::error::PageError;
use super::form::SessionForm;
use super::session::AdminSession;
use super::templates::value;
use super::views::{FileRow, SnapshotRow, Tool, attachment_versions, script, status_label};
use super::{format, origin, templates};
use crate::service::extract::{Admin, ApiPath};
use crate::service::routes::snapshots::check_id;
use crate::service::routes::views::{FileList, SnapshotView};
use crate::service::routes::{files, snapshots};
use crate::service::state::AppState;

/// Largest manifest shown in the page; the whole one is a download.
const MAX_MANIFEST_SHOWN: usize = 256 * 1024;

#[derive(Serialize)]
struct Change {
    status: String,
    label: &'static str,
    at: String,
    at_iso: String,
    detail: Option<String>,
}

/// The snapshot as the API shows it, and its files when it has them (else why not).
async fn fetch(state: &AppState, admin: &AdminSession, id: &str) -> Result<(SnapshotView, Result<FileList, String>), PageError> {
    check_id(id)?;
    let view = snapshots::show(State(state.clone()), admin.caller(), ApiPath(id.to_string())).await?.0;
    let files = if view.status == "completed" {
        files::list(State(state.clone()), admin.caller(), ApiPath(id.to_string())).await.map(|j| j.0).map_err(|e| e.to_string())
    } else {
        Err(String::new())
    };
    Ok((view, files))
}

/// The manifest's text, pretty, and its attachment versions.
async fn manifest(state: &AppState, snapshot_id: Option<String>) -> Option<(String, u64)> {
    let sid = snapshot_id?;
    let path = state.db(move |c| Ok(c.get(&sid)?.path.join("manifest.json"))).await.ok()?;
    let bytes = tokio::fs::read(path).await.ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let mut text = serde_json::to_string_pretty(&value).ok()?;
    if text.len() > MAX_MANIFEST_SHOWN {
        let cut = (0..=MAX_MANIFEST_SHOWN).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
        text.truncate(cut);
        text.push_str("\n… (cut here: download manifest.json for all of it)");
    }
    Some((text, attachment_versions(&value)))
}

/// What a request narrowed, for people: `resources users, transactions · 3 months · tables`.
fn narrowing(request: &serde_json::Value) -> String {
    let mut parts = Vec::new();
    if let Some(list) = request["resources"].as_array() {
        let names: Vec<&str> = list.iter().filter_map(|r| r.as_str()).collect();
        parts.push(format!("resources {}", names.join(", ")));
    }
    match &request["months"] {
        serde_json::Value::Number(n) if n.as_u64() == Some(1) => parts.push("1 month".into()),
        serde_json::Value::Number(n) => parts.push(format!("{n} months")),
        serde_json::Value::String(s) if s == "all" => parts.push("all months".into()),
        _ => {}
    }
    if let Some(c) = request["content"].as_str() {
        parts.push(if c == "both" { "tables and attachments".into() } else { c.to_string() });
    }
    if parts.is_empty() { "the whole job".into() } else { parts.join(" · ") }
}

pub async fn page(
    State(state): State<AppState>,
    admin: AdminSession,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Html<String>, PageError> {
    let (view, files) = fetch(&state, &admin, &id).await?;
    let (manifest_text, versions) = match manifest(&state, view.snapshot_id.clone().filter(|_| view.status == "completed")).await {
        Some((t, v)) => (Some(t), Some(v)),
        None => (None, None),
    };
    let row = SnapshotRow::new(&view, versions);
    let history: Vec<Change> = view
        .status_history
        .iter()
        .flatten()
        .map(|c| Change {
            status: c.status.clone(),
            label: status_label(&c.status),
            at: format::when(&c.at),
            at_iso: c.at.clone(),
            detail: c.detail.clone(),
        })
        .collect();
    let base = origin(&state, &headers);
    let (file_rows, curl, wget, files_error) = match &files {
        Ok(list) => (
            list.files.iter().map(FileRow::from).collect::<Vec<_>>(),
            Some(script(Tool::Curl, &base, &list.files)),
            Some(script(Tool::Wget, &base, &list.files)),
            None,
        ),
        Err(e) => (Vec::new(), None, None, Some(e.clone()).filter(|e| !e.is_empty())),
    };
    let stored = files.as_ref().ok().map(|l| l.stored.clone());
    let total_bytes = files.as_ref().ok().map(|l| format::bytes(l.files.iter().map(|f| f.bytes).sum()));
    templates::render(
        "detail.html",
        minijinja::context! {
            title => view.name.clone(),
            nav => "history",
            user => admin.session.token_name,
            csrf => admin.session.csrf,
            row => value(&row),
            history => value(&history),
            files => value(&file_rows),
            files_error,
            total_bytes,
            stored,
            curl,
            wget,
            manifest => manifest_text,
            resources => view.resources,
            request => narrowing(&view.request),
            snapshot_id => view.snapshot_id,
        },
    )
}

pub async fn confirm_delete(State(state): State<AppState>, admin: AdminSession, Path(id): Path<String>) -> Result<Html<String>, PageError> {
    let (view, files) = fetch(&state, &admin, &id).await?;
    let row = SnapshotRow::new(&view, None);
    let (count, size) = match &files {
        Ok(l) => (Some(l.files.len()), Some(format::bytes(l.files.iter().map(|f| f.bytes).sum()))),
        Err(_) => (None, None),
    };
    templates::render(
        "delete.html",
        minijinja::context! {
            title => format!("Delete {}", view.name),
            nav => "history",
            user => admin.session.token_name,
            csrf => admin.session.csrf,
            row => value(&row),
            count,
            size,
        },
    )
}

pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    SessionForm { session, .. }: SessionForm,
) -> Result<Response, PageError> {
    check_id(&id)?;
    snapshots::delete(State(state), Admin(session.caller()), ApiPath(id)).await?;
    Ok(Redirect::to("/?notice=deleted").into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn narrowings_read_as_sentences() {
        assert_eq!(narrowing(&serde_json::json!({"resources": null, "months": null, "content": null})), "the whole job");
        let n = serde_json::json!({"resources": ["users", "transactions"], "months": 3, "content": "both"});
        assert_eq!(narrowing(&n), "resources users, transactions · 3 months · tables and attachments");
        assert_eq!(narrowing(&serde_json::json!({"months": "all"})), "all months");
    }
}
