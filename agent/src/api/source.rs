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

/// The bearer token, or (with `--git-webhook-secret-file`) a forge's
/// signed webhook.
pub async fn refresh(
    State(state): State<AppState>,
    Query(query): Query<RefreshQuery>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<RefreshAnswer>), ApiError> {
    let bearer = state.auth.check(&headers);
    let control = state.source.as_ref();
    let webhook = control
        .and_then(|c| c.webhook_secret())
        .is_some_and(|secret| super::webhook::verified(secret, &headers, &body));
    if !webhook {
        bearer?;
    }
    let timeout = wait_timeout(query.timeout.as_deref())?;
    let control = control.ok_or_else(|| ApiError::not_found(NO_SOURCE))?;
    let answer = |result, revision, previous_revision, message: String| RefreshAnswer {
        api_version: API_VERSION,
        kind: "SourceRefresh",
        requested_at: rfc3339(SystemTime::now()),
        result,
        revision,
        previous_revision,
        message,
    };
    tracing::info!(wait = query.wait, webhook, "source refresh requested");
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    use super::super::{AppState, Auth, router, webhook};
    use crate::gitsync::{Control, SyncReport};
    use crate::metrics::Metrics;
    use crate::state::Store;

    type Requests = tokio::sync::mpsc::Receiver<Option<tokio::sync::oneshot::Sender<SyncReport>>>;

    fn agent(secret: Option<&str>) -> (axum::Router, Requests) {
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        let state = AppState {
            store: Arc::new(tokio::sync::RwLock::new(Store::default())),
            metrics: Arc::new(Metrics::new()),
            control: None,
            auth: Arc::new(Auth::Token("api-token".into())),
            source: Some(Arc::new(Control::new(tx, secret.map(str::to_owned)))),
        };
        (router(state), rx)
    }

    async fn post(app: &axum::Router, headers: &[(&str, &str)], body: &str) -> StatusCode {
        let mut request = Request::post("/api/v1/source/refresh");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        app.clone()
            .oneshot(request.body(Body::from(body.to_owned())).unwrap())
            .await
            .unwrap()
            .status()
    }

    #[tokio::test]
    async fn refresh_takes_the_token_or_a_forges_signed_webhook() {
        let (app, mut requests) = agent(Some("hook-secret"));
        let body = r#"{"ref":"refs/heads/main"}"#;
        assert_eq!(post(&app, &[], body).await, StatusCode::UNAUTHORIZED);
        assert!(requests.try_recv().is_err(), "a refused call fetched");

        let bearer = [("authorization", "Bearer api-token")];
        assert_eq!(post(&app, &bearer, "").await, StatusCode::ACCEPTED);
        assert!(requests.try_recv().is_ok());

        let signed = webhook::signature_of("hook-secret", body.as_bytes());
        let github = [("x-hub-signature-256", signed.as_str())];
        assert_eq!(post(&app, &github, body).await, StatusCode::ACCEPTED);
        assert!(requests.try_recv().is_ok());
        // A signature of another body, or a wrong one, is refused.
        assert_eq!(post(&app, &github, "{}").await, StatusCode::UNAUTHORIZED);
        let gitlab = [("x-gitlab-token", "hook-secret")];
        assert_eq!(post(&app, &gitlab, body).await, StatusCode::ACCEPTED);
        // The webhook secret is not the API token.
        let wrong = [("authorization", "Bearer hook-secret")];
        assert_eq!(post(&app, &wrong, "").await, StatusCode::UNAUTHORIZED);

        // Without a secret configured, webhooks are not accepted.
        let (app, _requests) = agent(None);
        assert_eq!(post(&app, &gitlab, body).await, StatusCode::UNAUTHORIZED);
    }
}
