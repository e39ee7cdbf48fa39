//! Docker's container healthcheck: the probe as configured
//! ([`Healthcheck`], `Config.Healthcheck`), the health a container has
//! ([`Health`], `State.Health` in `docker inspect`), and the pure rules
//! that connect them. The shim runs the probes (`probe`); everything that
//! decides what a result means lives here, so it is tested without
//! containers.
//!
//! The rules follow moby's `daemon/health.go`:
//! - a container with a healthcheck starts `starting`, with its failing
//!   streak at 0 (the log of earlier runs is kept);
//! - a probe exiting 0 makes it `healthy` and resets the streak; any other
//!   result is a failure, which adds to the streak, and `retries`
//!   consecutive failures make it `unhealthy`;
//! - while it is still `starting`, a failure whose probe began within
//!   `start_period` of the container's start does not count;
//! - probes come every `start_interval` while the container is `starting`
//!   within its start period, every `interval` otherwise, each measured
//!   from the end of the previous probe;
//! - a probe that outlives `timeout` is killed and counts as a failure
//!   with exit code -1;
//! - the log keeps the last 5 results, their output cut at 4 KiB;
//! - when the container stops, its health reads `unhealthy` (moby sets
//!   that when the monitor stops).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `--health-interval` when unset or 0.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
/// `--health-timeout` when unset or 0.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// `--health-retries` when unset or 0.
pub const DEFAULT_RETRIES: u32 = 3;
/// `--health-start-period` when unset.
pub const DEFAULT_START_PERIOD: Duration = Duration::ZERO;
/// `--health-start-interval` when unset or 0.
pub const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
/// Results kept in [`Health::log`].
pub const MAX_LOG_ENTRIES: usize = 5;
/// Bytes of a probe's output kept (more is cut, and marked with `...`).
pub const MAX_OUTPUT_LEN: usize = 4096;
/// Docker refuses durations under a millisecond (other than 0, "default").
const MINIMUM_DURATION: Duration = Duration::from_millis(1);

/// A container's health probe, Docker's `Config.Healthcheck`. Durations
/// and retries left `None` take Docker's defaults when the probe runs, so
/// the config keeps what the user (or the image) said.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Healthcheck {
    /// `["CMD", arg...]` (run directly), `["CMD-SHELL", command]` (run
    /// through [`Self::shell`]) or `["NONE"]` (disabled).
    pub test: Vec<String>,
    /// The shell of `CMD-SHELL` (the image's `SHELL`); `/bin/sh -c` when
    /// empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shell: Vec<String>,
    #[serde(default, with = "opt_nanos", skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    #[serde(default, with = "opt_nanos", skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    #[serde(default, with = "opt_nanos", skip_serializing_if = "Option::is_none")]
    pub start_period: Option<Duration>,
    #[serde(default, with = "opt_nanos", skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<Duration>,
    /// Consecutive failures that make the container unhealthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
}

fn or_default(d: Option<Duration>, default: Duration) -> Duration {
    d.filter(|d| !d.is_zero()).unwrap_or(default)
}

impl Healthcheck {
    /// Whether a probe runs at all (`NONE`, or no test, turns it off).
    pub fn is_enabled(&self) -> bool {
        self.test.first().is_some_and(|t| t != "NONE")
    }

    /// The probe's argv: `CMD`'s arguments as they are, `CMD-SHELL`'s
    /// command after the shell. `None` when disabled.
    pub fn argv(&self) -> Option<Vec<String>> {
        let (kind, rest) = self.test.split_first()?;
        match kind.as_str() {
            "CMD" => Some(rest.to_vec()),
            "CMD-SHELL" => {
                let mut argv = if self.shell.is_empty() {
                    vec!["/bin/sh".to_owned(), "-c".to_owned()]
                } else {
                    self.shell.clone()
                };
                argv.push(rest.join(" "));
                Some(argv)
            }
            _ => None,
        }
    }

    pub fn interval(&self) -> Duration {
        or_default(self.interval, DEFAULT_INTERVAL)
    }

    pub fn timeout(&self) -> Duration {
        or_default(self.timeout, DEFAULT_TIMEOUT)
    }

    pub fn start_period(&self) -> Duration {
        self.start_period.unwrap_or(DEFAULT_START_PERIOD)
    }

    pub fn start_interval(&self) -> Duration {
        or_default(self.start_interval, DEFAULT_START_INTERVAL)
    }

