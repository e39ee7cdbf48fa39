//! `up --wait`: after the plan ran, wait until every container of the
//! selected services is ready, or fail naming the one that is not.
//!
//! Ready means: running and healthy where the service has a healthcheck,
//! running where it has none, and, for a one-shot, exited with code 0
//! (Compose fails `--wait` on an init container that completed, which
//! users report as a bug: docker/compose#10596). A container that exits
//! with another code, or reports unhealthy, fails the wait at once; so
//! does the timeout (`--wait-timeout`).

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use berth_reconcilers::observed::{ContainerState, Health, ObservedContainer};
use berth_reconcilers::{BackendError, ContainerRuntime};

use super::progress::Events;
use super::project::ComposeProject;

const POLL: Duration = Duration::from_millis(100);

/// Where a container stands, for `--wait`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready(&'static str),
    Pending,
    Failed(String),
}

pub fn readiness(c: &ObservedContainer) -> Readiness {
    match (c.state, c.health) {
        (ContainerState::Running, Health::Healthy) => Readiness::Ready("Healthy"),
        (ContainerState::Running, Health::None) => Readiness::Ready("Running"),
        (ContainerState::Running, Health::Starting) => Readiness::Pending,
        (ContainerState::Running, Health::Unhealthy) => {
            Readiness::Failed(format!("container {} is unhealthy", c.name))
        }
        (ContainerState::Exited(0), _) => Readiness::Ready("Exited"),
        (ContainerState::Exited(code), _) => {
            Readiness::Failed(format!("container {} exited ({code})", c.name))
        }
        // The shim brings it back (its restart policy said so); `--wait`
        // gives it until the timeout, as it does a starting healthcheck.
        (ContainerState::Created, _) | (ContainerState::Restarting, _) => Readiness::Pending,
        (ContainerState::Dead, _) | (ContainerState::Unknown, _) => Readiness::Failed(format!(
            "container {} is {}",
            c.name,
            c.error.as_deref().unwrap_or("dead")
        )),
    }
}

pub fn wait(
    cp: &ComposeProject,
    services: &[String],
    timeout: Option<Duration>,
    events: &Events,
) -> anyhow::Result<ExitCode> {
    let wanted: BTreeSet<&str> = services.iter().map(String::as_str).collect();
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut reported: BTreeSet<String> = BTreeSet::new();
    let mut announced = false;
    loop {
        let containers: Vec<ObservedContainer> = list(cp)?
            .into_iter()
            .filter(|c| !c.is_oneoff() && c.service().is_some_and(|s| wanted.contains(s)))
            .collect();
        if !announced {
            for c in &containers {
                events.container(&c.name, "Waiting");
            }
            announced = true;
        }
        let mut pending = false;
        for c in &containers {
            match readiness(c) {
                Readiness::Ready(what) => {
                    if reported.insert(c.name.clone()) {
                        events.container(&c.name, what);
                    }
                }
                Readiness::Pending => pending = true,
                Readiness::Failed(message) => {
                    events.container(&c.name, "Error");
                    eprintln!("berth: {message}");
                    return Ok(ExitCode::FAILURE);
                }
            }
        }
        if !pending {
            return Ok(ExitCode::SUCCESS);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            eprintln!(
                "berth: timeout waiting for the project's services to be running and healthy"
            );
            return Ok(ExitCode::FAILURE);
        }
        std::thread::sleep(POLL);
    }
}

fn list(cp: &ComposeProject) -> anyhow::Result<Vec<ObservedContainer>> {
    cp.engine
        .containers
        .list(cp.name())
        .map_err(|e: BackendError| anyhow::anyhow!(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(state: ContainerState, health: Health) -> ObservedContainer {
        ObservedContainer {
            id: "x".into(),
            name: "p-init-1".into(),
            labels: Default::default(),
            image: "busybox".into(),
            state,
            health,
            restart_count: 0,
            started_at: None,
            finished_at: None,
            manually_stopped: false,
            restart_policy_applied: false,
            last_exit_code: None,
            error: None,
            standby: false,
        }
    }

    #[test]
    fn one_shots_that_completed_are_ready_failures_are_not() {
        use ContainerState::*;
        assert_eq!(
            readiness(&container(Exited(0), Health::None)),
            Readiness::Ready("Exited")
        );
        assert_eq!(
            readiness(&container(Running, Health::None)),
            Readiness::Ready("Running")
        );
        assert_eq!(
            readiness(&container(Running, Health::Starting)),
            Readiness::Pending
        );
        assert_eq!(
            readiness(&container(Exited(3), Health::None)),
            Readiness::Failed("container p-init-1 exited (3)".into())
        );
        assert!(matches!(
            readiness(&container(Running, Health::Unhealthy)),
            Readiness::Failed(_)
        ));
    }
}
