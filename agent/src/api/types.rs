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

use super::source::Source;
use crate::gitsync::status::SourceStatus;
use crate::reconcile::status::{
    OperationState, StepState, project_health, service_health, sync_status,
};
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
    /// Argo's two axes: does what runs match the spec, and is it well.
    pub sync: &'static str,
    pub health: &'static str,
    pub suspended: bool,
    pub services: Vec<String>,
    pub service_count: usize,
    /// Services healthy (running and ready, or completed) as last observed.
    pub ready_services: usize,
    pub errors: Vec<DiagnosticView>,
    pub warnings: Vec<DiagnosticView>,
    pub last_loaded_at: String,
    /// `main@sha1:<commit>` in git mode, else the files' digest.
    pub last_applied_revision: Option<String>,
    /// In git mode: the revision checked out when the folder was last read.
    pub source_revision: Option<String>,
    /// The first current error: the spec's, else the last reconcile's.
    pub last_error: Option<String>,
}

impl ProjectSummary {
    fn new(p: &ProjectState) -> Self {
        let services: Vec<String> = p
            .model()
            .map(|m| m.services.keys().cloned().collect())
            .unwrap_or_default();
        let ready_services = p
            .reconcile
            .services
            .iter()
            .filter(|s| service_health(s).0 == crate::reconcile::status::HealthStatus::Healthy)
            .count();
        Self {
            name: p.name.clone(),
            key: p.key.clone(),
            dir: p.dir.display().to_string(),
            files: relative_files(&p.dir, &p.files),
            revision: p.revision.clone(),
            generation: p.generation,
            phase: p.phase().as_str(),
            sync: sync_status(p).0.as_str(),
            health: project_health(p).0.as_str(),
            suspended: p.suspended,
            service_count: services.len(),
            services,
            ready_services,
            errors: p.errors().map(DiagnosticView::from).collect(),
            warnings: p.warnings().iter().map(DiagnosticView::from).collect(),
            last_loaded_at: rfc3339(p.last_loaded_at),
            last_applied_revision: applied_revision(p),
            source_revision: p.source_revision.clone(),
            last_error: last_error(p),
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
    /// The last good normalized model; null until one loads. Without the
    /// API token, environment values, build args and secret contents are
    /// hidden (`api::redact`).
    pub project: Option<serde_json::Value>,
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
pub struct Status {
    /// The generation the last reconcile (or decision not to) looked at;
    /// behind `metadata.generation` while a change waits for its reconcile.
    pub observed_generation: u64,
    pub phase: &'static str,
    pub sync: SyncView,
    pub health: HealthView,
    pub revision: String,
    pub last_loaded_at: String,
    /// Revision and generation of the model in `project` and `services`;
    /// behind `revision` while the latest edit is invalid.
    pub last_valid_revision: Option<String>,
    pub last_valid_generation: Option<u64>,
    /// `main@sha1:<commit>` in git mode (Flux's convention), else the
    /// files' digest.
    pub last_applied_revision: Option<String>,
    pub last_attempted_revision: Option<String>,
    /// In git mode: the revision checked out when the project's folder
    /// was last read (ahead of `lastAppliedRevision` while a newer
    /// commit's files are broken or being applied).
    pub source_revision: Option<String>,
    /// When the last manual trigger was taken up.
    pub last_handled_reconcile_at: Option<String>,
    pub last_reconcile_time: Option<String>,
    /// When the worker comes back by itself (a retry, a deferred
    /// restart); the periodic resync comes regardless.
    pub next_reconcile_time: Option<String>,
    pub observed_at: Option<String>,
    pub conditions: Vec<ConditionView>,
    /// The current operation, or the last one.
    pub operation: Option<OperationView>,
    /// The last operations that changed something or failed, newest
    /// first (at most 10).
    pub operations: Vec<OperationView>,
    /// The revisions kept (applied, failed, rolled back), newest first:
    /// what `POST .../rollback?to=N` takes.
    pub history: Vec<super::rollout::HistoryEntry>,
    /// Desired and applied revision, a pin, a block, the health gate.
    pub rollout: super::rollout::RolloutView,
    /// What a plan made against the last observation would still do:
    /// empty when in sync.
    pub pending: Vec<StepView>,
    /// Why the last trigger did nothing (suspended, no valid model...).
    pub skipped: Option<String>,
    pub services: Vec<ServiceView>,
    pub errors: Vec<DiagnosticView>,
    pub warnings: Vec<DiagnosticView>,
    /// The first current error in one-line form: the spec's, else the
    /// last reconcile's; null when there is none.
    pub last_error: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncView {
    pub status: &'static str,
    /// The revision applied last: `main@sha1:<commit>` in git mode, else
    /// the files' digest.
    pub revision: Option<String>,
    /// The files' digest (`sha256:`) of what the files say now, and of
    /// what was applied last.
    pub desired_digest: String,
    pub applied_digest: Option<String>,
    pub message: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthView {
    pub status: &'static str,
    pub message: String,
}

/// Argo CD's `operationState`, with the plan it ran.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationView {
    /// `Apply` or `Delete`.
    pub operation: &'static str,
    /// `Running|Succeeded|Failed`.
    pub phase: &'static str,
    pub trigger: &'static str,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub revision: String,
    pub generation: u64,
    pub message: String,
    pub plan: Vec<StepView>,
}

impl From<&OperationState> for OperationView {
    fn from(o: &OperationState) -> Self {
        Self {
            operation: o.kind.as_str(),
            phase: o.phase.as_str(),
            trigger: o.trigger.as_str(),
            started_at: rfc3339(o.started_at),
            finished_at: o.finished_at.map(rfc3339),
            revision: o.revision.clone(),
            generation: o.generation,
            message: o.message.clone(),
            plan: o.plan.iter().map(StepView::from).collect(),
        }
    }
}

/// One planned action with its reasons (`[{kind, message}]`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepView {
    pub service: Option<String>,
    pub action: &'static str,
    pub target: String,
    pub reasons: Vec<berth_reconcilers::Reason>,
    pub outcome: Option<String>,
}

impl From<&StepState> for StepView {
    fn from(s: &StepState) -> Self {
        Self {
            service: s.service.clone(),
            action: s.action,
            target: s.target.clone(),
            reasons: s.reasons.clone(),
            outcome: s.outcome.clone(),
        }
    }
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
            status: c.status.as_str(),
            reason: c.reason,
            message: c.message.clone(),
            last_transition_time: rfc3339(c.last_transition_time),
            observed_generation: c.observed_generation,
        }
    }
}

/// A service as the model declares it, and, once a reconcile observed it,
/// as it runs.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceView {
    pub name: String,
    pub image: Option<String>,
    pub desired_replicas: u64,
    #[serde(flatten)]
    pub observed: Option<ServiceObserved>,
}

