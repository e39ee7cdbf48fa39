//! How a service's changed replicas are replaced: Compose's
//! `deploy.update_config` (`order`, `parallelism`, `delay`, `monitor`).
//!
//! `order: start-first` asks for a replacement that starts the new
//! container before the old one goes ([`Action::Replace`]); some services
//! cannot have two containers per replica at once, and are replaced
//! stop-first with the reason logged ([`start_first_blocker`]).
//!
//! [`Action::Replace`]: crate::plan::Action::Replace

use std::time::Duration;

use berth_spec::compose::model::Service;

use crate::container::ContainerSpec;
use crate::plan::types::{Gate, UpdateOrder};

/// The gate's timeout when neither `update_config.monitor` nor a
/// healthcheck says more.
pub const DEFAULT_GATE_TIMEOUT: Duration = Duration::from_secs(60);

/// With no healthcheck, how long a new container must run before it takes
/// traffic: long enough to catch a process that dies on startup (a bad
/// config, a port it cannot bind).
pub const STABLE_PERIOD: Duration = Duration::from_secs(2);

/// A service's update settings, defaults applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpdatePolicy {
    pub order: UpdateOrder,
    /// Replicas replaced per batch; 0 is all at once (no `parallelism`
    /// given, or `parallelism: 0` as in Swarm).
    pub parallelism: usize,
    /// Between two batches.
    pub delay: Duration,
    pub gate: Gate,
}

impl UpdatePolicy {
    pub fn of(service: &Service) -> Self {
        let update = service
            .deploy
            .as_ref()
            .and_then(|d| d.update_config.as_ref());
        let order = match update.and_then(|u| u.order.as_deref()) {
            Some("start-first") => UpdateOrder::StartFirst,
            _ => UpdateOrder::StopFirst,
        };
        let parallelism = update
            .and_then(|u| u.parallelism)
            .map_or(0, |p| usize::try_from(p).unwrap_or(usize::MAX));
        let delay = update.and_then(|u| u.delay).map_or(Duration::ZERO, |d| d.0);
        let timeout = match update.and_then(|u| u.monitor) {
            Some(m) if !m.0.is_zero() => m.0,
            _ => healthcheck_budget(service).max(DEFAULT_GATE_TIMEOUT),
        };
        UpdatePolicy {
            order,
            parallelism,
            delay,
            gate: Gate {
                timeout,
                stable: STABLE_PERIOD.min(timeout),
            },
        }
    }
}

/// How long the service's own healthcheck may take to say healthy at
/// worst: the start period, then `retries` + 1 probes, each an interval
/// plus a timeout (Docker's defaults for what is unset).
fn healthcheck_budget(service: &Service) -> Duration {
    let Some(h) = service.healthcheck.as_ref() else {
        return Duration::ZERO;
    };
    if h.disable {
        return Duration::ZERO;
    }
    let interval = h.interval.map_or(Duration::from_secs(30), |d| d.0);
    let timeout = h.timeout.map_or(Duration::from_secs(30), |d| d.0);
    let start = h.start_period.map_or(Duration::ZERO, |d| d.0);
    let retries = u32::try_from(h.retries.unwrap_or(3)).unwrap_or(u32::MAX);
    start.saturating_add(
        (interval.saturating_add(timeout)).saturating_mul(retries.saturating_add(1)),
    )
}