    pub fn retries(&self) -> u32 {
        self.retries.filter(|r| *r > 0).unwrap_or(DEFAULT_RETRIES)
    }

    /// Docker's checks, with its messages.
    pub fn validate(&self) -> Result<(), String> {
        match self.test.first().map(String::as_str) {
            None | Some("NONE") => {}
            Some("CMD") if self.test.len() < 2 => {
                return Err("Healthcheck CMD needs a command to run".to_owned());
            }
            Some("CMD-SHELL") if self.test.len() < 2 => {
                return Err("Healthcheck CMD-SHELL needs a command to run".to_owned());
            }
            Some("CMD" | "CMD-SHELL") => {}
            Some(other) => {
                return Err(format!(
                    "unknown Healthcheck test kind {other:?}: use CMD, CMD-SHELL or NONE"
                ));
            }
        }
        for (name, d) in [
            ("Interval", self.interval),
            ("Timeout", self.timeout),
            ("StartPeriod", self.start_period),
            ("StartInterval", self.start_interval),
        ] {
            if let Some(d) = d
                && !d.is_zero()
                && d < MINIMUM_DURATION
            {
                return Err(format!("{name} in Healthcheck cannot be less than 1ms"));
            }
        }
        Ok(())
    }

    /// How long after the end of one probe the next is due. `since_start`
    /// is the time since the container started.
    pub fn next_delay(&self, since_start: Duration, status: HealthStatus) -> Duration {
        if since_start < self.start_period() && status == HealthStatus::Starting {
            self.start_interval()
        } else {
            self.interval()
        }
    }
}

/// What `docker inspect` shows as `State.Health.Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Starting,
    Healthy,
    Unhealthy,
}

impl HealthStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Starting => "starting",
            HealthStatus::Healthy => "healthy",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }
}

/// One probe, as in `State.Health.Log`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeResult {
    /// RFC 3339, UTC, nanoseconds.
    pub start: String,
    pub end: String,
    /// The probe's exit code; -1 when it timed out or could not run.
    pub exit_code: i32,
    /// stdout and stderr together, at most [`MAX_OUTPUT_LEN`] bytes (then
    /// `...`).
    pub output: String,
}

/// A container's health, `State.Health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub status: HealthStatus,
    /// Consecutive failures that counted.
    pub failing_streak: u32,
    /// The last [`MAX_LOG_ENTRIES`] results, oldest first.
    #[serde(default)]
    pub log: Vec<ProbeResult>,
}

impl Health {
    /// The health of a container that has just (re)started: `starting`,
    /// no failures, the log of earlier runs kept.
    pub fn starting(previous: Option<Health>) -> Health {
        Health {
            status: HealthStatus::Starting,
            failing_streak: 0,
            log: previous.map(|h| h.log).unwrap_or_default(),
        }
    }

    /// Takes one probe's result. `in_start_period`: the probe began
    /// within the start period of the container's current run.
    pub fn record(&mut self, result: ProbeResult, retries: u32, in_start_period: bool) {
        if self.log.len() >= MAX_LOG_ENTRIES {
            let drop = self.log.len() + 1 - MAX_LOG_ENTRIES;
            self.log.drain(..drop);
        }
        let passed = result.exit_code == 0;
        self.log.push(result);
        if passed {
            self.failing_streak = 0;
            self.status = HealthStatus::Healthy;
            return;
        }
        if self.status == HealthStatus::Starting && in_start_period {
            return;
        }
        self.failing_streak += 1;
        if self.failing_streak >= retries.max(1) {
            self.status = HealthStatus::Unhealthy;
        }
    }

    /// The container stopped: no probe runs, and Docker reports that as
    /// `unhealthy`.
    pub fn stopped(&mut self) {
        self.status = HealthStatus::Unhealthy;
    }
}

/// A probe's output as Docker keeps it: the first [`MAX_OUTPUT_LEN`]
/// bytes, the rest counted but dropped.
#[derive(Debug, Default)]
pub struct OutputBuffer {
    bytes: Vec<u8>,
    truncated: bool,
}

impl OutputBuffer {
    pub fn push(&mut self, data: &[u8]) {
        let keep = MAX_OUTPUT_LEN
            .saturating_sub(self.bytes.len())
            .min(data.len());
        self.bytes.extend_from_slice(&data[..keep]);
        if keep < data.len() {
            self.truncated = true;
        }
    }

