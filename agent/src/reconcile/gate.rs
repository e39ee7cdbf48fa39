//! The health gate after a new revision is applied: the services it
//! changed must become ready, and stay so, before the revision counts as
//! applied.
//!
//! Ready, per service: every replica running and healthy where a
//! healthcheck exists; running for a stable period where none does (a
//! process that dies within seconds of its start is not a success); a
//! one-shot that completed with 0. Broken at once: a replica unhealthy,
//! restarted since the gate began, exited non-zero, or waiting to be
//! restarted. Compose's `deploy.update_config` tunes it as Swarm does:
//! `monitor` is how long a ready service must stay ready, and
//! `failure_action` (`rollback`, `pause`, `continue`) what follows a
//! failure; the agent's default is `rollback`.
//!
//! Pure: observations and "now" come in, a verdict goes out. The worker
//! polls and acts (`rollout.rs`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use berth_reconcilers::status::{ServicePhase, ServiceStatus};
use berth_spec::compose::model::Project;

/// What follows a failed gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FailureAction {
    /// Keep the new revision as it is (Swarm's `continue`).
    Continue,
    /// Leave the new revision in place, failed, and do not retry it.
    Pause,
    /// Apply the previous good revision again.
    Rollback,
}

impl FailureAction {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "rollback" => Some(Self::Rollback),
            "pause" => Some(Self::Pause),
            "continue" => Some(Self::Continue),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rollback => "rollback",
            Self::Pause => "pause",
            Self::Continue => "continue",
        }
    }
}

/// The agent's defaults, from its flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateDefaults {
    /// How long the changed services have to become ready.
    pub timeout: Duration,
    /// How long a service without a healthcheck must stay running.
    pub stable: Duration,
    pub failure_action: FailureAction,
}

impl Default for GateDefaults {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(120),
            stable: Duration::from_secs(5),
            failure_action: FailureAction::Rollback,
        }
    }
}

/// The gate for one rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatePolicy {
    pub services: Vec<String>,
    pub timeout: Duration,
    pub stable: Duration,
    /// The longest `update_config.monitor` of the services, when any
    /// sets one: replaces `stable`, and applies to healthchecked services
    /// too.
    pub monitor: Option<Duration>,
    pub failure_action: FailureAction,
}

/// The policy for gating `services` of `model`: the strictest
/// `failure_action` among them (rollback > pause > continue) and their
/// longest `monitor`. An unknown `failure_action` is the default (the
/// loader accepts any string; Swarm knows only these three).
pub fn policy(model: &Project, services: Vec<String>, defaults: GateDefaults) -> GatePolicy {
    let configs: Vec<_> = services
        .iter()
        .filter_map(|s| model.services.get(s))
        .filter_map(|s| s.deploy.as_ref()?.update_config.as_ref())
        .collect();
    let failure_action = configs
        .iter()
        .filter_map(|c| c.failure_action.as_deref())
        .map(|a| FailureAction::parse(a).unwrap_or(defaults.failure_action))
        .max()
        .unwrap_or(defaults.failure_action);
    let monitor = configs
        .iter()
        .filter_map(|c| c.monitor.as_ref())
        .map(|d| d.0)
        .max();
    GatePolicy {
        services,
        timeout: defaults.timeout.max(monitor.unwrap_or_default()),
        stable: defaults.stable,
        monitor,
        failure_action,
    }
}

/// Where the gate stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Still waiting; why (one line per service not ready yet).
    Waiting(String),
    Passed,
    Failed(String),
}

/// One service as the gate judges it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Judged {
    Ready { healthchecked: bool },
    NotYet(String),
    Broken(String),
}

#[derive(Debug, Clone)]
pub struct Gate {
    policy: GatePolicy,
    deadline: Instant,
    /// Restart counts per container id at the first look.
    baseline: Option<BTreeMap<String, u32>>,
    ready_since: BTreeMap<String, Instant>,
}

