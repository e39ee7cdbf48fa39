//! Revisions and rollbacks: `GET /api/v1/projects/{name}/history`,
//! `POST /api/v1/projects/{name}/rollback[?to=N&wait=false&timeout=2m]`,
//! and the wire types of `status.history[]` and `status.rollout`.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::actions::{actionable_key, control, wait_timeout};
use super::projects::lookup;
use super::types::{API_VERSION, ApiError, OperationView};
use crate::reconcile::revisions::{ActionRecord, Revision, SourceFile};
use crate::reconcile::rollout::RolloutState;
use crate::state::ProjectState;
use crate::timefmt::rfc3339;

/// One revision as `status.history[]` shows it (Flux's history entry,
/// with berth's number and state).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    /// What `rollback?to=` takes.
    pub number: u64,
    /// `rev-<number>`.
    pub snapshot: String,
    /// The project revision: `sha256:` over its files.
    pub revision: String,
    /// In git mode: the commit its files were read at, and its label
    /// (`main@sha1:<commit>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_revision: Option<String>,
    /// `Progressing|Applied|Failed|RolledBack`.
    pub state: &'static str,
    pub message: String,
    pub first_reconciled: String,
    pub last_reconciled: String,
    pub last_applied: Option<String>,
    /// `ReconciliationSucceeded` for an applied revision, else
    /// `ReconciliationFailed` (or `Progressing`).
    pub last_reconciled_status: &'static str,
    pub total_reconciliations: u64,
    pub duration: Option<String>,
    pub rolled_back_to: Option<u64>,
    /// Service -> config hash.
    pub config_hashes: BTreeMap<String, String>,
}

impl From<&Revision> for HistoryEntry {
    fn from(r: &Revision) -> Self {
        use crate::reconcile::revisions::RevisionState as S;
        Self {
            number: r.number,
            snapshot: format!("rev-{}", r.number),
            revision: r.source.digest.clone(),
            commit: r.source.commit.clone(),
            source_revision: r.source.revision.clone(),
            state: r.state.as_str(),
            message: r.message.clone(),
            first_reconciled: r.created_at.clone(),
            last_reconciled: r.updated_at.clone(),
            last_applied: r.last_applied_at.clone(),
            last_reconciled_status: match r.state {
                S::Applied => "ReconciliationSucceeded",
                S::Progressing => "Progressing",
                S::Failed | S::RolledBack => "ReconciliationFailed",
            },
            total_reconciliations: r.reconciliations,
            duration: r
                .duration_ms
                .map(|ms| humantime::format_duration(Duration::from_millis(ms)).to_string()),
            rolled_back_to: r.rolled_back_to,
            config_hashes: r.config_hashes.clone(),
        }
    }
}

/// One revision in `GET .../history`: the entry plus where it came from
/// and what its apply did.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryDetail {
    #[serde(flatten)]
    pub entry: HistoryEntry,
    pub source_dir: String,
    pub files: Vec<SourceFile>,
    pub commit: Option<String>,
    /// Config and secret files -> digest (content is not kept).
    pub file_digests: BTreeMap<String, String>,
    pub actions: Vec<ActionRecord>,
    /// The revision's services, by name (the whole model is kept on disk,
    /// 0600, and not served: it holds environment values).
    pub services: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryList {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub project: String,
    /// The revision running now.
    pub applied_revision: Option<u64>,
    /// Newest first.
    pub items: Vec<HistoryDetail>,
}

