//! Restart policies, applied by the shim when a container's process exits
//! (Docker's `HostConfig.RestartPolicy` and moby's `restartmanager`).
//!
//! [`RestartPolicy`] is what the container was created with;
//! [`Restarter`] is the shim's memory across one supervision (the restart
//! count and the current backoff) and makes the pure decision after each
//! exit:
//! - `no` never restarts; `always` always does; `unless-stopped` does
//!   unless the user stopped or killed the container; `on-failure[:N]`
//!   does after a non-zero exit (an OOM kill included), at most N times
//!   (0: no limit);
//! - a stop or kill through berth cancels the next restart whatever the
//!   policy (moby's `ExitOnNext`);
//! - the delay before a restart starts at 100 ms (or the policy's
//!   `initial_delay`, Compose's `deploy.restart_policy.delay`) and doubles
//!   with each restart, capped at one minute; a run of 10 s or more (or
//!   the policy's `reset_after`, Compose's `window`) starts it again from
//!   the initial delay. The restart count is not reset (as in Docker,
//!   only a start by the user resets it).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Docker's first backoff step.
pub const DEFAULT_INITIAL_DELAY: Duration = Duration::from_millis(100);
/// Docker's backoff cap.
pub const MAX_DELAY: Duration = Duration::from_secs(60);
/// A run this long resets the backoff (Docker's 10 s).
pub const DEFAULT_RESET_AFTER: Duration = Duration::from_secs(10);

/// When the shim restarts a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartCondition {
    #[default]
    No,
    Always,
    OnFailure,
    UnlessStopped,
}

impl RestartCondition {
    /// Docker's name (`HostConfig.RestartPolicy.Name`).
    pub fn as_str(self) -> &'static str {
        match self {
            RestartCondition::No => "no",
            RestartCondition::Always => "always",
            RestartCondition::OnFailure => "on-failure",
            RestartCondition::UnlessStopped => "unless-stopped",
        }
    }
}

/// A container's restart policy.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RestartPolicy {
    pub condition: RestartCondition,
    /// `on-failure`'s limit; 0 is no limit (Docker's `MaximumRetryCount`).
    #[serde(default)]
    pub maximum_retry_count: u32,
    /// The first delay before a restart, instead of 100 ms.
    #[serde(
        default,
        with = "crate::health::opt_nanos",
        skip_serializing_if = "Option::is_none"
    )]
    pub initial_delay: Option<Duration>,
    /// A run at least this long resets the backoff, instead of 10 s.
    #[serde(
        default,
        with = "crate::health::opt_nanos",
        skip_serializing_if = "Option::is_none"
    )]
    pub reset_after: Option<Duration>,
}

impl RestartPolicy {
    /// `docker run --restart`'s syntax: `no`, `always`, `unless-stopped`,
    /// `on-failure[:max-retries]`, with Docker's messages.
    pub fn parse(s: &str) -> Result<RestartPolicy, String> {
        let (name, count) = match s.split_once(':') {
            Some((n, c)) => (n, Some(c)),
            None => (s, None),
        };
        let condition = match name {
            "" | "no" => RestartCondition::No,
            "always" => RestartCondition::Always,
            "on-failure" => RestartCondition::OnFailure,
            "unless-stopped" => RestartCondition::UnlessStopped,
            other => {
                return Err(format!(
                    "invalid restart policy {other:?}: use no, always, unless-stopped or on-failure[:max-retries]"
                ));
            }
        };
        let maximum_retry_count = match count {
            None => 0,
            Some(_) if condition != RestartCondition::OnFailure => {
                return Err(format!(
                    "maximum retry count cannot be used with restart policy '{}'",
                    condition.as_str()
                ));
            }
            Some(c) => c
                .parse::<u32>()
                .map_err(|_| format!("invalid maximum retry count {c:?}: expected a number"))?,
        };
        Ok(RestartPolicy {
            condition,
            maximum_retry_count,
            ..Default::default()
        })
    }

    pub fn is_none(&self) -> bool {
        self.condition == RestartCondition::No
    }
}

/// How a run of the container ended, as far as the policy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExitFacts {
    pub exit_code: i32,
    pub oom_killed: bool,
    /// A stop or kill through berth reached this run (moby's
    /// `HasBeenManuallyStopped`).
    pub manually_stopped: bool,
    /// A stop, or a kill with the stop signal, asked that this exit be the
    /// last (moby's `ExitOnNext`).
    pub cancelled: bool,
    /// How long the run lasted.
    pub ran_for: Duration,
}

/// The shim's restart bookkeeping for one supervision.
#[derive(Debug, Clone)]
pub struct Restarter {
    policy: RestartPolicy,
    restart_count: u32,
    /// The delay before the last restart; `None` until the first.
    delay: Option<Duration>,
}

impl Restarter {
    pub fn new(policy: RestartPolicy) -> Self {
        Restarter {
            policy,
            restart_count: 0,
            delay: None,
        }
    }

    /// Restarts decided so far (Docker's `RestartCount`).
    pub fn restart_count(&self) -> u32 {
        self.restart_count
    }

