//! [`ImageSource`] over the local [`Store`] and the registries: `pull`
//! downloads with berth's registry client (credentials from the docker
//! config, insecure registries from `BERTH_INSECURE_REGISTRIES` and
//! `/etc/berth/registries.json`); `build` runs berth's builder on the
//! service's `build:` section (see `build_request` and `build_output`).
//!
//! Compose's `pull_policy`: `missing` (the default) and `never` are the
//! planner's (a pull is planned only for a missing image, or never);
//! `always` pulls whenever the caller asks for a refresh (`berth up`, an
//! agent apply). `daily`, `weekly` and `every_<duration>` are gated here:
//! a refresh of such an image is skipped while its last pull, recorded in
//! the store (`registry.json`), is more recent than the interval.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use berth_image::registry::{
    DockerConfig, INSECURE_ENV, Insecure, NoProgress, PullOptions, REGISTRIES_CONFIG, Registry,
    RegistryRecords, block_on,
};
use berth_image::{Reference, Store};
use berth_reconcilers::BackendError;
use berth_reconcilers::ImageSource;
use berth_reconcilers::container::BuildRequest;
use berth_runtime::Runtime;
use berth_spec::compose::model::Project;

use super::build_inputs::BuildInputs;
use super::build_output::BuildOutput;
use super::error::from_image;

pub struct Images {
    store: Store,
    /// Full reference → minimum time between pulls (timed policies).
    intervals: RwLock<HashMap<String, Duration>>,
    runtime: Runtime,
    build_output: Arc<dyn BuildOutput>,
    build_inputs: BuildInputs,
}

impl Images {
    pub fn new(store: Store, runtime: Runtime) -> Self {
        Images {
            build_inputs: BuildInputs::new(store.root()),
            store,
            intervals: RwLock::new(HashMap::new()),
            runtime,
            build_output: Arc::new(super::build_output::Log),
        }
    }

    /// Where builds report their steps: the log (the agent) unless a
    /// CLI verb shows them.
    pub fn set_build_output(&mut self, output: Arc<dyn BuildOutput>) {
        self.build_output = output;
    }

    /// Learns the timed `pull_policy` of `project`'s services, so their
    /// refreshes wait for the interval.
    pub fn note_pull_policies(&self, project: &Project) {
        let Ok(mut intervals) = self.intervals.write() else {
            return;
        };
        for service in project.services.values() {
            let (Some(image), Some(policy)) = (&service.image, &service.pull_policy) else {
                continue;
            };
            let (Some(interval), Ok(reference)) =
                (policy_interval(policy), Reference::parse(image))
            else {
                continue;
            };
            let entry = intervals.entry(reference.to_string()).or_insert(interval);
            // Two projects, one image: the more eager policy wins.
            *entry = (*entry).min(interval);
        }
    }

    pub(super) fn registry() -> Result<Registry, BackendError> {
        let env = std::env::var(INSECURE_ENV).ok();
        let insecure = Insecure::from_sources(
            &[],
            env.as_deref(),
            Some(std::path::Path::new(REGISTRIES_CONFIG)),
        )
        .map_err(from_image)?;
        Ok(Registry::new(insecure, DockerConfig::from_env()))
    }

    /// The local image's ID when a timed policy says it is not due yet.
    fn not_due(&self, reference: &Reference) -> Option<String> {
        let interval = *self.intervals.read().ok()?.get(&reference.to_string())?;
        let since = self.store.since_pull(reference).ok()??;
        if since >= interval {
            return None;
        }
        let image = self.store.image(&reference.to_string()).ok()?;
        tracing::debug!(%reference, ?since, ?interval, "pull not due yet");
        Some(image.id.to_string())
    }
}

/// `daily` → 24 h, `weekly` → 7 d, `every_12h` → 12 h; `None` for the
/// other policies.
pub fn policy_interval(policy: &str) -> Option<Duration> {
    match policy {
        "daily" => Some(Duration::from_secs(24 * 3600)),
        "weekly" => Some(Duration::from_secs(7 * 24 * 3600)),
        other => {
            let d = other.strip_prefix("every_")?;
            berth_spec::units::parse_duration(d).ok()
        }
    }
}

impl ImageSource for Images {
    /// The image ID (`sha256:` + the config digest): what `berth images`
    /// shows and what containers record in `berth.image-id`, so a digest
    /// label and a local image compare directly.
    fn resolve(&self, reference: &str) -> Result<Option<String>, BackendError> {
        match self.store.image(reference) {
            Ok(image) => Ok(Some(image.id.to_string())),
            Err(e) if e.kind() == berth_image::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(from_image(e)),
        }
    }

    fn pull(&self, reference: &str) -> Result<String, BackendError> {
        let parsed = Reference::parse(reference).map_err(from_image)?;
        if let Some(id) = self.not_due(&parsed) {
            return Ok(id);
        }
        let registry = Self::registry()?;
        let outcome = block_on(registry.pull(
            &self.store,
            &parsed,
            &PullOptions::default(),
            Arc::new(NoProgress),
        ))
        .map_err(from_image)?
        .map_err(from_image)?;
        tracing::info!(
            image = %parsed.familiar(),
            digest = %outcome.digest,
            fetched = outcome.fetched,
            "pulled"
        );
        Ok(outcome.image.id.to_string())
    }

    fn build(&self, request: &BuildRequest) -> Result<String, BackendError> {
        if request.build.pull {
            // `build.pull` / `build --pull`: the bases are refreshed from
            // their registry first.
            let env = |k: &str| std::env::var(k).ok();
            let builder = berth_build::Builder::new(self.store.clone(), self.runtime.clone());
            let remote = super::build_request::git_checkout(&builder);
            let build = super::build_request::translate(request, &env, &remote)?;
            for base in super::build_request::base_images(&build)? {
                self.pull(&base).map_err(|e| {
                    BackendError::new(
                        e.kind(),
                        format!(
                            "service {:?}: build.pull: cannot pull the base image {base}: {}",
                            request.service, e.message
                        ),
                    )
                })?;
            }
        }
        super::build_output::run_build(
            &self.store,
            &self.runtime,
            self.build_output.as_ref(),
            &self.build_inputs,
            request,
        )
    }

    fn build_stale(&self, request: &BuildRequest) -> Result<Option<String>, BackendError> {
        let Some(image_id) = self.resolve(&request.reference)? else {
            return Ok(None);
        };
        let env = |k: &str| std::env::var(k).ok();
        // A git context is resolved on its remote here: a moved branch
        // makes the image stale.
        let builder = berth_build::Builder::new(self.store.clone(), self.runtime.clone());
        let remote = super::build_request::git_checkout(&builder);
        let build = super::build_request::translate(request, &env, &remote)?;
        let id_of = |r: &str| self.store.image(r).ok().map(|i| i.id.to_string());
        let inputs = self.build_inputs.digest(&build, &id_of)?;
        Ok(self
            .build_inputs
            .stale(&request.reference, &image_id, &inputs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timed_policies_have_intervals() {
        assert_eq!(policy_interval("daily"), Some(Duration::from_secs(86400)));
        assert_eq!(
            policy_interval("weekly"),
            Some(Duration::from_secs(7 * 86400))
        );
        assert_eq!(
            policy_interval("every_12h"),
            Some(Duration::from_secs(12 * 3600))
        );
        assert_eq!(policy_interval("always"), None);
        assert_eq!(policy_interval("missing"), None);
    }
}
