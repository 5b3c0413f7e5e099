//! The new-snapshot form: job, name, description, resources, window, content. Its
//! estimate is the API's (`static/page.js` asks as the choices change); sending it calls
//! the API's create.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};

use super::error::PageError;
use super::form::{Fields, PageQuery, SessionForm};
use super::session::AdminSession;
use super::templates::{self, value};
use super::views::JobForm;
use crate::service::error::ApiError;
use crate::service::extract::{Admin, JsonBody};
use crate::service::jobs::ServiceJob;
use crate::service::routes::snapshots;
use crate::service::routes::views::{ContentChoice, CreateSnapshot};
use crate::service::state::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewQuery {
    /// The job selected first.
    job: Option<String>,
}

/// What was chosen, to show the form again after a refusal.
#[derive(Debug, Default, Serialize)]
struct Chosen {
    job: String,
    name: String,
    description: String,
    resources: Vec<String>,
    months: Option<String>,
    content: Option<String>,
}

fn render(state: &AppState, admin: &AdminSession, chosen: &Chosen, error: Option<String>) -> Result<Html<String>, PageError> {
    let jobs: Vec<JobForm> = state.jobs.list.iter().map(JobForm::new).collect();
    templates::render(
        "new.html",
        minijinja::context! {
            title => "New snapshot",
            nav => "new",
            user => admin.session.token_name.clone(),
            csrf => admin.session.csrf.clone(),
            jobs => value(&jobs),
            chosen => value(chosen),
            error,
        },
    )
}

pub async fn form(
    State(state): State<AppState>,
    admin: AdminSession,
    PageQuery(q): PageQuery<NewQuery>,
) -> Result<Html<String>, PageError> {
    let job = q.job.filter(|j| state.jobs.get(j).is_some()).or_else(|| state.jobs.list.first().map(|j| j.name.clone()));
    render(&state, &admin, &Chosen { job: job.unwrap_or_default(), ..Chosen::default() }, None)
}

/// The form's fields as the API's request body. Each job has its own inputs
/// (`resources.<job>`, ...), so the form works without its script too.
fn body(job: &ServiceJob, chosen: &Chosen) -> Result<CreateSnapshot, PageError> {
    let text = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    // The window applies only when a chosen resource has one.
    let windowed = job.resources.iter().any(|r| r.windowed && chosen.resources.contains(&r.name));
    let months = match chosen.months.as_deref() {
        Some("all") if windowed => Some(serde_json::Value::from("all")),
        Some(m) if windowed => Some(serde_json::Value::from(
            m.parse::<u32>().map_err(|_| PageError::invalid("months", format!("{m:?} is not a window; pick 1, 2, 3, 6, 12, 24 or all")))?,
        )),
        _ => None,
    };
    let content = match chosen.content.as_deref() {
        None => None,
        Some("tables") => Some(ContentChoice::Tables),
        Some("attachments") => Some(ContentChoice::Attachments),
        Some("both") => Some(ContentChoice::Both),
        Some(c) => return Err(PageError::invalid("content", format!("{c:?} is not a content; pick tables, attachments or both"))),
    };
    Ok(CreateSnapshot {
        job: job.name.clone(),
        name: text(&chosen.name),
        description: text(&chosen.description),
        resources: Some(chosen.resources.clone()),
        months,
        content,
    })
}

fn chosen(fields: &Fields) -> Chosen {
    let job = fields.get("job").unwrap_or_default().to_string();
    Chosen {
        name: fields.get("name").unwrap_or_default().to_string(),
        description: fields.get("description").unwrap_or_default().to_string(),
        resources: fields.all(&format!("resources.{job}")),
        months: fields.get(&format!("months.{job}")).map(str::to_string),
        content: fields.get(&format!("content.{job}")).map(str::to_string),
        job,
    }
}

pub async fn submit(State(state): State<AppState>, SessionForm { session, fields }: SessionForm) -> Result<Response, PageError> {
    let chosen = chosen(&fields);
    let Some(job) = state.jobs.get(&chosen.job) else {
        let message = format!("job {:?} is not configured; pick one of: {}", chosen.job, state.jobs.names().join(", "));
        let html = render(&state, &session, &chosen, Some(message))?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, html).into_response());
    };
    if chosen.resources.is_empty() {
        let html = render(&state, &session, &chosen, Some("pick at least one resource".into()))?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, html).into_response());
    }
    let request = body(job, &chosen)?;
    match snapshots::create(State(state.clone()), Admin(session.caller()), JsonBody(request)).await {
        Ok(created) => {
            // The API answers 202 with `Location: /api/v1/snapshots/<id>`.
            let id = created.headers().get(header::LOCATION).and_then(|l| l.to_str().ok()).and_then(|l| l.rsplit('/').next());
            let to = id.map_or_else(|| "/".to_string(), |id| format!("/?created={id}"));
            Ok(Redirect::to(&to).into_response())
        }
        Err(e @ (ApiError::InvalidField { .. } | ApiError::BadRequest(_))) => {
            let html = render(&state, &session, &chosen, Some(e.to_string()))?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, html).into_response())
        }
        Err(e) => Err(e.into()),
    }
}
