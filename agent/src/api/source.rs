//! `GET /api/v1/source` and `POST /api/v1/source/refresh`: the git
//! source's status, and a fetch now (for a CI job's push hook); and each
//! project's `spec.source`.

use std::time::SystemTime;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::actions::wait_timeout;
use super::types::{API_VERSION, ApiError, ConditionView};
use crate::gitsync::status::SourceStatus;
use crate::state::ProjectState;
use crate::timefmt::rfc3339;

/// The source as the API shows it (never with credentials: the URL is
/// stored redacted).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceView {
    pub api_version: &'static str,
    pub kind: &'static str,
    #[serde(rename = "type")]
    pub source_type: &'static str,
    pub url: String,
    #[serde(rename = "ref")]
    pub reference: String,
    pub path: String,
    pub interval: String,
    /// The checkout folder (the repository's worktree).
    pub checkout: String,
    /// What the projects are read from now: `main@sha1:<commit>`.
    pub revision: Option<String>,
    pub commit: Option<String>,
    pub commit_time: Option<String>,
    pub commit_subject: Option<String>,
    pub last_fetch_time: Option<String>,
    pub last_success_time: Option<String>,
    pub last_fetched_commit: Option<String>,
    pub last_error: Option<String>,
    pub consecutive_failures: u32,
    pub next_fetch_time: Option<String>,
    pub conditions: Vec<ConditionView>,
}

impl SourceView {
    pub fn new(s: &SourceStatus) -> Self {
        Self {
            api_version: API_VERSION,
            kind: "Source",
            source_type: "git",
            url: s.url.clone(),
            reference: s.reference.clone(),
            path: s.path.clone(),
            interval: humantime::format_duration(s.interval).to_string(),
            checkout: s.checkout.display().to_string(),
            revision: s.revision.clone(),
            commit: s.commit.clone(),
            commit_time: s.commit_time.map(rfc3339),
            commit_subject: s.commit_subject.clone(),
            last_fetch_time: s.last_fetch_at.map(rfc3339),
            last_success_time: s.last_success_at.map(rfc3339),
            last_fetched_commit: s.last_fetched_commit.clone(),
            last_error: s.last_error.clone(),
            consecutive_failures: s.consecutive_failures,
            next_fetch_time: s.next_fetch_at.map(rfc3339),
            conditions: vec![ConditionView::from(&s.ready)],
        }
    }
}

/// Where the project's files come from. `dir`: `path` is the folder. `git`:
/// `path` is the project's folder in the repository, `dir` its checkout.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
}

impl Source {
    pub fn new(p: &ProjectState, source: Option<&SourceStatus>) -> Self {
        let Some(s) = source else {
            return Self {
                kind: "dir",
                path: p.dir.display().to_string(),
                url: None,
                reference: None,
                interval: None,
                dir: None,
            };
        };
        let path = match (s.path.as_str(), p.key.as_str()) {
            ("", key) => key.to_owned(),
            (base, ".") => base.to_owned(),
            (base, key) => format!("{base}/{key}"),
        };
        Self {
            kind: "git",
            path,
            url: Some(s.url.clone()),
            reference: Some(s.reference.clone()),
            interval: Some(humantime::format_duration(s.interval).to_string()),
            dir: Some(p.dir.display().to_string()),
        }
    }
}

const NO_SOURCE: &str =
    "this agent watches a folder (--dir), not a git repository (--git): there is no source";

pub async fn get(State(state): State<AppState>) -> Result<Json<SourceView>, ApiError> {
    let store = state.store.read().await;
    store
        .source()
        .map(|s| Json(SourceView::new(s)))
        .ok_or_else(|| ApiError::not_found(NO_SOURCE))
}

#[derive(Debug, Deserialize)]
pub struct RefreshQuery {
    #[serde(default)]
    wait: bool,
    timeout: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RefreshAnswer {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub requested_at: String,
    /// `Queued` (no wait, or the wait timed out), `Updated` (a new
    /// commit is checked out; the projects it changed are being
    /// reconciled), `Unchanged`, or `Failed`.
    pub result: &'static str,
    pub revision: Option<String>,
    pub previous_revision: Option<String>,
    pub message: String,
}

pub async fn refresh(
    State(state): State<AppState>,
    Query(query): Query<RefreshQuery>,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<RefreshAnswer>), ApiError> {
    state.auth.check(&headers)?;
    let timeout = wait_timeout(query.timeout.as_deref())?;
    let control = state
        .source
        .as_ref()
        .ok_or_else(|| ApiError::not_found(NO_SOURCE))?;
    let answer = |result, revision, previous_revision, message: String| RefreshAnswer {
        api_version: API_VERSION,
        kind: "SourceRefresh",
        requested_at: rfc3339(SystemTime::now()),
        result,
        revision,
        previous_revision,
        message,
    };
    tracing::info!(wait = query.wait, "source refresh requested");
    let report = control
        .refresh()
        .ok_or_else(|| ApiError::unavailable("the git syncer is stopping"))?;
    if !query.wait {
        return Ok((
            StatusCode::ACCEPTED,
            Json(answer("Queued", None, None, "fetch queued".to_owned())),
        ));
    }
    match tokio::time::timeout(timeout, report).await {
        Ok(Ok(r)) => {
            let (result, message) = match (&r.error, r.changed) {
                (Some(e), _) => ("Failed", e.clone()),
                (None, true) => (
                    "Updated",
                    "new revision checked out; the projects it changed are being reconciled"
                        .to_owned(),
                ),
                (None, false) => ("Unchanged", "already at the remote's commit".to_owned()),
            };
            Ok((
                StatusCode::OK,
                Json(answer(result, r.revision, r.previous, message)),
            ))
        }
        Ok(Err(_)) => Err(ApiError::unavailable("the git syncer stopped")),
        Err(_) => Ok((
            StatusCode::ACCEPTED,
            Json(answer(
                "Queued",
                None,
                None,
                "still fetching; see GET /api/v1/source".to_owned(),
            )),
        )),
    }
}