/// Why a replica of `spec` cannot run twice at once, if it cannot: then
/// it is replaced stop-first whatever `order` says.
pub fn start_first_blocker(spec: &ContainerSpec, service: &Service) -> Option<String> {
    if service.container_name.is_some() {
        return Some(format!(
            "container_name is {:?}: two containers cannot share it",
            spec.name
        ));
    }
    match spec.network_mode.as_deref() {
        Some("host") if !spec.ports.is_empty() || !service.expose.is_empty() => {
            return Some(
                "network_mode: host with ports: the new container would bind the old one's host ports"
                    .to_owned(),
            );
        }
        Some(m) if m.starts_with("service:") || m.starts_with("container:") => {
            return Some(format!(
                "network_mode: {m}: old and new would share one network namespace and its ports"
            ));
        }
        _ => {}
    }
    if let Some(n) = spec.networks.iter().find(|n| n.ipv4_address.is_some()) {
        return Some(format!(
            "networks.{}.ipv4_address is fixed: two containers cannot share it",
            n.name
        ));
    }
    if let Some(n) = spec.networks.iter().find(|n| n.mac_address.is_some()) {
        return Some(format!(
            "networks.{}.mac_address is fixed: two containers cannot share it",
            n.name
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::BTreeMap;

    use berth_spec::compose::model::Project;
    use serde_json::json;

    use super::*;
    use crate::desired;

    fn service(def: serde_json::Value) -> (Project, Service) {
        let p: Project =
            serde_json::from_value(json!({"name": "p", "services": {"web": def}})).unwrap();
        let s = p.services["web"].clone();
        (p, s)
    }

    fn blocker(def: serde_json::Value) -> Option<String> {
        let (p, s) = service(def);
        let spec = desired::container_spec(&p, "web", &s, 1, None, &BTreeMap::new());
        start_first_blocker(&spec, &s)
    }

    #[test]
    fn defaults_are_composes() {
        let (_, s) = service(json!({"image": "x"}));
        let u = UpdatePolicy::of(&s);
        assert_eq!(u.order, UpdateOrder::StopFirst);
        assert_eq!(u.parallelism, 0);
        assert_eq!(u.delay, Duration::ZERO);
        assert_eq!(u.gate.timeout, DEFAULT_GATE_TIMEOUT);
        assert_eq!(u.gate.stable, STABLE_PERIOD);
    }

    #[test]
    fn update_config_and_the_healthcheck_set_order_batches_and_gate() {
        let (_, s) = service(json!({
            "image": "x",
            "healthcheck": {"test": ["CMD", "true"], "interval": "10s", "timeout": "5s",
                            "retries": 5, "start_period": "30s"},
            "deploy": {"update_config": {"order": "start-first", "parallelism": 2, "delay": "3s"}}
        }));
        let u = UpdatePolicy::of(&s);
        assert_eq!(u.order, UpdateOrder::StartFirst);
        assert_eq!(u.parallelism, 2);
        assert_eq!(u.delay, Duration::from_secs(3));
        // 30 s start period + 6 probes of 10 s + 5 s.
        assert_eq!(u.gate.timeout, Duration::from_secs(120));
        let (_, s) = service(json!({
            "image": "x",
            "deploy": {"update_config": {"order": "start-first", "monitor": "1s"}}
        }));
        let u = UpdatePolicy::of(&s);
        assert_eq!(u.gate.timeout, Duration::from_secs(1));
        assert_eq!(
            u.gate.stable,
            Duration::from_secs(1),
            "never past the timeout"
        );
    }

    #[test]
    fn replicas_that_cannot_run_twice_are_named() {
        assert_eq!(blocker(json!({"image": "x", "ports": ["80:80"]})), None);
        assert!(
            blocker(json!({"image": "x", "container_name": "w"}))
                .unwrap()
                .contains("container_name")
        );
        assert!(
            blocker(json!({"image": "x", "network_mode": "host", "ports": ["80:80"]}))
                .unwrap()
                .contains("host")
        );
        assert_eq!(
            blocker(json!({"image": "x", "network_mode": "host"})),
            None,
            "host networking binding nothing declared"
        );
        assert!(
            blocker(json!({"image": "x", "network_mode": "service:db"}))
                .unwrap()
                .contains("service:db")
        );
        let fixed = blocker(json!({
            "image": "x",
            "networks": {"front": {"ipv4_address": "10.0.0.5"}}
        }));
        assert!(fixed.unwrap().contains("ipv4_address"));
    }
}
