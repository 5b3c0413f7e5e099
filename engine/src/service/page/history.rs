//! The history table: filter by status, search by name, pages; a row alone for the
//! script to swap in when a run finishes.

use axum::extract::{Path, State};
use axum::response::Html;
use serde::{Deserialize, Serialize};

use super::error::PageError;
use super::form::PageQuery;
use super::session::AdminSession;
use super::templates::{self, value};
use super::views::{SnapshotRow, attachment_versions};
use crate::catalog::{Catalog, RequestRecord, SnapshotStatus};
use crate::service::error::ApiError;
use crate::service::routes::snapshots::{check_id, lookup};
use crate::service::routes::views::snapshot_view;
use crate::service::state::AppState;

/// Rows per page.
const PER_PAGE: usize = 20;
/// Most requests searched by name (newest first): the history is filtered in memory,
/// and each row of the page shown reads its manifest (for the attachment versions).
const MAX_SEARCHED: u64 = 10_000;
const MAX_QUERY: usize = 200;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// all, pending, in_progress, completed, failed or deleted.
    status: Option<String>,
    /// Part of the name, any case.
    q: Option<String>,
    page: Option<usize>,
    /// The request just made (highlighted, with a notice).
    created: Option<String>,
    /// `deleted` after a delete.
    notice: Option<String>,
}

/// A status filter tab.
#[derive(Serialize)]
struct Tab {
    value: &'static str,
    label: &'static str,
    current: bool,
    href: String,
}

const FILTERS: [(&str, &str); 5] =
    [("all", "All"), ("completed", "Completed"), ("in_progress", "In progress"), ("failed", "Failed"), ("pending", "Pending")];

fn filter(status: Option<&str>) -> Result<Option<&'static str>, PageError> {
    match status.unwrap_or("all") {
        "" | "all" => Ok(None),
        "deleted" => Ok(Some("deleted")),
        s => FILTERS.iter().find(|(v, _)| *v == s && *v != "all").map(|(v, _)| Some(*v)).ok_or_else(|| {
            PageError::invalid("status", format!("{s:?} is not a status; use all, completed, in_progress, failed, pending or deleted"))
        }),
    }
}

/// `/?status=..&q=..&page=..` with the empty parts left out.
fn href(status: &str, q: &str, page: usize) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    if status != "all" {
        s.append_pair("status", status);
    }
    if !q.is_empty() {
        s.append_pair("q", q);
    }
    if page > 1 {
        s.append_pair("page", &page.to_string());
    }
    let query = s.finish();
    if query.is_empty() { "/".into() } else { format!("/?{query}") }
}

/// The row of request `r` (its snapshot's manifest read for the attachment versions).
fn row(c: &Catalog, r: RequestRecord) -> Result<SnapshotRow, ApiError> {
    let s = match &r.snapshot_id {
        Some(sid) => Some(c.get(sid)?),
        None => None,
    };
    let versions = s
        .as_ref()
        .filter(|s| s.status == SnapshotStatus::Completed && s.deleted_at.is_none())
        .and_then(|s| std::fs::read(s.path.join("manifest.json")).ok())
        .and_then(|m| serde_json::from_slice::<serde_json::Value>(&m).ok())
        .map(|m| attachment_versions(&m));
    Ok(SnapshotRow::new(&snapshot_view(r, s.as_ref(), None), versions))
}

pub async fn page(
    State(state): State<AppState>,
    admin: AdminSession,
    PageQuery(q): PageQuery<HistoryQuery>,
) -> Result<Html<String>, PageError> {
    let status = filter(q.status.as_deref())?;
    let search = q.q.unwrap_or_default().trim().chars().take(MAX_QUERY).collect::<String>();
    let page = q.page.unwrap_or(1);
    if page == 0 || page > 100_000 {
        return Err(PageError::invalid("page", format!("{page} is out of range; pages start at 1")));
    }
    let needle = search.to_lowercase();
    let st = state.clone();
    let (rows, total, schedules) = state
        .db(move |c| {
            let (all, _) = c.requests(status, 0, MAX_SEARCHED)?;
            let matching: Vec<RequestRecord> = all.into_iter().filter(|r| r.name.to_lowercase().contains(&needle)).collect();
            let total = matching.len();
            let rows = matching.into_iter().skip((page - 1) * PER_PAGE).take(PER_PAGE).map(|r| row(c, r)).collect::<Result<Vec<_>, _>>()?;
            // The configured schedules, their next runs and last slot (as the API lists them).
            let schedules = crate::service::schedule::views(&st.config.schedules, c, &st.clock)?;
            Ok((rows, total, schedules))
        })
        .await?;
    let current = status.unwrap_or("all");
    let tabs: Vec<Tab> =
        FILTERS.iter().map(|&(value, label)| Tab { value, label, current: value == current, href: href(value, &search, 1) }).collect();
    let pages = total.div_ceil(PER_PAGE).max(1);
    let created = q.created.as_deref().and_then(|id| rows.iter().find(|r| r.id == id)).map(|r| r.name.clone());
    let notice = match (&created, q.notice.as_deref()) {
        (Some(name), _) => Some(format!("Snapshot \u{201c}{name}\u{201d} requested. It runs in the background; its row follows it.")),
        (None, Some("deleted")) => Some("Snapshot deleted. Its record stays in the history.".to_string()),
        _ => None,
    };
    templates::render(
        "history.html",
        minijinja::context! {
            title => "Snapshots",
            nav => "history",
            user => admin.session.token_name,
            csrf => admin.session.csrf,
            rows => value(&rows),
            total,
            tabs => value(&tabs),
            status => current,
            search => search.clone(),
            page,
            pages,
            first => (page - 1) * PER_PAGE + 1,
            last => ((page - 1) * PER_PAGE + PER_PAGE).min(total),
            prev => (page > 1).then(|| href(current, &search, page - 1)),
            next => (page < pages).then(|| href(current, &search, page + 1)),
            created => q.created,
            notice,
            schedules => value(&schedules),
        },
    )
}

/// One row of the table, as the history renders it (the script swaps it in).
pub async fn row_fragment(State(state): State<AppState>, _admin: AdminSession, Path(id): Path<String>) -> Result<Html<String>, PageError> {
    check_id(&id)?;
    let row = state
        .db(move |c| {
            let (r, _) = lookup(c, &id)?;
            row(c, r)
        })
        .await?;
    templates::render("row.html", minijinja::context! { row => value(&row) })
}
