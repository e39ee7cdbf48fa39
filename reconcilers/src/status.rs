//! Per-service status for the agent's API: desired against observed
//! replicas, health, restarts, the last error and the reasons of the last
//! plan. Shaped like the per-service entry of
//! `../shared/design/status-api.md` (camelCase, the same phase and health
//! words); the agent embeds these in its own response types.

use std::time::{SystemTime, UNIX_EPOCH};

use berth_spec::compose::model::Project;
use serde::Serialize;

use crate::desired;
use crate::execute::{Outcome, Report};
use crate::observed::{ContainerState, Health, Observed, ObservedContainer};
use crate::plan::{Plan, PlanOptions, Reason, ReasonKind};
use crate::restart::{RestartCondition, RestartPolicy};

/// `Pending|Starting|Running|Completed|Restarting|Exited|Failed|Stopped`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ServicePhase {
    /// No container yet.
    Pending,
    /// Created, or running but not yet healthy.
    Starting,
    Running,
    /// A one-shot that exited 0.
    Completed,
    /// Exited, with a restart planned (backoff).
    Restarting,
    /// Exited non-zero and not restarted (policy, or attempts used up).
    Failed,
    /// Exited on its own with code 0 under a policy that keeps it
    /// running, or partly running.
    Exited,
    /// Stopped by the user, or zero replicas wanted.
    Stopped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SyncStatus {
    /// The last plan had nothing to do for the service.
    Synced,
    OutOfSync,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum HealthStatus {
    Healthy,
    Progressing,
    Degraded,
    Missing,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageStatus {
    #[serde(rename = "ref")]
    pub reference: String,
    pub digest: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LastExit {
    pub code: i64,
    pub at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaStatus {
    pub id: String,
    pub name: String,
    pub number: Option<u32>,
    /// `created|running|exited|dead|unknown`.
    pub state: &'static str,
    pub exit_code: Option<i64>,
    /// `none|starting|healthy|unhealthy`.
    pub health: &'static str,
    pub started_at: Option<String>,
    pub restart_count: u32,
    pub config_hash: Option<String>,
}

/// One planned step for the service, with its reasons.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedStep {
    pub action: &'static str,
    pub target: String,
    pub reasons: Vec<Reason>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceStatus {
    pub name: String,
    pub phase: ServicePhase,
    pub sync: SyncStatus,
    pub health: HealthStatus,
    pub desired_replicas: u32,
    pub running_replicas: u32,
    /// Running and healthy (or without a healthcheck).
    pub ready_replicas: u32,
    pub completed_replicas: u32,
    /// Created from the current config and image.
    pub updated_replicas: u32,
    pub image: ImageStatus,
    /// The desired config hash (with the local image digest).
    pub config_hash: String,
    pub restart_policy: &'static str,
    pub restart_count: u32,
    pub last_exit: Option<LastExit>,
    pub last_error: Option<String>,
    pub replicas: Vec<ReplicaStatus>,
    /// The distinct reasons of the last plan's actions for this service.
    pub drift_reasons: Vec<ReasonKind>,
    pub plan: Vec<PlannedStep>,
}

/// The status of every declared service, in project order.
pub fn summarize(
    desired: &Project,
    observed: &Observed,
    plan: Option<&Plan>,
    report: Option<&Report>,
    options: &PlanOptions,
) -> Vec<ServiceStatus> {
    desired
        .services
        .iter()
        .map(|(name, service)| {
            let reference = desired::image_reference(&desired.name, name, service);
            let digest = observed.image_digest(&reference).map(str::to_string);
            let spec = desired::container_spec(
                desired,
                name,
                service,
                1,
                digest.as_deref(),
                &options.file_digests,
            );
            let config_hash = spec.config_hash().unwrap_or_default().to_string();
            let policy = RestartPolicy::from_service(service);
            let want = options
                .scale
                .get(name)
                .copied()
                .unwrap_or_else(|| desired::replicas(service));
            // Out of service (a start-first replacement waiting for its
            // gate, or the container it is replacing once switched): not
            // one of the service's replicas, whatever its health.
            let mut containers: Vec<&ObservedContainer> = observed
                .service_containers(&desired.name, name)
                .filter(|c| !c.standby)
                .collect();
            containers.sort_by_key(|c| (c.number(), c.name.clone()));
            let count = |f: &dyn Fn(&ObservedContainer) -> bool| {
                containers.iter().filter(|c| f(c)).count() as u32
            };
            let running = count(&|c| c.is_running());
            let ready =
                count(&|c| c.is_running() && matches!(c.health, Health::Healthy | Health::None));
            let completed = count(&|c| completed(c));
            let updated = count(&|c| c.config_hash() == Some(config_hash.as_str()));
            let steps: Vec<PlannedStep> = plan
                .map(|p| {
                    p.actions
                        .iter()
                        .filter(|a| a.service.as_deref() == Some(name.as_str()))
                        .map(|a| PlannedStep {
                            action: a.action.kind(),
                            target: a.action.target().to_string(),
                            reasons: a.reasons.clone(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            let mut drift: Vec<ReasonKind> = steps
                .iter()
                .flat_map(|s| s.reasons.iter().map(|r| r.kind))
                .collect();
            drift.sort();
            drift.dedup();
            let restarting = containers
                .iter()
                .any(|c| c.state == ContainerState::Restarting)
                || steps.iter().any(|s| {
                    s.action == "StartContainer"
                        && s.reasons.iter().any(|r| r.kind == ReasonKind::Exited)
                });
            let last_error = report
                .and_then(|r| {
                    r.results
                        .iter()
                        .filter(|x| x.service.as_deref() == Some(name.as_str()))
                        .find_map(|x| match &x.outcome {
                            Outcome::Failed { message, .. } => Some(message.clone()),
                            _ => None,
                        })
                })
                .or_else(|| containers.iter().find_map(|c| c.error.clone()));
            let last_exit = containers
                .iter()
                .filter_map(|c| match c.state {
                    ContainerState::Exited(code) => Some((c.finished_at, code)),
                    // Waiting to be restarted: the exit that caused it.
                    ContainerState::Restarting => Some((c.finished_at, c.last_exit_code?)),
                    _ => None,
                })
                .max_by_key(|(at, _)| *at)
                .map(|(at, code)| LastExit {
                    code,
                    at: at.map(rfc3339),
                });
            let phase = phase(&containers, want, running, ready, completed, restarting);
            let health = match phase {
                ServicePhase::Pending => HealthStatus::Missing,
                ServicePhase::Running | ServicePhase::Completed | ServicePhase::Stopped => {
                    HealthStatus::Healthy
                }
                ServicePhase::Starting => HealthStatus::Progressing,
                _ => HealthStatus::Degraded,
            };
            let health = if containers.iter().any(|c| c.health == Health::Unhealthy) {
                HealthStatus::Degraded
            } else {
                health
            };
            ServiceStatus {
                name: name.clone(),
                phase,
                sync: if steps.is_empty() {
                    SyncStatus::Synced
                } else {
                    SyncStatus::OutOfSync
                },
                health,
                desired_replicas: want,
                running_replicas: running,
                ready_replicas: ready,
                completed_replicas: completed,
                updated_replicas: updated,
                image: ImageStatus { reference, digest },
                config_hash,
                restart_policy: match policy.condition {
                    RestartCondition::No => "no",
                    RestartCondition::Always => "always",
                    RestartCondition::OnFailure => "on-failure",
                    RestartCondition::UnlessStopped => "unless-stopped",
                },
                restart_count: containers.iter().map(|c| c.restart_count).sum(),
                last_exit,
                last_error,
                replicas: containers.iter().map(|c| replica(c)).collect(),
                drift_reasons: drift,
                plan: steps,
            }
        })
        .collect()
}

fn completed(c: &ObservedContainer) -> bool {
    c.state == ContainerState::Exited(0) && !c.manually_stopped
}

fn phase(
    containers: &[&ObservedContainer],
    want: u32,
    running: u32,
    ready: u32,
    completed_count: u32,
    restarting: bool,
) -> ServicePhase {
    let total = containers.len() as u32;
    if want == 0 && running == 0 {
        return ServicePhase::Stopped;
    }
    if total == 0 {
        return ServicePhase::Pending;
    }
    if restarting {
        return ServicePhase::Restarting;
    }
    if running == 0 && completed_count == total {
        return ServicePhase::Completed;
    }
    if running == 0 && containers.iter().all(|c| c.manually_stopped) {
        return ServicePhase::Stopped;
    }
    if containers.iter().any(|c| {
        matches!(c.state, ContainerState::Exited(code) if code != 0) && !c.manually_stopped
    }) && running < want
    {
        return ServicePhase::Failed;
    }
    if running >= want && ready >= want {
        return ServicePhase::Running;
    }
    if containers.iter().any(|c| {
        c.state == ContainerState::Created || (c.is_running() && c.health == Health::Starting)
    }) {
        return ServicePhase::Starting;
    }
    ServicePhase::Exited
}

fn replica(c: &ObservedContainer) -> ReplicaStatus {
    let (state, exit_code) = match c.state {
        ContainerState::Created => ("created", None),
        ContainerState::Running => ("running", None),
        ContainerState::Restarting => ("restarting", None),
        ContainerState::Exited(code) => ("exited", Some(code)),
        ContainerState::Dead => ("dead", None),
        ContainerState::Unknown => ("unknown", None),
    };
    ReplicaStatus {
        id: c.id.clone(),
        name: c.name.clone(),
        number: c.number(),
        state,
        exit_code,
        health: match c.health {
            Health::None => "none",
            Health::Starting => "starting",
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
        },
        started_at: c.started_at.map(rfc3339),
        restart_count: c.restart_count,
        config_hash: c.config_hash().map(str::to_string),
    }
}

/// `2026-01-01T00:00:00Z` (UTC, whole seconds).
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn rfc3339_formats_utc() {
        let at = |s: u64| rfc3339(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(1_767_225_600), "2026-01-01T00:00:00Z");
        assert_eq!(at(951_782_400 + 3661), "2000-02-29T01:01:01Z");
    }
}
