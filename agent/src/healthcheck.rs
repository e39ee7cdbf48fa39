//! A container's healthcheck as Docker decides it: the image's
//! `HEALTHCHECK` is the default, and what the user says (`run`'s
//! `--health-*` flags, Compose's `healthcheck:`) overrides it field by
//! field; a `NONE` test (`--no-healthcheck`, `disable: true`) turns it
//! off. Also the restart policy of a Compose service in runtime terms.

use std::time::Duration;

use anyhow::bail;
use berth_image::{HealthTest, Healthcheck as ImageHealthcheck};
use berth_reconcilers::container::HealthcheckSpec;
use berth_reconcilers::restart::{RestartCondition as SpecCondition, RestartPolicy as SpecPolicy};
use berth_runtime::{Healthcheck, RestartCondition, RestartPolicy};

/// The user's side: `None` (or an empty test, or a zero duration) keeps
/// the image's value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HealthOverride {
    /// Docker's form: `["CMD", ...]`, `["CMD-SHELL", cmd]`, `["NONE"]`.
    pub test: Vec<String>,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub start_period: Option<Duration>,
    pub start_interval: Option<Duration>,
    pub retries: Option<u32>,
}

impl HealthOverride {
    /// Compose's `healthcheck:` as the reconciler resolved it.
    pub fn from_spec(h: &HealthcheckSpec) -> anyhow::Result<Self> {
        let retries = match h.retries {
            None => None,
            Some(r) => match u32::try_from(r) {
                Ok(r) => Some(r),
                Err(_) => bail!("healthcheck retries {r} is too large"),
            },
        };
        Ok(HealthOverride {
            test: h.test.clone(),
            interval: h.interval,
            timeout: h.timeout,
            start_period: h.start_period,
            start_interval: h.start_interval,
            retries,
        })
    }
}

fn image_test(t: &HealthTest) -> Vec<String> {
    match t {
        HealthTest::Inherit => Vec::new(),
        HealthTest::None => vec!["NONE".to_owned()],
        HealthTest::Exec(args) => std::iter::once("CMD".to_owned())
            .chain(args.iter().cloned())
            .collect(),
        HealthTest::Shell(cmd) => vec!["CMD-SHELL".to_owned(), cmd.clone()],
    }
}

/// Docker's merge (moby's `daemon.merge`): the user's healthcheck over the
/// image's, one field at a time. `shell` is the image's `SHELL`, used by
/// `CMD-SHELL`. `None` when neither has one, or the result has no test.
pub fn merge(
    image: Option<&ImageHealthcheck>,
    shell: Option<&[String]>,
    user: Option<&HealthOverride>,
) -> Option<Healthcheck> {
    let base = image.map(|i| Healthcheck {
        test: image_test(&i.test),
        shell: Vec::new(),
        interval: i.interval,
        timeout: i.timeout,
        start_period: i.start_period,
        start_interval: i.start_interval,
        retries: i.retries,
    });
    let set = |d: Option<Duration>| d.filter(|d| !d.is_zero());
    let mut merged = match (base, user) {
        (None, None) => return None,
        (Some(b), None) => b,
        (base, Some(u)) => {
            let b = base.unwrap_or_default();
            Healthcheck {
                test: if u.test.is_empty() {
                    b.test
                } else {
                    u.test.clone()
                },
                shell: Vec::new(),
                interval: set(u.interval).or(b.interval),
                timeout: set(u.timeout).or(b.timeout),
                start_period: set(u.start_period).or(b.start_period),
                start_interval: set(u.start_interval).or(b.start_interval),
                retries: u.retries.filter(|r| *r > 0).or(b.retries),
            }
        }
    };
    if merged.test.is_empty() {
        return None;
    }
    if merged.test.first().is_some_and(|t| t == "CMD-SHELL") {
        merged.shell = shell.map(<[String]>::to_vec).unwrap_or_default();
    }
    Some(merged)
}

