//! The mutating calls: `POST /api/v1/projects/{name}/reconcile`,
//! `.../suspend` and `.../resume`. Each checks the bearer token first.

use std::time::{Duration, SystemTime};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::projects::lookup;
use super::types::{API_VERSION, ApiError, OperationView, ProjectDetail};
use crate::reconcile::{Reconcilers, Trigger};
use crate::timefmt::rfc3339;

/// The longest `?timeout=` honoured.
const MAX_WAIT: Duration = Duration::from_secs(3600);
const DEFAULT_WAIT: Duration = Duration::from_secs(120);

#[derive(Debug, Deserialize)]
pub struct ReconcileQuery {
    #[serde(default)]
    wait: bool,
    /// Apply the files' revision even if it was rolled back, and lift a
    /// manual rollback's pin.
    #[serde(default)]
    force: bool,
    /// How long `wait` waits (`30s`, `5m`); 2 minutes by default.
    timeout: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileAnswer {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub project: String,
    pub requested_at: String,
    /// `Queued` (no wait, or the wait timed out), `Succeeded`, `Failed`,
    /// or `Skipped`.
    pub result: &'static str,
    pub message: String,
    pub operation: Option<OperationView>,
}

pub(super) fn control(state: &AppState) -> Result<&std::sync::Arc<Reconcilers>, ApiError> {
    state
        .control
        .as_ref()
        .ok_or_else(|| ApiError::unavailable("this agent does not reconcile"))
}

/// A call's `?timeout=` (a humantime duration), capped at an hour.
pub(super) fn wait_timeout(timeout: Option<&str>) -> Result<Duration, ApiError> {
    match timeout {
        None => Ok(DEFAULT_WAIT),
        Some(t) => Ok(humantime::parse_duration(t)
            .map_err(|e| ApiError::bad_request(format!("timeout {t:?}: {e}")))?
            .min(MAX_WAIT)),
    }
}

/// The key of project `name` when a run may be asked of it: it exists, is
/// not suspended and is not being torn down.
pub(super) async fn actionable_key(state: &AppState, name: &str) -> Result<String, ApiError> {
    let store = state.store.read().await;
    let p = lookup(&store, name)?;
    if p.suspended {
        return Err(ApiError::conflict(format!(
            "project {name:?} is suspended: POST /api/v1/projects/{name}/resume first"
        )));
    }
    if p.deleting_since.is_some() {
        return Err(ApiError::conflict(format!(
            "project {name:?} is being torn down: its folder is gone"
        )));
    }
    Ok(p.key.clone())
}

pub async fn reconcile(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<ReconcileQuery>,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<ReconcileAnswer>), ApiError> {
    state.auth.check(&headers)?;
    let control = control(&state)?;
    let timeout = wait_timeout(query.timeout.as_deref())?;
    let key = actionable_key(&state, &name).await?;
    let requested_at = rfc3339(SystemTime::now());
    let answer = |result, message: String, operation| ReconcileAnswer {
        api_version: API_VERSION,
        kind: "ReconcileRequest",
        project: name.clone(),
        requested_at: requested_at.clone(),
        result,
        message,
        operation,
    };
    tracing::info!(project = %name, key, wait = query.wait, force = query.force, "manual reconcile requested");
    if query.force {
        control.force(&key).await;
    }
    let finished = control.request(&key, Trigger::Manual);
    if !query.wait {
        return Ok((
            StatusCode::ACCEPTED,
            Json(answer("Queued", "reconcile queued".to_owned(), None)),
        ));
    }
    wait_for_run(finished, timeout, &name, String::clone, answer).await
}

/// Waits up to `timeout` for a run the worker was asked for: 200 with what
/// it did (its operation's phase, and its message through `message`), or
/// 202 Queued while it still runs. Shared by the reconcile and rollback
/// calls.
pub(super) async fn wait_for_run<A>(
    finished: tokio::sync::oneshot::Receiver<crate::reconcile::Finished>,
    timeout: Duration,
    name: &str,
    message: impl Fn(&String) -> String,
    answer: impl Fn(&'static str, String, Option<OperationView>) -> A,
) -> Result<(StatusCode, Json<A>), ApiError> {
    match tokio::time::timeout(timeout, finished).await {
        Ok(Ok(f)) => {
            let (result, text) = match (&f.operation, &f.skipped) {
                (_, Some(why)) => ("Skipped", why.clone()),
                (Some(op), None) => (op.phase.as_str(), message(&op.message)),
                (None, None) => ("Skipped", String::new()),
            };
            let operation = f.operation.as_ref().map(OperationView::from);
            Ok((StatusCode::OK, Json(answer(result, text, operation))))
        }
        Ok(Err(_)) => Err(ApiError::internal(
            "the project's worker stopped before answering (the agent is shutting down?)",
        )),
        Err(_) => Ok((
            StatusCode::ACCEPTED,
            Json(answer(
                "Queued",
                format!(
                    "still running after {}; see GET /api/v1/projects/{name}",
                    humantime::format_duration(timeout)
                ),
                None,
            )),
        )),
    }
}

pub async fn suspend(
    state: State<AppState>,
    name: Path<String>,
    headers: HeaderMap,
) -> Result<Json<ProjectDetail>, ApiError> {
    set_suspended(state, name, headers, true).await
}

pub async fn resume(
    state: State<AppState>,
    name: Path<String>,
    headers: HeaderMap,
) -> Result<Json<ProjectDetail>, ApiError> {
    set_suspended(state, name, headers, false).await
}

async fn set_suspended(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    suspended: bool,
) -> Result<Json<ProjectDetail>, ApiError> {
    state.auth.check(&headers)?;
    let control = control(&state)?;
    let key = {
        let store = state.store.read().await;
        lookup(&store, &name)?.key.clone()
    };
    control
        .set_suspended(&key, suspended)
        .await
        .map_err(|e| ApiError::internal(format!("cannot save the suspension: {e}")))?;
    let store = state.store.read().await;
    // Authorized above.
    lookup(&store, &name).map(|p| Json(ProjectDetail::new(p, store.source(), true)))
}