/// A service as last observed (status-api.md's per-service entry).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceObserved {
    /// `Pending|Starting|Running|Completed|Restarting|Exited|Failed|Stopped`.
    pub phase: berth_reconcilers::status::ServicePhase,
    pub sync: berth_reconcilers::status::SyncStatus,
    /// `Healthy|Progressing|Degraded|Missing` (probes: see `/health`).
    pub health: &'static str,
    /// Why it is not healthy, when it is not.
    pub health_message: Option<String>,
    pub image_digest: Option<String>,
    /// Containers of the service, in any state.
    pub observed_replicas: u32,
    pub running_replicas: u32,
    pub ready_replicas: u32,
    pub completed_replicas: u32,
    pub updated_replicas: u32,
    pub config_hash: String,
    pub restart_policy: &'static str,
    pub restart_count: u32,
    pub last_exit: Option<berth_reconcilers::status::LastExit>,
    pub last_error: Option<String>,
    pub replicas: Vec<berth_reconcilers::status::ReplicaStatus>,
    pub drift_reasons: Vec<berth_reconcilers::ReasonKind>,
}

impl From<&berth_reconcilers::status::ServiceStatus> for ServiceObserved {
    fn from(s: &berth_reconcilers::status::ServiceStatus) -> Self {
        let (health, message) = service_health(s);
        Self {
            phase: s.phase,
            sync: s.sync,
            health: health.as_str(),
            health_message: message,
            image_digest: s.image.digest.clone(),
            observed_replicas: s.replicas.len() as u32,
            running_replicas: s.running_replicas,
            ready_replicas: s.ready_replicas,
            completed_replicas: s.completed_replicas,
            updated_replicas: s.updated_replicas,
            config_hash: s.config_hash.clone(),
            restart_policy: s.restart_policy,
            restart_count: s.restart_count,
            last_exit: s.last_exit.clone(),
            last_error: s.last_error.clone(),
            replicas: s.replicas.clone(),
            drift_reasons: s.drift_reasons.clone(),
        }
    }
}

