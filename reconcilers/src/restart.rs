//! Restart policies and the backoff between restarts.
//!
//! Lifecycle: a container exits; the planner asks [`decide`] what to do with
//! the policy, how it exited, how often it was restarted and when it last
//! started. `Restart { after }` becomes a start action with a not-before
//! time, so a crash-looping container waits for its backoff without holding
//! up anything else in the plan (the executor defers it and the plan says
//! when to come back, like kube-rs's `Action::requeue`).
//!
//! Backoff follows Docker: 100 ms, doubling with each consecutive restart,
//! capped at one minute; a container that ran for 10 s or more before
//! exiting counts as stable, and the backoff starts again from 100 ms.

use std::time::{Duration, SystemTime};

use berth_spec::compose::model::Service;
use serde::{Deserialize, Serialize};

/// First backoff step.
pub const BACKOFF_BASE: Duration = Duration::from_millis(100);
/// Backoff cap.
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// A run at least this long resets the backoff.
pub const STABLE_RUN: Duration = Duration::from_secs(10);

/// When to restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartCondition {
    /// Never (`no`, `deploy.restart_policy.condition: none`).
    No,
    /// Whatever the exit (`always`, `condition: any`).
    Always,
    /// Only after a non-zero exit.
    OnFailure,
    /// Like `always`, except after the user stopped it.
    UnlessStopped,
}

/// A normalized restart policy: `restart:` and `deploy.restart_policy`
/// expressed the same way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestartPolicy {
    pub condition: RestartCondition,
    /// Give up after this many restarts (`on-failure:N`,
    /// `max_attempts`).
    pub max_attempts: Option<u32>,
    /// A fixed delay between restarts instead of the exponential backoff
    /// (`deploy.restart_policy.delay`).
    pub delay: Option<Duration>,
    /// A run at least this long counts as a success and resets the attempt
    /// count (`deploy.restart_policy.window`; default [`STABLE_RUN`]).
    pub window: Option<Duration>,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        Self {
            condition: RestartCondition::No,
            max_attempts: None,
            delay: None,
            window: None,
        }
    }
}

impl RestartPolicy {
    /// The service's policy. `deploy.restart_policy` wins over `restart`,
    /// like Compose v2; its condition defaults to `any`, as in the spec.
    pub fn from_service(service: &Service) -> Self {
        if let Some(p) = service
            .deploy
            .as_ref()
            .and_then(|d| d.restart_policy.as_ref())
        {
            let condition = match p.condition.as_deref() {
                Some("none") => RestartCondition::No,
                Some("on-failure") => RestartCondition::OnFailure,
                _ => RestartCondition::Always,
            };
            return Self {
                condition,
                max_attempts: p.max_attempts.map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
                delay: p.delay.map(|d| d.0),
                window: p.window.map(|d| d.0),
            };
        }
        Self::parse(service.restart.as_deref().unwrap_or("no"))
    }

    /// `no`, `always`, `unless-stopped`, `on-failure[:N]`. Anything else is
    /// `no` (the schema rejects it before this runs).
    pub fn parse(s: &str) -> Self {
        let (name, count) = match s.split_once(':') {
            Some((n, c)) => (n, c.trim().parse::<u32>().ok()),
            None => (s, None),
        };
        let condition = match name.trim() {
            "always" => RestartCondition::Always,
            "unless-stopped" => RestartCondition::UnlessStopped,
            "on-failure" => RestartCondition::OnFailure,
            _ => RestartCondition::No,
        };
        Self {
            condition,
            max_attempts: count.filter(|_| condition == RestartCondition::OnFailure),
            ..Self::default()
        }
    }

    /// Whether a container with this policy is expected to keep running
    /// (not a one-shot task).
    pub fn keeps_running(&self) -> bool {
        matches!(
            self.condition,
            RestartCondition::Always | RestartCondition::UnlessStopped
        )
    }
}

