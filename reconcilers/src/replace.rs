//! Start-first replacement of one replica ([`crate::plan::Action::Replace`]):
//! the new container runs beside the old one, out of service, until it
//! passes its health gate; then traffic moves to it in one step and the
//! old one goes.
//!
//! 1. `create_standby` the new container (ports reserved, not forwarded;
//!    not in DNS) and `start` it;
//! 2. the gate: its healthcheck says `healthy`, or with none it runs for
//!    [`Gate::stable`] without exiting or restarting; `unhealthy`, an
//!    exit, a restart or [`Gate::timeout`] fail it;
//! 3. `promote`: the published ports and DNS names move from old to new
//!    at once (one nftables transaction on the real host);
//! 4. after [`DRAIN`], so connections opened just before the switch are
//!    answered, the old container is stopped (its grace period and stop
//!    signal) and removed.
//!
//! A failure in 1 (after the create) to 3 removes the new container and
//! leaves the old one serving, reported as [`Error::Gate`]
//! ([`crate::ErrorKind::GateFailed`]): the old container never stopped, so
//! nothing was lost, and an agent may roll the spec back.

use std::time::Duration;

use crate::container::ContainerSpec;
use crate::error::{Error, ErrorKind, GateFailure};
use crate::execute::Clock;
use crate::observed::{ContainerState, Health};
use crate::plan::{ContainerRef, Gate};
use crate::traits::ContainerRuntime;

/// Between the switch and the old container's stop signal: connections
/// the old one accepted just before the switch get their answers.
pub const DRAIN: Duration = Duration::from_secs(1);

pub(crate) struct Replacement<'a> {
    pub old: &'a ContainerRef,
    pub grace: Duration,
    pub signal: Option<&'a str>,
    pub spec: &'a ContainerSpec,
    pub gate: Gate,
}

pub(crate) fn replace(
    runtime: &dyn ContainerRuntime,
    clock: &dyn Clock,
    poll: Duration,
    r: &Replacement<'_>,
) -> Result<(), Error> {
    let new_id = runtime
        .create_standby(r.spec, &r.old.id)
        .map_err(|e| Error::backend("create", &r.spec.name, e))?;
    let passed = runtime
        .start(&new_id)
        .map_err(|e| GateFailure::NotStarted {
            message: format!("it did not start: {e}"),
        })
        .and_then(|()| wait_gate(runtime, clock, poll, &new_id, r.gate))
        .and_then(|()| {
            runtime
                .promote(&new_id, &r.old.id)
                .map_err(|e| GateFailure::NotStarted {
                    message: format!("its traffic could not be switched: {e}"),
                })
        });
    if let Err(failure) = passed {
        tracing::warn!(old = %r.old.name, new = %r.spec.name, %failure, "start-first replacement failed its health gate; removing the new container");
        let cleanup = discard(runtime, &new_id, r).err();
        return Err(Error::Gate {
            service: r.spec.service.clone(),
            old: r.old.name.clone(),
            new: r.spec.name.clone(),
            failure,
            cleanup,
        });
    }
    tracing::info!(old = %r.old.name, new = %r.spec.name, "traffic switched to the new container");
    clock.sleep(DRAIN);
    tolerate_missing(runtime.stop(&r.old.id, r.grace, r.signal))
        .map_err(|e| Error::backend("stop", &r.old.name, e))?;
    tolerate_missing(runtime.remove(&r.old.id))
        .map_err(|e| Error::backend("remove", &r.old.name, e))
}

/// Polls the new container until it passes or fails its gate.
fn wait_gate(
    runtime: &dyn ContainerRuntime,
    clock: &dyn Clock,
    poll: Duration,
    id: &str,
    gate: Gate,
) -> Result<(), GateFailure> {
    let began = clock.now();
    loop {
        let c = runtime.inspect(id).map_err(|e| GateFailure::NotStarted {
            message: format!("it cannot be inspected: {e}"),
        })?;
        let now = clock.now();
        match c.state {
            ContainerState::Exited(code) => return Err(GateFailure::Exited { code: Some(code) }),
            ContainerState::Dead => return Err(GateFailure::Exited { code: None }),
            ContainerState::Restarting => {
                return Err(GateFailure::Restarted {
                    count: c.restart_count.max(1),
                });
            }
            ContainerState::Running if c.restart_count > 0 => {
                return Err(GateFailure::Restarted {
                    count: c.restart_count,
                });
            }
            ContainerState::Running => match c.health {
                Health::Healthy => return Ok(()),
                Health::Unhealthy => return Err(GateFailure::Unhealthy),
                Health::Starting => {}
                Health::None => {
                    let since = c.started_at.unwrap_or(began);
                    if now.duration_since(since).unwrap_or_default() >= gate.stable {
                        return Ok(());
                    }
                }
            },
            ContainerState::Created | ContainerState::Unknown => {}
        }
        let waited = now.duration_since(began).unwrap_or_default();
        if waited >= gate.timeout {
            return Err(GateFailure::TimedOut { waited });
        }
        clock.sleep(
            poll.min(gate.timeout - waited)
                .max(Duration::from_millis(1)),
        );
    }
}

/// Stops and removes the new container of a failed replacement.
fn discard(runtime: &dyn ContainerRuntime, id: &str, r: &Replacement<'_>) -> Result<(), String> {
    tolerate_missing(runtime.stop(id, r.grace, r.signal))
        .and_then(|()| tolerate_missing(runtime.remove(id)))
        .map_err(|e| e.to_string())
}

fn tolerate_missing(result: Result<(), crate::BackendError>) -> Result<(), crate::BackendError> {
    match result {
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        other => other,
    }
}