    pub fn into_string(self) -> String {
        let mut s = String::from_utf8_lossy(&self.bytes).into_owned();
        if self.truncated {
            s.push_str("...");
        }
        s
    }
}

/// The output Docker records for a probe killed at its timeout.
pub fn timeout_message(timeout: Duration) -> String {
    format!("Health check exceeded timeout ({})", go_duration(timeout))
}

/// A duration the way Go's `time.Duration.String` writes it (`30s`,
/// `1.5s`, `500ms`, `1m30s`, `1h0m0s`), so messages match Docker's.
pub fn go_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_owned();
    }
    // Below a second: one unit, with a decimal fraction.
    let fraction = |value: u128, unit: u128, suffix: &str| {
        let whole = value / unit;
        let rest = value % unit;
        if rest == 0 {
            return format!("{whole}{suffix}");
        }
        let width = unit.ilog10() as usize;
        let digits = format!("{rest:0width$}");
        format!("{whole}.{}{suffix}", digits.trim_end_matches('0'))
    };
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return fraction(nanos, 1_000, "µs");
    }
    if nanos < 1_000_000_000 {
        return fraction(nanos, 1_000_000, "ms");
    }
    let total_secs = nanos / 1_000_000_000;
    let sub = nanos % 1_000_000_000;
    let (hours, minutes, secs) = (total_secs / 3600, total_secs / 60 % 60, total_secs % 60);
    let seconds = fraction(secs * 1_000_000_000 + sub, 1_000_000_000, "s");
    match (hours, minutes) {
        (0, 0) => seconds,
        (0, m) => format!("{m}m{seconds}"),
        (h, m) => format!("{h}h{m}m{seconds}"),
    }
}