/// How a container ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitInfo {
    pub code: i64,
    pub finished_at: Option<SystemTime>,
}

/// What to do about an exited container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Start it again, `after` from now (zero: now).
    Restart { after: Duration },
    /// The policy would restart it but its attempts are used up.
    GiveUp,
    /// The policy does not restart it (a completed one-shot, `no`, or
    /// `on-failure` after a clean exit).
    Leave,
}

/// The restart decision, pure: the same inputs always give the same answer.
///
/// `restart_count` is the number of restarts so far (consecutive, as the
/// runtime counts them); `last_start` is when the container last started.
pub fn decide(
    policy: &RestartPolicy,
    exit: ExitInfo,
    restart_count: u32,
    last_start: Option<SystemTime>,
    now: SystemTime,
) -> Decision {
    let wants = match policy.condition {
        RestartCondition::No => false,
        RestartCondition::Always | RestartCondition::UnlessStopped => true,
        RestartCondition::OnFailure => exit.code != 0,
    };
    if !wants {
        return Decision::Leave;
    }
    let ran_for = match (last_start, exit.finished_at) {
        (Some(start), Some(end)) => end.duration_since(start).unwrap_or_default(),
        _ => Duration::ZERO,
    };
    let stable = ran_for >= policy.window.unwrap_or(STABLE_RUN);
    // A stable run starts the count afresh, for attempts and backoff alike.
    let consecutive = if stable { 0 } else { restart_count };
    if policy.max_attempts.is_some_and(|max| consecutive >= max) {
        return Decision::GiveUp;
    }
    let delay = policy.delay.unwrap_or_else(|| backoff(consecutive));
    let not_before = exit.finished_at.map(|t| t + delay);
    let after = match not_before {
        Some(t) => t.duration_since(now).unwrap_or_default(),
        None => delay,
    };
    Decision::Restart { after }
}

