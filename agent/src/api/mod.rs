//! The HTTP API. Shapes follow `shared/design/status-api.md`; wire types
//! live in [`types`] and are built from the store, never the store's own
//! structs.
//!
//! | route | answer |
//! |---|---|
//! | `GET /healthz` | `200 {"status":"ok"}` while the process runs |
//! | `GET /readyz` | `200` after the first scan, else `503 {status, error}` |
//! | `GET /api/v1/projects` | `ProjectList` of summaries |
//! | `GET /api/v1/projects/{name}` | one `Project`; 404 / 409 as `Status` |
//! | `GET /api/v1/projects/{name}/health` | `200` when every service runs and is healthy (or completed), else `503` with reasons; observed live |
//! | `POST /api/v1/projects/{name}/reconcile[?wait=true&timeout=2m]` | `202` queued; with `wait`, `200` and the operation once it ran |
//! | `POST /api/v1/projects/{name}/suspend`, `.../resume` | `200` and the project (resume also lifts a manual rollback's pin) |
//! | `GET /api/v1/projects/{name}/history` | the kept revisions, newest first |
//! | `POST /api/v1/projects/{name}/rollback[?to=N&wait=false&timeout=2m]` | pins revision N (default: the previous applied one), `200` once applied |
//! | `GET /api/v1/events[?since=&project=&watch=false]` | SSE stream of events (JSON list with `watch=false`) |
//! | `GET /api/v1/source` | the git source (`--git`): revision, last fetch, error, `SourceReady`; 404 with `--dir` |
//! | `POST /api/v1/source/refresh[?wait=true&timeout=2m]` | fetch now (a push hook); `202` queued, with `wait` `200` and `Updated`/`Unchanged`/`Failed`; also takes a forge's signed webhook (`webhook.rs`) |
//! | `GET /metrics` | Prometheus text format |
//!
//! Mutating calls (`POST`) need `Authorization: Bearer <token>`, the token
//! the agent read from `--token-file` or `BERTH_API_TOKEN`: without one
//! configured they answer 403 saying how to configure it; with a wrong or
//! missing header, 401. Reads stay open: the API listens on loopback or a
//! Unix socket unless `--allow-remote`.

mod actions;
mod auth;
mod events;
mod projects;
mod redact;
pub mod rollout;
pub mod source;
pub mod types;
mod webhook;

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::metrics::Metrics;
use crate::reconcile::Reconcilers;
use crate::state::SharedStore;
pub use auth::Auth;
use types::{ApiError, Health};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: SharedStore,
    pub metrics: Arc<Metrics>,
    /// The reconcile workers; `None` where nothing reconciles (some tests).
    pub control: Option<Arc<Reconcilers>>,
    pub auth: Arc<Auth>,
    /// The git syncer, in git mode.
    pub source: Option<Arc<crate::gitsync::Control>>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/projects", get(projects::list))
        .route("/api/v1/projects/{name}", get(projects::detail))
        .route("/api/v1/projects/{name}/health", get(projects::health))
        .route(
            "/api/v1/projects/{name}/reconcile",
            post(actions::reconcile),
        )
        .route("/api/v1/projects/{name}/suspend", post(actions::suspend))
        .route("/api/v1/projects/{name}/resume", post(actions::resume))
        .route("/api/v1/projects/{name}/history", get(rollout::history))
        .route("/api/v1/projects/{name}/rollback", post(rollout::rollback))
        .route("/api/v1/events", get(events::events))
        .route("/api/v1/source", get(source::get))
        .route("/api/v1/source/refresh", post(source::refresh))
        .fallback(not_found)
        .with_state(state)
}

async fn healthz() -> Json<Health> {
    Json(Health::ok())
}

async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let store = state.store.read().await;
    if store.is_ready() {
        return (StatusCode::OK, Json(Health::ok()));
    }
    let why = match store.source() {
        Some(s) if s.revision.is_none() => format!(
            "waiting for the first checkout of {}: {}",
            s.url,
            s.last_error.as_deref().unwrap_or("fetching")
        ),
        _ => "the first scan of --dir has not finished".to_owned(),
    };
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(Health::unavailable(why)),
    )
}

async fn metrics(State(state): State<AppState>) -> Response {
    // Gauges are refreshed by the supervisor after each scan; only the
    // commit's age moves with the clock.
    if let Some(source) = state.store.read().await.source() {
        state
            .metrics
            .observe_source(source, std::time::SystemTime::now());
    }
    match state.metrics.render() {
        Ok(text) => ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text).into_response(),
        Err(_) => ApiError::internal("cannot encode metrics").into_response(),
    }
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod rollout_tests;
