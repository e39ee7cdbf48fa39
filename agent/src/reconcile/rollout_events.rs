//! Events from one reconcile's result: each action executed (with the
//! plan's reasons), the reconcile failing or recovering, and containers
//! that exited or were restarted since the previous observation (the
//! container-events watch triggers that observation at once).

use std::time::{Duration, SystemTime};

use berth_reconcilers::status::{ReplicaStatus, ServiceStatus};

use super::Shared;
use super::events_log::{EventLog, InvolvedObject, NewEvent, reason};
use super::status::RunResult;

/// How long a restarted container must have run before it counts as
/// recovered: a crash loop shows "running" between its restarts.
const RECOVERED_AFTER: Duration = Duration::from_secs(10);

pub fn run_events(
    shared: &Shared,
    project: &str,
    result: &RunResult,
    old: &[ServiceStatus],
    revision: Option<&str>,
) {
    let with_revision = |e: NewEvent| match revision {
        Some(r) => e.revision(r),
        None => e,
    };
    for step in result
        .steps
        .iter()
        .filter(|s| s.outcome.as_deref() == Some("done"))
    {
        let object = match step.action {
            "CreateContainer" | "StartContainer" | "StopContainer" | "RestartContainer"
            | "RemoveContainer" | "Recreate" => {
                InvolvedObject::container(project, step.service.as_deref(), &step.target)
            }
            _ => match &step.service {
                Some(s) => InvolvedObject::service(project, s),
                None => InvolvedObject::project(project),
            },
        };
        let reasons: Vec<String> = step
            .reasons
            .iter()
            .map(|r| format!("{}: {}", r.kind, r.message))
            .collect();
        let message = if reasons.is_empty() {
            format!("{} {}", step.action, step.target)
        } else {
            format!("{} {} ({})", step.action, step.target, reasons.join("; "))
        };
        shared.events.emit(with_revision(NewEvent::normal(
            action_reason(step.action),
            object,
            message,
        )));
    }
    let object = InvolvedObject::project(project);
    match &result.error {
        Some((kind, message)) => {
            shared.events.emit(with_revision(NewEvent::warning(
                reason::RECONCILE_FAILED,
                object,
                format!("{kind}: {message}"),
            )));
        }
        None => {
            shared.events.recover(
                &[reason::RECONCILE_FAILED],
                with_revision(NewEvent::normal(
                    reason::RECONCILE_SUCCEEDED,
                    object,
                    "the project reconciles again".into(),
                )),
            );
        }
    }
    if let Some(obs) = &result.observation {
        container_events(
            &shared.events,
            project,
            old,
            &obs.services,
            SystemTime::now(),
        );
    }
}

/// The action kinds as event reasons (already CamelCase).
fn action_reason(action: &'static str) -> &'static str {
    action
}

fn container_events(
    events: &EventLog,
    project: &str,
    old: &[ServiceStatus],
    new: &[ServiceStatus],
    now: SystemTime,
) {
    let before = |id: &str| -> Option<&ReplicaStatus> {
        old.iter()
            .flat_map(|s| s.replicas.iter())
            .find(|r| r.id == id)
    };
    let mut present = Vec::new();
    for service in new {
        for r in &service.replicas {
            present.push(r.name.clone());
            let object = InvolvedObject::container(project, Some(&service.name), &r.name);
            let prev = before(&r.id);
            let restarts = r.restart_count
                - prev.map_or(r.restart_count, |p| p.restart_count.min(r.restart_count));
            if restarts > 0 {
                events.emit(NewEvent::warning(
                    reason::CONTAINER_RESTARTED,
                    object.clone(),
                    format!(
                        "{} restarted ({} restart(s) in all){}",
                        r.name,
                        r.restart_count,
                        r.exit_code
                            .map(|c| format!("; it exited with code {c}"))
                            .unwrap_or_default()
                    ),
                ));
            }
            let exited_now = matches!(r.state, "exited" | "dead")
                && prev.is_none_or(|p| p.state == "running" || p.restart_count != r.restart_count);
            let failed = r.exit_code.is_some_and(|c| c != 0);
            if exited_now && failed {
                events.emit(NewEvent::warning(
                    reason::CONTAINER_EXITED,
                    object.clone(),
                    format!(
                        "{} exited with code {}",
                        r.name,
                        r.exit_code.unwrap_or_default()
                    ),
                ));
            }
            let settled = r.state == "running"
                && r.health != "unhealthy"
                && restarts == 0
                && r.started_at
                    .as_deref()
                    .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
                    .and_then(|t| now.duration_since(t).ok())
                    .is_some_and(|up| up >= RECOVERED_AFTER);
            if settled {
                events.recover(
                    &[reason::CONTAINER_RESTARTED, reason::CONTAINER_EXITED],
                    NewEvent::normal(
                        reason::CONTAINER_RECOVERED,
                        object,
                        format!(
                            "{} has been running for {}s",
                            r.name,
                            RECOVERED_AFTER.as_secs()
                        ),
                    ),
                );
            }
        }
    }
    // A container that is gone cannot recover: its warnings stop counting.
    events.clear_where(project, |o| {
        o.kind == "Container" && o.container.as_ref().is_some_and(|c| !present.contains(c))
    });
}

#[cfg(test)]
#[path = "rollout_events_tests.rs"]
mod tests;