/// A Compose service's normalized restart policy in the runtime's terms.
/// A retry limit goes with `on-failure` only, as Docker requires.
pub fn restart_policy(p: &SpecPolicy) -> anyhow::Result<RestartPolicy> {
    let condition = match p.condition {
        SpecCondition::No => RestartCondition::No,
        SpecCondition::Always => RestartCondition::Always,
        SpecCondition::OnFailure => RestartCondition::OnFailure,
        SpecCondition::UnlessStopped => RestartCondition::UnlessStopped,
    };
    let maximum_retry_count = match p.max_attempts {
        Some(n) if n > 0 && condition != RestartCondition::OnFailure => bail!(
            "a maximum number of restart attempts ({n}) can only be used with the on-failure condition (Docker refuses it with {:?} too)",
            condition.as_str()
        ),
        Some(n) => n,
        None => 0,
    };
    Ok(RestartPolicy {
        condition,
        maximum_retry_count,
        initial_delay: p.delay,
        reset_after: p.window,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> ImageHealthcheck {
        ImageHealthcheck {
            test: HealthTest::Shell("wget -q localhost".into()),
            interval: Some(Duration::from_secs(10)),
            timeout: Some(Duration::from_secs(2)),
            start_period: None,
            start_interval: None,
            retries: Some(5),
        }
    }

    #[test]
    fn the_image_healthcheck_is_the_default() {
        let shell = vec!["/bin/ash".to_owned(), "-c".to_owned()];
        let h = merge(Some(&image()), Some(&shell), None).unwrap();
        assert_eq!(h.test, ["CMD-SHELL", "wget -q localhost"]);
        assert_eq!(h.shell, shell);
        assert_eq!(
            (h.interval, h.retries),
            (Some(Duration::from_secs(10)), Some(5))
        );
        assert_eq!(merge(None, None, None), None);
    }

    #[test]
    fn the_user_overrides_field_by_field() {
        let only_timing = HealthOverride {
            interval: Some(Duration::from_secs(1)),
            retries: Some(0),
            ..Default::default()
        };
        let h = merge(Some(&image()), None, Some(&only_timing)).unwrap();
        assert_eq!(h.test, ["CMD-SHELL", "wget -q localhost"], "test inherited");
        assert_eq!(h.interval, Some(Duration::from_secs(1)));
        assert_eq!(h.timeout, Some(Duration::from_secs(2)), "timeout inherited");
        assert_eq!(h.retries, Some(5), "0 retries means the image's");
        let exec = HealthOverride {
            test: vec!["CMD".into(), "true".into()],
            ..Default::default()
        };
        let h = merge(Some(&image()), None, Some(&exec)).unwrap();
        assert_eq!(h.test, ["CMD", "true"]);
        assert!(h.shell.is_empty());
        // Without an image healthcheck, the user's alone.
        let h = merge(None, None, Some(&exec)).unwrap();
        assert_eq!((h.test.len(), h.interval), (2, None));
        // Timings alone, with nothing to inherit a test from: no probe.
        assert_eq!(merge(None, None, Some(&only_timing)), None);
    }

    #[test]
    fn none_disables_the_images() {
        let off = HealthOverride {
            test: vec!["NONE".into()],
            ..Default::default()
        };
        let h = merge(Some(&image()), None, Some(&off)).unwrap();
        assert!(!h.is_enabled());
        assert_eq!(h.test, ["NONE"]);
    }

    #[test]
    fn restart_policies_translate() {
        let p = restart_policy(&SpecPolicy {
            condition: SpecCondition::OnFailure,
            max_attempts: Some(3),
            delay: Some(Duration::from_secs(2)),
            window: Some(Duration::from_secs(30)),
        })
        .unwrap();
        assert_eq!(
            p,
            RestartPolicy {
                condition: RestartCondition::OnFailure,
                maximum_retry_count: 3,
                initial_delay: Some(Duration::from_secs(2)),
                reset_after: Some(Duration::from_secs(30)),
            }
        );
        let err = restart_policy(&SpecPolicy {
            condition: SpecCondition::Always,
            max_attempts: Some(3),
            delay: None,
            window: None,
        })
        .unwrap_err();
        assert!(err.to_string().contains("on-failure"), "{err}");
        assert!(restart_policy(&SpecPolicy::default()).unwrap().is_none());
    }
}
