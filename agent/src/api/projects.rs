//! `GET /api/v1/projects`, `GET /api/v1/projects/{name}` and
//! `GET /api/v1/projects/{name}/health`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use serde::Serialize;

use super::AppState;
use super::types::{API_VERSION, ApiError, ProjectDetail, ProjectList};
use crate::reconcile::status::{HealthStatus, service_health};
use crate::state::{Lookup, ProjectState, Store};

pub async fn list(State(state): State<AppState>) -> Json<ProjectList> {
    let store = state.store.read().await;
    Json(ProjectList::new(store.projects()))
}

pub async fn detail(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Json<ProjectDetail>, ApiError> {
    // Anyone on the machine may read the status; only the token holder
    // sees the values it would hide.
    let reveal = state.auth.check(&headers).is_ok();
    let store = state.store.read().await;
    lookup(&store, &name).map(|p| Json(ProjectDetail::new(p, store.source(), reveal)))
}

/// The project called `name`: 404 when none is, 409 when several folders
/// use it.
pub(super) fn lookup<'a>(store: &'a Store, name: &str) -> Result<&'a ProjectState, ApiError> {
    match store.find_by_name(name) {
        Lookup::Found(project) => Ok(project),
        Lookup::NotFound => Err(ApiError::not_found(format!("project {name:?} not found"))),
        Lookup::Ambiguous(keys) => Err(ApiError::conflict(format!(
            "project name {name:?} is used by several folders: {}",
            keys.join(", ")
        ))),
    }
}

/// The body of `/health`, 200 or 503 alike.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProjectHealth {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub project: String,
    /// `Healthy|Progressing|Degraded|Missing|Unknown`.
    pub status: &'static str,
    /// One line per service that is not fine; empty when healthy.
    pub reasons: Vec<String>,
    pub services: Vec<ServiceHealth>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceHealth {
    pub name: String,
    pub status: &'static str,
    pub running_replicas: u32,
    pub ready_replicas: u32,
    pub desired_replicas: u32,
    pub reason: Option<String>,
}

/// For probes and load balancers: observes the project's containers now
/// (not as of the last reconcile) against its last good model. 200 when
/// every service runs and is ready (a one-shot that completed with 0
/// counts as fine), 503 with the reasons otherwise.
pub async fn health(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<ProjectHealth>), ApiError> {
    let key = {
        let store = state.store.read().await;
        lookup(&store, &name)?.key.clone()
    };
    let answer = |status: HealthStatus, reasons: Vec<String>, services: Vec<ServiceHealth>| {
        let code = if status == HealthStatus::Healthy {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        let body = ProjectHealth {
            api_version: API_VERSION,
            kind: "ProjectHealth",
            project: name.clone(),
            status: status.as_str(),
            reasons,
            services,
        };
        Ok((code, Json(body)))
    };
    let Some(control) = &state.control else {
        return answer(
            HealthStatus::Unknown,
            vec!["this agent does not observe containers".to_owned()],
            Vec::new(),
        );
    };
    let services = match control.observe_now(&key).await {
        None => {
            return answer(
                HealthStatus::Unknown,
                vec!["the project has no valid model yet: nothing to compare with".to_owned()],
                Vec::new(),
            );
        }
        Some(Err(e)) => {
            return answer(
                HealthStatus::Unknown,
                vec![format!("cannot observe the project: {e}")],
                Vec::new(),
            );
        }
        Some(Ok(services)) => services,
    };
    let mut worst = HealthStatus::Healthy;
    let mut reasons = Vec::new();
    let services = services
        .iter()
        .map(|s| {
            let (status, reason) = service_health(s);
            if status != HealthStatus::Healthy
                && (worst == HealthStatus::Healthy || status == HealthStatus::Degraded)
            {
                worst = status;
            }
            reasons.extend(reason.clone());
            ServiceHealth {
                name: s.name.clone(),
                status: status.as_str(),
                running_replicas: s.running_replicas,
                ready_replicas: s.ready_replicas,
                desired_replicas: s.desired_replicas,
                reason,
            }
        })
        .collect();
    answer(worst, reasons, services)
}
