//! What a service needs before its containers: networks and volumes that
//! do not exist yet, and its image (pulled or built when missing, with
//! `--build`, `--pull always`, or refreshed for `pull_policy: always`;
//! never built with `--no-build`). One action per
//! resource, shared by every service that needs it.

use std::collections::BTreeMap;

use super::super::types::{Action, ActionId, Reason, ReasonKind};
use super::super::{Builder, PullMode};
use super::{Context, ServicePlanner};
use crate::container::{BuildRequest, NetworkSpec, Subnet, VolumeSpec, labels};
use crate::desired;

/// The planned pulls and builds of the images a build reads through
/// `service:NAME` contexts: they run first.
fn image_inputs(action: &Action, ctx: &Context) -> Vec<ActionId> {
    let Action::BuildImage { request } = action else {
        return Vec::new();
    };
    request
        .service_contexts()
        .filter_map(|service| request.service_images.get(service))
        .filter_map(|reference| ctx.images.get(reference).copied())
        .collect()
}

impl ServicePlanner<'_> {
    /// A pull or build for new containers when the image is missing (or
    /// `--build`); shared by every service naming the same image.
    pub(super) fn image_action(
        &self,
        reference: &str,
        local_digest: Option<&str>,
        refresh: Option<ActionId>,
        b: &mut Builder,
        ctx: &mut Context,
    ) -> Option<ActionId> {
        if refresh.is_some() {
            return refresh;
        }
        if let Some(id) = ctx.images.get(reference) {
            return Some(*id);
        }
        if local_digest.is_some() {
            return None;
        }
        let reason = Reason::new(
            ReasonKind::ImageMissing,
            format!("{reference} is not present"),
        );
        let action = if let Some(build) = &self.service.build {
            if self.options.no_build {
                return None;
            }
            Action::BuildImage {
                request: Box::new(self.build_request(reference, build)),
            }
        } else if self.options.pull == PullMode::Never
            || self.service.pull_policy.as_deref() == Some("never")
        {
            return None;
        } else {
            Action::PullImage {
                reference: reference.to_string(),
            }
        };
        let after = image_inputs(&action, ctx);
        let id = b.push(Some(self.name), action, vec![reason], after);
        ctx.images.insert(reference.to_string(), id);
        Some(id)
    }

    /// A pull or build this plan makes whatever the containers need:
    /// `--build`, or a refresh of a `pull_policy: always` image.
    pub(super) fn plan_refresh(
        &self,
        reference: &str,
        b: &mut Builder,
        ctx: &mut Context,
    ) -> Option<ActionId> {
        if let Some(id) = ctx.images.get(reference) {
            return Some(*id);
        }
        let build_policy = self.service.pull_policy.as_deref() == Some("build");
        // An image built from another service's image (`service:` context)
        // is built again when that image is pulled or built in this plan.
        let rebuilt_base = self
            .service
            .build
            .iter()
            .flat_map(|b| b.additional_contexts.values())
            .filter_map(|v| v.strip_prefix("service:"))
            .find(|other| {
                self.desired.services.get(*other).is_some_and(|s| {
                    let r = desired::image_reference(&self.desired.name, other, s);
                    ctx.images.contains_key(&r)
                })
            });
        let action = match &self.service.build {
            Some(build) if self.options.build => (
                Action::BuildImage {
                    request: Box::new(self.build_request(reference, build)),
                },
                Reason::new(ReasonKind::Forced, "--build"),
            ),
            Some(build)
                if !self.options.no_build && self.observed.build_stale(reference).is_some() =>
            {
                (
                    Action::BuildImage {
                        request: Box::new(self.build_request(reference, build)),
                    },
                    Reason::new(
                        ReasonKind::BuildContextChanged,
                        self.observed.build_stale(reference).unwrap_or_default(),
                    ),
                )
            }
            Some(build)
                if !self.options.no_build
                    && self.observed.images.contains_key(reference)
                    && rebuilt_base.is_some() =>
            {
                (
                    Action::BuildImage {
                        request: Box::new(self.build_request(reference, build)),
                    },
                    Reason::new(
                        ReasonKind::BuildContextChanged,
                        format!(
                            "the image of service {:?} it builds from is built again",
                            rebuilt_base.unwrap_or_default()
                        ),
                    ),
                )
            }
            Some(build) if build_policy && self.options.build_policy && !self.options.no_build => (
                Action::BuildImage {
                    request: Box::new(self.build_request(reference, build)),
                },
                Reason::new(ReasonKind::Forced, "pull_policy build"),
            ),
            None if self.options.refresh_images
                && self.options.pull != PullMode::Never
                && self.service.pull_policy.as_deref().is_some_and(refreshes) =>
            {
                (
                    Action::PullImage {
                        reference: reference.to_string(),
                    },
                    Reason::new(
                        ReasonKind::ImageRefresh,
                        format!(
                            "pull_policy {}",
                            self.service.pull_policy.as_deref().unwrap_or_default()
                        ),
                    ),
                )
            }
            None if self.options.pull == PullMode::Always => (
                Action::PullImage {
                    reference: reference.to_string(),
                },
                Reason::new(ReasonKind::ImageRefresh, "--pull always"),
            ),
            _ => return None,
        };
        let after = image_inputs(&action.0, ctx);
        let id = b.push(Some(self.name), action.0, vec![action.1], after);
        ctx.images.insert(reference.to_string(), id);
        Some(id)
    }

    fn build_request(
        &self,
        reference: &str,
        build: &berth_spec::compose::model::BuildConfig,
    ) -> BuildRequest {
        desired::build_request(self.desired, self.name, reference, build)
    }

    /// Networks and volumes the service uses that do not exist yet.
    pub(super) fn plan_resources(&self, b: &mut Builder, ctx: &mut Context) -> Vec<ActionId> {
        let project = self.desired;
        let mut ids = Vec::new();
        if self.service.network_mode.is_none() {
            for key in self.service.networks.keys() {
                let Some(def) = project.networks.get(key) else {
                    continue;
                };
                let name = desired::network_name(project, key);
                if def.external {
                    continue;
                }
                if let Some(id) = ctx.resources.get(&name) {
                    ids.push(*id);
                    continue;
                }
                if self.observed.has_network(&name) {
                    continue;
                }
                let labels = resource_labels(&def.labels, &project.name, labels::NETWORK, key);
                let spec = NetworkSpec {
                    name: name.clone(),
                    driver: def.driver.clone(),
                    driver_opts: def
                        .driver_opts
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                    internal: def.internal,
                    enable_ipv6: def.enable_ipv6.unwrap_or(false),
                    subnets: def
                        .ipam
                        .config
                        .iter()
                        .map(|p| Subnet {
                            subnet: p.subnet.clone(),
                            gateway: p.gateway.clone(),
                            ip_range: p.ip_range.clone(),
                        })
                        .collect(),
                    labels,
                };
                ids.push(push_missing(
                    b,
                    ctx,
                    name,
                    "network",
                    Action::CreateNetwork { spec },
                ));
            }
        }
        for key in self
            .service
            .volumes
            .iter()
            .filter(|v| v.kind == "volume")
            .filter_map(|v| v.source.as_ref())
        {
            let Some(def) = project.volumes.get(key) else {
                continue;
            };
            let name = desired::volume_name(project, key);
            if def.external {
                continue;
            }
            if let Some(id) = ctx.resources.get(&name) {
                ids.push(*id);
                continue;
            }
            if self.observed.has_volume(&name) {
                continue;
            }
            let labels = resource_labels(&def.labels, &project.name, labels::VOLUME, key);
            let spec = VolumeSpec {
                name: name.clone(),
                driver: def.driver.clone(),
                driver_opts: def
                    .driver_opts
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                labels,
            };
            ids.push(push_missing(
                b,
                ctx,
                name,
                "volume",
                Action::CreateVolume { spec },
            ));
        }
        ids
    }
}

/// A network's or volume's own labels plus the two that tie it to its
/// project and key (`kind_label` is the network or volume label name).
fn resource_labels(
    own: &indexmap::IndexMap<String, String>,
    project: &str,
    kind_label: &str,
    key: &str,
) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> =
        own.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    labels.insert(labels::PROJECT.into(), project.to_string());
    labels.insert(kind_label.into(), key.to_string());
    labels
}

/// Plans the creation of a missing network or volume, once per plan: later
/// services that use it wait on the same action.
fn push_missing(
    b: &mut Builder,
    ctx: &mut Context,
    name: String,
    kind: &str,
    action: Action,
) -> ActionId {
    let id = b.push(
        None,
        action,
        vec![Reason::new(
            ReasonKind::ResourceMissing,
            format!("{kind} {name} does not exist"),
        )],
        Vec::new(),
    );
    ctx.resources.insert(name, id);
    id
}

/// `pull_policy` values that mean "pull again from time to time".
fn refreshes(policy: &str) -> bool {
    policy == "always" || policy == "daily" || policy == "weekly" || policy.starts_with("every_")
}
