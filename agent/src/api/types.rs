//! The API's wire types: camelCase JSON, built from the store. Keeping them
//! apart from the store's structs lets either change without breaking the
//! other; the Compose model itself is embedded whole (`project`), serialized
//! as the spec crate defines it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use berth_spec::compose::model::Project;
use berth_spec::diag::Diagnostic;
use serde::Serialize;
use serde_json::Value;

use crate::state::{Condition, ProjectState};
use crate::timefmt::rfc3339;

pub const API_VERSION: &str = "berth/v1";

/// `/healthz` and `/readyz` bodies.
#[derive(Debug, Serialize)]
pub struct Health {
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Health {
    pub fn ok() -> Self {
        Self {
            status: "ok",
            error: None,
        }
    }

    pub fn unavailable(error: impl Into<String>) -> Self {
        Self {
            status: "unavailable",
            error: Some(error.into()),
        }
    }
}

/// A diagnostic as JSON, plus `text`: its one-line `file:line:col: ...` form.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DiagnosticView {
    pub severity: &'static str,
    pub file: String,
    pub line: u32,
    pub column: u32,
    pub key: String,
    pub message: String,
    pub hint: Option<String>,
    pub text: String,
}

impl From<&Diagnostic> for DiagnosticView {
    fn from(d: &Diagnostic) -> Self {
        Self {
            severity: if d.is_error() { "error" } else { "warning" },
            file: d.file.display().to_string(),
            line: d.line,
            column: d.column,
            key: d.key.clone(),
            message: d.message.clone(),
            hint: d.hint.clone(),
            text: d.to_string(),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProjectList {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub items: Vec<ProjectSummary>,
}

impl ProjectList {
    pub fn new<'a>(projects: impl Iterator<Item = &'a ProjectState>) -> Self {
        Self {
            api_version: API_VERSION,
            kind: "ProjectList",
            items: projects.map(ProjectSummary::new).collect(),
        }
    }
}

/// One row of the project list.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProjectSummary {
    pub name: String,
    pub key: String,
    pub dir: String,
    pub files: Vec<String>,
    pub revision: String,
    pub generation: u64,
    pub phase: &'static str,
    pub services: Vec<String>,
    pub service_count: usize,
    pub errors: Vec<DiagnosticView>,
    pub warnings: Vec<DiagnosticView>,
    pub last_loaded_at: String,
}

impl ProjectSummary {
    fn new(p: &ProjectState) -> Self {
        let services: Vec<String> = p
            .model()
            .map(|m| m.services.keys().cloned().collect())
            .unwrap_or_default();
        Self {
            name: p.name.clone(),
            key: p.key.clone(),
            dir: p.dir.display().to_string(),
            files: relative_files(&p.dir, &p.files),
            revision: p.revision.clone(),
            generation: p.generation,
            phase: p.phase().as_str(),
            service_count: services.len(),
            services,
            errors: p.errors().map(DiagnosticView::from).collect(),
            warnings: p.warnings().iter().map(DiagnosticView::from).collect(),
            last_loaded_at: rfc3339(p.last_loaded_at),
        }
    }
}

/// `GET /api/v1/projects/{name}`, in status-api.md's shape.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProjectDetail {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: Metadata,
    pub spec: Spec,
    pub status: Status,
    /// The last good normalized model, whole; null until one loads.
    pub project: Option<Project>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    pub name: String,
    pub key: String,
    pub generation: u64,
    pub created_at: String,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Spec {
    pub source: Source,
    pub files: Vec<String>,
    pub profiles: Vec<String>,
    pub suspend: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub path: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub observed_generation: u64,
    pub phase: &'static str,
    pub revision: String,
    pub last_loaded_at: String,
    /// Revision and generation of the model in `project` and `services`;
    /// behind `revision` while the latest edit is invalid.
    pub last_valid_revision: Option<String>,
    pub last_valid_generation: Option<u64>,
    pub conditions: Vec<ConditionView>,
    pub services: Vec<ServiceView>,
    pub errors: Vec<DiagnosticView>,
    pub warnings: Vec<DiagnosticView>,
    /// The first current error in one-line form; null when there is none.
    pub last_error: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConditionView {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub status: &'static str,
    pub reason: &'static str,
    pub message: String,
    pub last_transition_time: String,
    pub observed_generation: u64,
}

impl From<&Condition> for ConditionView {
    fn from(c: &Condition) -> Self {
        Self {
            kind: c.kind,
            status: if c.status { "True" } else { "False" },
            reason: c.reason,
            message: c.message.clone(),
            last_transition_time: rfc3339(c.last_transition_time),
            observed_generation: c.observed_generation,
        }
    }
}

/// A service as the model declares it (runtime fields come with containers).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceView {
    pub name: String,
    pub image: Option<String>,
    pub desired_replicas: u64,
}

impl ProjectDetail {
    pub fn new(p: &ProjectState) -> Self {
        let good = p.last_good.as_ref();
        let files = relative_files(&p.dir, &p.files);
        Self {
            api_version: API_VERSION,
            kind: "Project",
            metadata: Metadata {
                name: p.name.clone(),
                key: p.key.clone(),
                generation: p.generation,
                created_at: rfc3339(p.created_at),
                labels: BTreeMap::new(),
            },
            spec: Spec {
                source: Source {
                    kind: "dir",
                    path: p.dir.display().to_string(),
                },
                files,
                profiles: Vec::new(),
                suspend: false,
            },
            status: Status {
                observed_generation: p.generation,
                phase: p.phase().as_str(),
                revision: p.revision.clone(),
                last_loaded_at: rfc3339(p.last_loaded_at),
                last_valid_revision: good.map(|g| g.revision.clone()),
                last_valid_generation: good.map(|g| g.generation),
                conditions: vec![ConditionView::from(&p.spec_valid)],
                services: p.model().map(services).unwrap_or_default(),
                errors: p.errors().map(DiagnosticView::from).collect(),
                warnings: p.warnings().iter().map(DiagnosticView::from).collect(),
                last_error: p.errors().next().map(ToString::to_string),
            },
            project: p.model().cloned(),
        }
    }
}

/// Services in model order. Replicas are read from the serialized model
/// (`deploy.replicas`, then `scale`, else Compose's default 1) so that this
/// keeps working as the model gains those fields.
fn services(project: &Project) -> Vec<ServiceView> {
    let value = serde_json::to_value(project).unwrap_or(Value::Null);
    project
        .services
        .iter()
        .map(|(name, svc)| {
            let svc_value = value.get("services").and_then(|s| s.get(name));
            let replicas = svc_value.and_then(|v| {
                v.get("deploy")
                    .and_then(|d| d.get("replicas"))
                    .or_else(|| v.get("scale"))
                    .and_then(Value::as_u64)
            });
            ServiceView {
                name: name.clone(),
                image: svc.image.clone(),
                desired_replicas: replicas.unwrap_or(1),
            }
        })
        .collect()
}

fn relative_files(dir: &Path, files: &[PathBuf]) -> Vec<String> {
    files
        .iter()
        .map(|f| f.strip_prefix(dir).unwrap_or(f).display().to_string())
        .collect()
}

/// An error answer, shaped like a Kubernetes `Status`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiError {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub status: &'static str,
    pub reason: &'static str,
    pub message: String,
    pub code: u16,
}

impl ApiError {
    fn new(code: StatusCode, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            api_version: API_VERSION,
            kind: "Status",
            status: "Failure",
            reason,
            message: message.into(),
            code: code.as_u16(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NotFound", message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "Conflict", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (code, Json(self)).into_response()
    }
}
