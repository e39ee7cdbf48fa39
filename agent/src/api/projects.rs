//! `GET /api/v1/projects` and `GET /api/v1/projects/{name}`.

use axum::Json;
use axum::extract::{Path, State};

use super::AppState;
use super::types::{ApiError, ProjectDetail, ProjectList};
use crate::state::Lookup;

pub async fn list(State(state): State<AppState>) -> Json<ProjectList> {
    let store = state.store.read().await;
    Json(ProjectList::new(store.projects()))
}

pub async fn detail(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<ProjectDetail>, ApiError> {
    let store = state.store.read().await;
    match store.find_by_name(&name) {
        Lookup::Found(project) => Ok(Json(ProjectDetail::new(project))),
        Lookup::NotFound => Err(ApiError::not_found(format!("project {name:?} not found"))),
        Lookup::Ambiguous(keys) => Err(ApiError::conflict(format!(
            "project name {name:?} is used by several folders: {}",
            keys.join(", ")
        ))),
    }
}