/// `status.rollout`: the desired (files) and applied revisions, a pin,
/// a block, the gate in progress.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutView {
    /// The files' revision number, once recorded.
    pub desired_revision: Option<u64>,
    /// The revision running now.
    pub applied_revision: Option<u64>,
    /// A manual rollback holding the project on a revision.
    pub pinned: Option<PinView>,
    /// The files' revision was rolled back and is not retried until the
    /// files change (or `reconcile?force=true`).
    pub blocked: Option<BlockedView>,
    pub gate: Option<GateView>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PinView {
    pub revision: u64,
    pub since: String,
    pub message: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockedView {
    pub revision: u64,
    pub message: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GateView {
    pub revision: u64,
    pub services: Vec<String>,
    pub started_at: String,
    pub deadline: String,
    pub failure_action: &'static str,
    pub message: String,
}

impl RolloutView {
    pub fn new(p: &ProjectState) -> Self {
        let r: &RolloutState = &p.reconcile.rollout;
        Self {
            desired_revision: r.desired(p.last_good.as_ref()),
            applied_revision: r.in_place.as_ref().map(|i| i.number),
            pinned: r.pin.as_ref().map(|(pin, _)| PinView {
                revision: pin.number,
                since: pin.at.clone(),
                message: format!(
                    "rolled back by hand to rev-{}: held until the files change or POST .../resume",
                    pin.number
                ),
            }),
            blocked: r.blocked.as_ref().map(|b| BlockedView {
                revision: b.number,
                message: format!(
                    "{}; not retried until the files change or POST .../reconcile?force=true",
                    b.message
                ),
            }),
            gate: r.gate.as_ref().map(|g| GateView {
                revision: g.revision,
                services: g.services.clone(),
                started_at: rfc3339(g.started_at),
                deadline: rfc3339(g.deadline),
                failure_action: g.failure_action.as_str(),
                message: g.message.clone(),
            }),
        }
    }
}

pub fn history_entries(p: &ProjectState) -> Vec<HistoryEntry> {
    p.reconcile
        .rollout
        .history
        .iter()
        .map(HistoryEntry::from)
        .collect()
}

pub async fn history(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<HistoryList>, ApiError> {
    let control = control(&state)?;
    let applied = {
        let store = state.store.read().await;
        let p = lookup(&store, &name)?;
        p.reconcile.rollout.in_place.as_ref().map(|i| i.number)
    };
    let revisions = control
        .history(&name)
        .await
        .ok_or_else(|| ApiError::unavailable("this agent keeps no revisions"))?
        .map_err(|e| ApiError::internal(format!("cannot read the revisions: {e}")))?;
    Ok(Json(HistoryList {
        api_version: API_VERSION,
        kind: "RevisionHistory",
        project: name,
        applied_revision: applied,
        items: revisions
            .iter()
            .map(|r| HistoryDetail {
                entry: HistoryEntry::from(r),
                source_dir: r.source.dir.clone(),
                files: r.source.files.clone(),
                commit: r.source.commit.clone(),
                file_digests: r.file_digests.clone(),
                actions: r.actions.clone(),
                services: r.model.services.keys().cloned().collect(),
            })
            .collect(),
    }))
}

#[derive(Debug, Deserialize)]
pub struct RollbackQuery {
    /// A revision number (`rev-N` accepted); by default the last applied
    /// one before the revision in place.
    to: Option<String>,
    /// Wait for the rollback's reconcile (the default).
    wait: Option<bool>,
    timeout: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RollbackAnswer {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub project: String,
    pub requested_at: String,
    pub from: Option<u64>,
    pub to: u64,
    /// `Queued`, `Succeeded`, `Failed` or `Skipped`.
    pub result: &'static str,
    pub message: String,
    pub operation: Option<OperationView>,
}

fn parse_revision(text: &str) -> Result<u64, ApiError> {
    text.strip_prefix("rev-")
        .unwrap_or(text)
        .parse()
        .map_err(|_| {
            ApiError::bad_request(format!(
                "to={text:?}: expected a revision number (see GET .../history)"
            ))
        })
}

pub async fn rollback(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<RollbackQuery>,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<RollbackAnswer>), ApiError> {
    state.auth.check(&headers)?;
    let control = control(&state)?;
    let to = query.to.as_deref().map(parse_revision).transpose()?;
    let timeout = wait_timeout(query.timeout.as_deref())?;
    let key = actionable_key(&state, &name).await?;
    let (to, from, finished) = control
        .rollback(&key, to)
        .await
        .map_err(|(code, message)| match code {
            404 => ApiError::not_found(message),
            409 => ApiError::conflict(message),
            _ => ApiError::internal(message),
        })?;
    let answer = |result, message: String, operation| RollbackAnswer {
        api_version: API_VERSION,
        kind: "RollbackRequest",
        project: name.clone(),
        requested_at: rfc3339(SystemTime::now()),
        from,
        to,
        result,
        message,
        operation,
    };
    if query.wait == Some(false) {
        return Ok((
            StatusCode::ACCEPTED,
            Json(answer(
                "Queued",
                format!("rollback to rev-{to} queued"),
                None,
            )),
        ));
    }
    super::actions::wait_for_run(
        finished,
        timeout,
        &name,
        |message| format!("rev-{to}: {message}"),
        answer,
    )
    .await
}