impl ProjectDetail {
    /// `reveal`: the caller presented the API token (see `api::redact`).
    /// `source`: the git source, in git mode.
    pub fn new(p: &ProjectState, source: Option<&SourceStatus>, reveal: bool) -> Self {
        let good = p.last_good.as_ref();
        let r = &p.reconcile;
        let applied = applied_revision(p);
        let attempted = r
            .last_attempted_source_revision
            .clone()
            .or_else(|| r.last_attempted_revision.clone());
        let (sync, sync_message) = sync_status(p);
        let (health, health_message) = project_health(p);
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
                source: Source::new(p, source),
                files,
                profiles: Vec::new(),
                suspend: p.suspended,
            },
            status: Status {
                observed_generation: r.observed_generation,
                phase: p.phase().as_str(),
                sync: SyncView {
                    status: sync.as_str(),
                    revision: applied.clone(),
                    desired_digest: p.revision.clone(),
                    applied_digest: r.last_applied_revision.clone(),
                    message: sync_message,
                },
                health: HealthView {
                    status: health.as_str(),
                    message: health_message,
                },
                revision: p.revision.clone(),
                last_loaded_at: rfc3339(p.last_loaded_at),
                last_valid_revision: good.map(|g| g.revision.clone()),
                last_valid_generation: good.map(|g| g.generation),
                last_applied_revision: applied,
                last_attempted_revision: attempted,
                source_revision: p.source_revision.clone(),
                last_handled_reconcile_at: r.last_handled_reconcile_at.map(rfc3339),
                last_reconcile_time: r
                    .operation
                    .as_ref()
                    .and_then(|o| o.finished_at)
                    .map(rfc3339),
                next_reconcile_time: r.next_reconcile_at.map(rfc3339),
                observed_at: r.observed_at.map(rfc3339),
                conditions: [
                    &p.spec_valid,
                    &r.ready,
                    &r.reconciling,
                    &r.stalled,
                    &r.healthy,
                ]
                .into_iter()
                .chain(source.map(|s| &s.ready))
                .map(ConditionView::from)
                .collect(),
                operation: r.operation.as_ref().map(OperationView::from),
                operations: r.history.iter().map(OperationView::from).collect(),
                history: super::rollout::history_entries(p),
                rollout: super::rollout::RolloutView::new(p),
                pending: r.residual.iter().flatten().map(StepView::from).collect(),
                skipped: r.skipped.clone(),
                services: p
                    .model()
                    .map(|m| services(m, &r.services))
                    .unwrap_or_default(),
                errors: p.errors().map(DiagnosticView::from).collect(),
                warnings: p.warnings().iter().map(DiagnosticView::from).collect(),
                last_error: last_error(p),
            },
            project: p.model().and_then(|m| {
                let value = serde_json::to_value(m).ok()?;
                Some(if reveal {
                    value
                } else {
                    super::redact::redact_project(value)
                })
            }),
        }
    }
}

/// The revision applied last, as the status names it: the git label in
/// git mode, else the files' digest.
fn applied_revision(p: &ProjectState) -> Option<String> {
    let r = &p.reconcile;
    r.last_applied_source_revision
        .clone()
        .or_else(|| r.last_applied_revision.clone())
}

/// The spec's error first, else the last reconcile's.
fn last_error(p: &ProjectState) -> Option<String> {
    p.errors()
        .next()
        .map(ToString::to_string)
        .or_else(|| p.reconcile.last_error.clone())
}

/// Services in model order, each with its last observation when there is
/// one. Replicas are read from the serialized model (`deploy.replicas`,
/// then `scale`, else Compose's default 1) so that this keeps working as
/// the model gains those fields.
fn services(
    project: &Project,
    observed: &[berth_reconcilers::status::ServiceStatus],
) -> Vec<ServiceView> {
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
                observed: observed
                    .iter()
                    .find(|s| s.name == *name)
                    .map(ServiceObserved::from),
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

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "Unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "Forbidden", message)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            message,
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if code == StatusCode::UNAUTHORIZED {
            // RFC 6750: say which scheme is expected.
            let challenge = [(
                axum::http::header::WWW_AUTHENTICATE,
                "Bearer realm=\"berth\"",
            )];
            return (code, challenge, Json(self)).into_response();
        }
        (code, Json(self)).into_response()
    }
}
