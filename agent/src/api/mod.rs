//! The HTTP API (read-only for now; mutating endpoints will come with
//! authentication). Shapes follow `shared/design/status-api.md` as far as
//! they apply without containers; wire types live in [`types`] and are
//! built from the store, never the store's own structs.
//!
//! | route | answer |
//! |---|---|
//! | `GET /healthz` | `200 {"status":"ok"}` while the process runs |
//! | `GET /readyz` | `200` after the first scan, else `503 {status, error}` |
//! | `GET /api/v1/projects` | `ProjectList` of summaries |
//! | `GET /api/v1/projects/{name}` | one `Project`; 404 / 409 as `Status` |
//! | `GET /metrics` | Prometheus text format |

mod projects;
pub mod types;

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::metrics::Metrics;
use crate::state::SharedStore;
use types::{ApiError, Health};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: SharedStore,
    pub metrics: Arc<Metrics>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/projects", get(projects::list))
        .route("/api/v1/projects/{name}", get(projects::detail))
        .fallback(not_found)
        .with_state(state)
}

async fn healthz() -> Json<Health> {
    Json(Health::ok())
}

async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    if state.store.read().await.is_ready() {
        (StatusCode::OK, Json(Health::ok()))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health::unavailable(
                "the first scan of --dir has not finished",
            )),
        )
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    // Gauges are refreshed by the supervisor after each scan; rendering
    // only reads.
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