/// Docker's backoff: 100 ms before the first restart, doubling with each
/// consecutive one, capped at a minute. `consecutive` restarts have happened
/// already.
pub fn backoff(consecutive: u32) -> Duration {
    let factor = 1u64.checked_shl(consecutive).unwrap_or(u64::MAX);
    let ms = (BACKOFF_BASE.as_millis() as u64).saturating_mul(factor);
    Duration::from_millis(ms).min(BACKOFF_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: SystemTime = SystemTime::UNIX_EPOCH;

    fn at(secs_ms: u64) -> SystemTime {
        T0 + Duration::from_millis(secs_ms)
    }

    fn exit(code: i64, finished_ms: u64) -> ExitInfo {
        ExitInfo {
            code,
            finished_at: Some(at(finished_ms)),
        }
    }

    #[test]
    fn parses_restart_strings() {
        let cases = [
            ("no", RestartCondition::No, None),
            ("always", RestartCondition::Always, None),
            ("unless-stopped", RestartCondition::UnlessStopped, None),
            ("on-failure", RestartCondition::OnFailure, None),
            ("on-failure:3", RestartCondition::OnFailure, Some(3)),
            ("bogus", RestartCondition::No, None),
        ];
        for (s, condition, max) in cases {
            let p = RestartPolicy::parse(s);
            assert_eq!((p.condition, p.max_attempts), (condition, max), "{s}");
        }
    }

    #[test]
    fn deploy_restart_policy_wins_over_restart() {
        let service: Service = serde_json::from_value(serde_json::json!({
            "restart": "always",
            "deploy": {"restart_policy": {"condition": "on-failure", "max_attempts": 2, "delay": "5s", "window": "30s"}}
        }))
        .unwrap();
        assert_eq!(
            RestartPolicy::from_service(&service),
            RestartPolicy {
                condition: RestartCondition::OnFailure,
                max_attempts: Some(2),
                delay: Some(Duration::from_secs(5)),
                window: Some(Duration::from_secs(30)),
            }
        );
        let any: Service =
            serde_json::from_value(serde_json::json!({"deploy": {"restart_policy": {}}})).unwrap();
        assert_eq!(
            RestartPolicy::from_service(&any).condition,
            RestartCondition::Always
        );
        let none: Service = serde_json::from_value(
            serde_json::json!({"restart": "always", "deploy": {"restart_policy": {"condition": "none"}}}),
        )
        .unwrap();
        assert_eq!(
            RestartPolicy::from_service(&none).condition,
            RestartCondition::No
        );
    }

    #[test]
    fn backoff_doubles_from_100ms_to_a_minute() {
        let steps: Vec<u128> = (0..12).map(|n| backoff(n).as_millis()).collect();
        assert_eq!(
            steps,
            [
                100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200, 60000, 60000
            ]
        );
        assert_eq!(backoff(200), BACKOFF_MAX);
    }

    #[test]
    fn decisions() {
        let always = RestartPolicy::parse("always");
        let on_failure_2 = RestartPolicy::parse("on-failure:2");
        let no = RestartPolicy::parse("no");
        let fixed = RestartPolicy {
            delay: Some(Duration::from_secs(5)),
            ..RestartPolicy::parse("always")
        };
        // (policy, exit code, restarts, started ms, finished ms, now ms, expected)
        let cases: Vec<(&RestartPolicy, i64, u32, u64, u64, u64, Decision)> = vec![
            // no: never
            (&no, 1, 0, 0, 1_000, 1_000, Decision::Leave),
            // a one-shot that succeeded under on-failure is done
            (&on_failure_2, 0, 0, 0, 1_000, 1_000, Decision::Leave),
            // first failure: 100 ms after it finished
            (
                &on_failure_2,
                1,
                0,
                0,
                1_000,
                1_000,
                Decision::Restart {
                    after: Duration::from_millis(100),
                },
            ),
            // second: 200 ms
            (
                &on_failure_2,
                1,
                1,
                0,
                1_000,
                1_000,
                Decision::Restart {
                    after: Duration::from_millis(200),
                },
            ),
            // attempts used up
            (&on_failure_2, 1, 2, 0, 1_000, 1_000, Decision::GiveUp),
            // ... unless the last run was stable: the count starts again
            (
                &on_failure_2,
                1,
                2,
                0,
                20_000,
                20_000,
                Decision::Restart {
                    after: Duration::from_millis(100),
                },
            ),
            // always restarts after exit 0 too; backoff grows with the count
            (
                &always,
                0,
                5,
                0,
                1_000,
                1_000,
                Decision::Restart {
                    after: Duration::from_millis(3_200),
                },
            ),
            // part of the backoff already elapsed
            (
                &always,
                0,
                5,
                0,
                1_000,
                2_000,
                Decision::Restart {
                    after: Duration::from_millis(2_200),
                },
            ),
            // all of it elapsed
            (
                &always,
                0,
                5,
                0,
                1_000,
                9_000,
                Decision::Restart {
                    after: Duration::ZERO,
                },
            ),
            // capped at a minute
            (
                &always,
                1,
                30,
                0,
                1_000,
                1_000,
                Decision::Restart { after: BACKOFF_MAX },
            ),
            // a stable run resets the backoff
            (
                &always,
                1,
                30,
                0,
                11_000,
                11_000,
                Decision::Restart {
                    after: BACKOFF_BASE,
                },
            ),
            // a fixed delay replaces the backoff
            (
                &fixed,
                1,
                0,
                0,
                1_000,
                1_000,
                Decision::Restart {
                    after: Duration::from_secs(5),
                },
            ),
        ];
        for (i, (policy, code, restarts, started, finished, now, expected)) in
            cases.into_iter().enumerate()
        {
            let got = decide(
                policy,
                exit(code, finished),
                restarts,
                Some(at(started)),
                at(now),
            );
            assert_eq!(got, expected, "case {i}");
        }
    }
}