    /// After an exit: `Some(delay)` to restart after `delay` (and count
    /// it), `None` to leave the container exited.
    pub fn decide(&mut self, exit: ExitFacts) -> Option<Duration> {
        if self.policy.is_none() || exit.cancelled {
            return None;
        }
        let initial = self
            .policy
            .initial_delay
            .filter(|d| !d.is_zero())
            .unwrap_or(DEFAULT_INITIAL_DELAY);
        if exit.ran_for >= self.policy.reset_after.unwrap_or(DEFAULT_RESET_AFTER) {
            self.delay = None;
        }
        let delay = match self.delay {
            None => initial,
            Some(d) => d.saturating_mul(2).min(MAX_DELAY.max(initial)),
        };
        let restart = match self.policy.condition {
            RestartCondition::No => false,
            RestartCondition::Always => true,
            RestartCondition::UnlessStopped => !exit.manually_stopped,
            RestartCondition::OnFailure => {
                let max = self.policy.maximum_retry_count;
                (max == 0 || self.restart_count < max) && (exit.exit_code != 0 || exit.oom_killed)
            }
        };
        if !restart {
            return None;
        }
        self.delay = Some(delay);
        self.restart_count += 1;
        Some(delay)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn failed(code: i32, ran_ms: u64) -> ExitFacts {
        ExitFacts {
            exit_code: code,
            ran_for: Duration::from_millis(ran_ms),
            ..Default::default()
        }
    }

    #[test]
    fn parses_dockers_syntax() {
        let p = RestartPolicy::parse("on-failure:3").unwrap();
        assert_eq!(
            (p.condition, p.maximum_retry_count),
            (RestartCondition::OnFailure, 3)
        );
        assert_eq!(
            RestartPolicy::parse("unless-stopped").unwrap().condition,
            RestartCondition::UnlessStopped
        );
        assert!(RestartPolicy::parse("no").unwrap().is_none());
        assert_eq!(
            RestartPolicy::parse("always:2").unwrap_err(),
            "maximum retry count cannot be used with restart policy 'always'"
        );
        assert!(RestartPolicy::parse("sometimes").is_err());
        assert!(RestartPolicy::parse("on-failure:x").is_err());
    }

    #[test]
    fn on_failure_stops_after_max_retries_with_doubling_delays() {
        let mut r = Restarter::new(RestartPolicy::parse("on-failure:3").unwrap());
        let delays: Vec<Option<u128>> = (0..5)
            .map(|_| r.decide(failed(1, 5)).map(|d| d.as_millis()))
            .collect();
        assert_eq!(delays, [Some(100), Some(200), Some(400), None, None]);
        assert_eq!(r.restart_count(), 3);
    }

    #[test]
    fn on_failure_leaves_a_clean_exit_but_not_an_oom_kill() {
        let mut r = Restarter::new(RestartPolicy::parse("on-failure").unwrap());
        assert_eq!(r.decide(failed(0, 5)), None);
        let oom = ExitFacts {
            oom_killed: true,
            ..failed(0, 5)
        };
        assert!(r.decide(oom).is_some());
        assert_eq!(r.restart_count(), 1);
    }

    #[test]
    fn backoff_is_capped_at_a_minute_and_reset_by_a_long_run() {
        let mut r = Restarter::new(RestartPolicy::parse("always").unwrap());
        let mut last = Duration::ZERO;
        for _ in 0..20 {
            last = r.decide(failed(0, 5)).unwrap();
        }
        assert_eq!(last, MAX_DELAY);
        assert_eq!(r.decide(failed(0, 10_000)), Some(DEFAULT_INITIAL_DELAY));
        assert_eq!(r.decide(failed(0, 5)), Some(Duration::from_millis(200)));
        // The count is never reset by a long run.
        assert_eq!(r.restart_count(), 22);
    }

    #[test]
    fn a_users_stop_cancels_and_unless_stopped_respects_a_kill() {
        let stop = ExitFacts {
            manually_stopped: true,
            cancelled: true,
            ..failed(137, 5)
        };
        for policy in ["always", "unless-stopped", "on-failure"] {
            let mut r = Restarter::new(RestartPolicy::parse(policy).unwrap());
            assert_eq!(r.decide(stop), None, "{policy}");
        }
        // A signal other than the stop signal marks the container, without
        // cancelling: `always` still restarts, `unless-stopped` does not.
        let marked = ExitFacts {
            manually_stopped: true,
            ..failed(129, 5)
        };
        let mut always = Restarter::new(RestartPolicy::parse("always").unwrap());
        assert!(always.decide(marked).is_some());
        let mut unless = Restarter::new(RestartPolicy::parse("unless-stopped").unwrap());
        assert_eq!(unless.decide(marked), None);
        assert!(unless.decide(failed(0, 5)).is_some());
        let mut no = Restarter::new(RestartPolicy::default());
        assert_eq!(no.decide(failed(1, 5)), None);
    }

    #[test]
    fn a_custom_initial_delay_and_reset_window() {
        let mut r = Restarter::new(RestartPolicy {
            initial_delay: Some(Duration::from_secs(2)),
            reset_after: Some(Duration::from_secs(30)),
            ..RestartPolicy::parse("always").unwrap()
        });
        assert_eq!(r.decide(failed(1, 5)), Some(Duration::from_secs(2)));
        assert_eq!(r.decide(failed(1, 20_000)), Some(Duration::from_secs(4)));
        assert_eq!(r.decide(failed(1, 30_000)), Some(Duration::from_secs(2)));
    }
}