/// `Option<Duration>` as integer nanoseconds, Go's `time.Duration` on the
/// wire (what `docker inspect` shows for healthcheck timings).
pub(crate) mod opt_nanos {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_u64(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_nanos))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn result(code: i32) -> ProbeResult {
        ProbeResult {
            start: "s".into(),
            end: "e".into(),
            exit_code: code,
            output: String::new(),
        }
    }

    #[test]
    fn first_success_is_healthy_and_retries_failures_are_unhealthy() {
        let mut h = Health::starting(None);
        h.record(result(0), 3, false);
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Healthy, 0));
        h.record(result(1), 3, false);
        h.record(result(1), 3, false);
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Healthy, 2));
        h.record(result(1), 3, false);
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Unhealthy, 3));
        // Any non-zero code fails, -1 (timeout) too; a success heals.
        h.record(result(-1), 3, false);
        assert_eq!(h.failing_streak, 4);
        h.record(result(0), 3, false);
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Healthy, 0));
    }

    #[test]
    fn failures_in_the_start_period_do_not_count_until_a_success() {
        let mut h = Health::starting(None);
        for _ in 0..5 {
            h.record(result(1), 1, true);
        }
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Starting, 0));
        // Past the start period they count.
        h.record(result(1), 2, false);
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Starting, 1));
        h.record(result(1), 2, false);
        assert_eq!(h.status, HealthStatus::Unhealthy);

        // Once healthy, the start period no longer shields failures.
        let mut h = Health::starting(None);
        h.record(result(0), 1, true);
        h.record(result(1), 1, true);
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Unhealthy, 1));
    }

    #[test]
    fn the_log_keeps_the_last_five_and_a_restart_keeps_it() {
        let mut h = Health::starting(None);
        for code in 0..7 {
            h.record(result(code), 100, false);
        }
        let codes: Vec<i32> = h.log.iter().map(|r| r.exit_code).collect();
        assert_eq!(codes, [2, 3, 4, 5, 6]);
        h.stopped();
        assert_eq!(h.status, HealthStatus::Unhealthy);
        let again = Health::starting(Some(h));
        assert_eq!(
            (again.status, again.failing_streak, again.log.len()),
            (HealthStatus::Starting, 0, 5)
        );
    }

    #[test]
    fn probes_come_every_start_interval_in_the_start_period_only_while_starting() {
        let hc = Healthcheck {
            test: vec!["CMD".into(), "true".into()],
            interval: Some(Duration::from_secs(10)),
            start_period: Some(Duration::from_secs(60)),
            start_interval: Some(Duration::from_secs(1)),
            ..Default::default()
        };
        let s = Duration::from_secs;
        assert_eq!(hc.next_delay(s(5), HealthStatus::Starting), s(1));
        assert_eq!(hc.next_delay(s(5), HealthStatus::Healthy), s(10));
        assert_eq!(hc.next_delay(s(61), HealthStatus::Starting), s(10));
        // Defaults: no start period, so always the interval (30 s).
        let d = Healthcheck {
            test: vec!["CMD".into(), "true".into()],
            ..Default::default()
        };
        assert_eq!(d.next_delay(s(0), HealthStatus::Starting), DEFAULT_INTERVAL);
        assert_eq!(
            (d.timeout(), d.retries(), d.start_interval()),
            (DEFAULT_TIMEOUT, 3, DEFAULT_START_INTERVAL)
        );
        // Zero means "the default", as in Docker.
        let z = Healthcheck {
            interval: Some(Duration::ZERO),
            retries: Some(0),
            ..d
        };
        assert_eq!((z.interval(), z.retries()), (DEFAULT_INTERVAL, 3));
    }

    #[test]
    fn test_forms_become_argv() {
        let cmd = Healthcheck {
            test: vec!["CMD".into(), "cat".into(), "/tmp/x y".into()],
            ..Default::default()
        };
        assert_eq!(cmd.argv().unwrap(), ["cat", "/tmp/x y"]);
        let shell = Healthcheck {
            test: vec!["CMD-SHELL".into(), "test -f /ok || exit 1".into()],
            ..Default::default()
        };
        assert_eq!(
            shell.argv().unwrap(),
            ["/bin/sh", "-c", "test -f /ok || exit 1"]
        );
        let custom = Healthcheck {
            shell: vec!["/bin/ash".into(), "-ec".into()],
            ..shell.clone()
        };
        assert_eq!(custom.argv().unwrap()[..2], ["/bin/ash", "-ec"]);
        let none = Healthcheck {
            test: vec!["NONE".into()],
            ..Default::default()
        };
        assert!(!none.is_enabled() && none.argv().is_none());
        assert!(!Healthcheck::default().is_enabled());
        assert!(shell.is_enabled());
    }

    #[test]
    fn validation_follows_docker() {
        let ok = Healthcheck {
            test: vec!["CMD-SHELL".into(), "true".into()],
            interval: Some(Duration::from_millis(1)),
            ..Default::default()
        };
        assert!(ok.validate().is_ok());
        let short = Healthcheck {
            timeout: Some(Duration::from_micros(10)),
            ..ok.clone()
        };
        assert_eq!(
            short.validate().unwrap_err(),
            "Timeout in Healthcheck cannot be less than 1ms"
        );
        let empty = Healthcheck {
            test: vec!["CMD".into()],
            ..Default::default()
        };
        assert!(empty.validate().is_err());
        let bogus = Healthcheck {
            test: vec!["RUN".into(), "x".into()],
            ..Default::default()
        };
        assert!(bogus.validate().unwrap_err().contains("\"RUN\""));
    }

    #[test]
    fn output_is_cut_at_4_kib() {
        let mut b = OutputBuffer::default();
        b.push(b"hello ");
        b.push(b"world");
        assert_eq!(b.into_string(), "hello world");
        let mut b = OutputBuffer::default();
        b.push(&[b'a'; 4000]);
        b.push(&[b'b'; 200]);
        let s = b.into_string();
        assert_eq!(s.len(), MAX_OUTPUT_LEN + 3);
        assert!(s.ends_with("bb..."));
    }

    #[test]
    fn durations_print_like_go() {
        let cases = [
            (Duration::from_secs(30), "30s"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_millis(500), "500ms"),
            (Duration::from_micros(1500), "1.5ms"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_secs(3600), "1h0m0s"),
            (Duration::from_nanos(7), "7ns"),
            (Duration::ZERO, "0s"),
        ];
        for (d, want) in cases {
            assert_eq!(go_duration(d), want, "{d:?}");
        }
        assert_eq!(
            timeout_message(Duration::from_secs(1)),
            "Health check exceeded timeout (1s)"
        );
    }

    #[test]
    fn durations_are_nanoseconds_on_disk() {
        let hc = Healthcheck {
            test: vec!["CMD".into(), "true".into()],
            interval: Some(Duration::from_secs(2)),
            retries: Some(4),
            ..Default::default()
        };
        let v = serde_json::to_value(&hc).unwrap();
        assert_eq!(v["interval"], 2_000_000_000u64);
        assert!(v.get("timeout").is_none());
        let back: Healthcheck = serde_json::from_value(v).unwrap();
        assert_eq!(back, hc);
    }
}