impl Gate {
    pub fn new(policy: GatePolicy, now: Instant) -> Self {
        Self {
            deadline: now + policy.timeout,
            policy,
            baseline: None,
            ready_since: BTreeMap::new(),
        }
    }

    /// The same gate started again at `now` (a project resumed mid-gate:
    /// the time it spent suspended is not held against it).
    pub fn restarted(&self, now: Instant) -> Self {
        Self::new(self.policy.clone(), now)
    }

    /// Judges one observation of the project's services.
    pub fn step(&mut self, now: Instant, observed: &[ServiceStatus]) -> Verdict {
        let baseline = self.baseline.get_or_insert_with(|| {
            observed
                .iter()
                .flat_map(|s| s.replicas.iter())
                .map(|r| (r.id.clone(), r.restart_count))
                .collect()
        });
        let mut waiting = Vec::new();
        for name in &self.policy.services {
            let judged = match observed.iter().find(|s| &s.name == name) {
                // Dropped from the model meanwhile: nothing to wait for.
                None => Judged::Ready {
                    healthchecked: true,
                },
                Some(s) => judge(s, baseline),
            };
            match judged {
                Judged::Broken(why) => return Verdict::Failed(why),
                Judged::NotYet(why) => {
                    self.ready_since.remove(name);
                    waiting.push(why);
                }
                Judged::Ready { healthchecked } => {
                    let since = *self.ready_since.entry(name.clone()).or_insert(now);
                    let need = self.policy.monitor.unwrap_or(if healthchecked {
                        Duration::ZERO
                    } else {
                        self.policy.stable
                    });
                    let held = now.saturating_duration_since(since);
                    if held < need {
                        waiting.push(format!(
                            "{name}: ready, watching it for {} more",
                            humantime::format_duration(round(need - held))
                        ));
                    }
                }
            }
        }
        if waiting.is_empty() {
            return Verdict::Passed;
        }
        let why = waiting.join("; ");
        if now >= self.deadline {
            return Verdict::Failed(format!(
                "not ready within {}: {why}",
                humantime::format_duration(self.policy.timeout)
            ));
        }
        Verdict::Waiting(why)
    }
}

fn round(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs() + u64::from(d.subsec_nanos() > 0))
}

fn judge(s: &ServiceStatus, baseline: &BTreeMap<String, u32>) -> Judged {
    let name = &s.name;
    if s.desired_replicas == 0 {
        return Judged::Ready {
            healthchecked: true,
        };
    }
    for r in &s.replicas {
        if r.health == "unhealthy" {
            return Judged::Broken(format!("{name}: {} is unhealthy", r.name));
        }
        let before = baseline.get(&r.id).copied().unwrap_or(0);
        if r.restart_count > before {
            return Judged::Broken(format!(
                "{name}: {} restarted {} time(s) since the rollout{}",
                r.name,
                r.restart_count - before,
                exit(r.exit_code)
            ));
        }
    }
    match s.phase {
        ServicePhase::Completed => Judged::Ready {
            healthchecked: true,
        },
        ServicePhase::Failed | ServicePhase::Restarting | ServicePhase::Exited => {
            let code = s.last_exit.as_ref().map(|e| e.code);
            Judged::Broken(format!("{name}: exited{}", exit(code)))
        }
        ServicePhase::Stopped => Judged::Broken(format!("{name}: stopped")),
        ServicePhase::Running if s.ready_replicas >= s.desired_replicas => Judged::Ready {
            healthchecked: s.replicas.iter().any(|r| r.health != "none"),
        },
        _ => Judged::NotYet(format!(
            "{name}: {} ({}/{} ready)",
            match s.phase {
                ServicePhase::Pending => "no container yet",
                _ => "starting",
            },
            s.ready_replicas,
            s.desired_replicas
        )),
    }
}

fn exit(code: Option<i64>) -> String {
    code.map(|c| format!(" with code {c}")).unwrap_or_default()
}

#[cfg(test)]
#[path = "gate_tests.rs"]
mod tests;
