//! A service's compose `build:` section as a request to berth's builder
//! ([`berth_build::BuildRequest`]): the keys the builder implements are
//! translated, the ones it cannot honour are refused with a message naming
//! the key, and the ones with no effect here are accepted and say so.
//!
//! Values compose takes from "the environment" (an `args` entry without a
//! value, a secret with `environment:`) come from `env`: the process
//! environment for the CLI and the agent.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use berth_build::{BuildNetwork, DockerfileSource, SecretSource};
use berth_reconcilers::BackendError;
use berth_reconcilers::ErrorKind;
use berth_reconcilers::container::BuildRequest;

/// `build.args` entries without a value take it from the project's
/// environment (the process environment under `.env`), as compose
/// resolves them; unset ones stay without a value (and are left out of
/// the build, unless the builder's process has them).
pub fn resolve_build_args(
    project: &mut berth_spec::compose::model::Project,
    env: &BTreeMap<String, String>,
) {
    for service in project.services.values_mut() {
        let Some(build) = service.build.as_mut() else {
            continue;
        };
        for (k, v) in build.args.iter_mut() {
            if v.is_none() {
                *v = env.get(k).cloned();
            }
        }
    }
}

/// Looks up a variable of the environment compose would read.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

fn refuse(request: &BuildRequest, message: impl std::fmt::Display) -> BackendError {
    BackendError::new(
        ErrorKind::InvalidArgument,
        format!("service {:?}: build.{message}", request.service),
    )
}

/// The builder's request for `request`, tagged with its reference and
/// `build.tags`.
pub fn translate(
    request: &BuildRequest,
    env: EnvLookup<'_>,
) -> Result<berth_build::BuildRequest, BackendError> {
    let b = &request.build;
    let context = match b.context.as_deref() {
        None => {
            return Err(refuse(
                request,
                "context is missing (the loader gives it the compose file's folder)",
            ));
        }
        Some(c) if berth_spec::compose::paths::is_remote_context(c) => {
            return Err(refuse(
                request,
                format!(
                    "context {c:?}: remote contexts (git, http) are not supported; clone it and give the folder"
                ),
            ));
        }
        Some(c) => PathBuf::from(c),
    };
    let dockerfile = match (&b.dockerfile_inline, &b.dockerfile) {
        (Some(_), Some(_)) => {
            return Err(refuse(
                request,
                "dockerfile and build.dockerfile_inline are both set; keep one",
            ));
        }
        (Some(text), None) => Some(DockerfileSource::Inline(text.clone())),
        // Compose: relative to the context, not to the compose file.
        (None, Some(f)) => Some(DockerfileSource::Path(resolve(&context, f))),
        (None, None) => None,
    };
    if !b.ssh.is_empty() {
        return Err(refuse(
            request,
            "ssh: SSH agent forwarding into builds is not supported; use build.secrets for keys the build needs",
        ));
    }
    if !b.additional_contexts.is_empty() {
        let names: Vec<&str> = b.additional_contexts.keys().map(String::as_str).collect();
        return Err(refuse(
            request,
            format!(
                "additional_contexts ({}): named contexts for COPY --from are not supported by berth's builder; copy the files into the main context",
                names.join(", ")
            ),
        ));
    }
    if !b.extra_hosts.is_empty() {
        return Err(refuse(
            request,
            "extra_hosts: RUN steps cannot get extra /etc/hosts entries yet; remove the key or use network: host",
        ));
    }
    if b.privileged {
        return Err(refuse(
            request,
            "privileged: privileged RUN steps are not supported",
        ));
    }
    if !b.entitlements.is_empty() {
        return Err(refuse(
            request,
            format!(
                "entitlements ({}): not supported",
                b.entitlements.join(", ")
            ),
        ));
    }
    if !b.ulimits.is_empty() {
        return Err(refuse(
            request,
            "ulimits: RUN steps run with the builder's limits; remove the key",
        ));
    }
    if !b.no_cache_filter.is_empty() {
        return Err(refuse(
            request,
            "no_cache_filter: not supported; use no_cache: true (or `build --no-cache`)",
        ));
    }
    let platform = platform(request)?;
    let network = match b.network.as_deref() {
        None | Some("default") | Some("none") => BuildNetwork::None,
        Some("host") => BuildNetwork::Host,
        Some(other) => {
            return Err(refuse(
                request,
                format!("network {other:?}: builds run with default, none or host"),
            ));
        }
    };
    if let Some(isolation) = &b.isolation {
        tracing::warn!(service = %request.service, isolation = %isolation,
            "build.isolation is a Windows setting; ignored");
    }
    if !b.cache_to.is_empty() {
        tracing::warn!(service = %request.service, cache_to = ?b.cache_to,
            "build.cache_to: berth keeps its layer cache locally only; not exported");
    }
    if !b.cache_from.is_empty() {
        // Every build already reads the local layer cache; a remote cache
        // would need registry cache import.
        tracing::debug!(service = %request.service, cache_from = ?b.cache_from,
            "build.cache_from: the local build cache is always used; remote caches are not read");
    }
    let mut build_args = BTreeMap::new();
    for (k, v) in &b.args {
        // Compose: `args: [K]` takes K from the environment, absent: unset.
        let value = match v {
            Some(v) => Some(v.clone()),
            None => env(k),
        };
        if let Some(v) = value {
            build_args.insert(k.clone(), v);
        }
    }
    let mut secrets = BTreeMap::new();
    for s in &b.secrets {
        let Some(def) = request.secrets.get(&s.source) else {
            return Err(refuse(
                request,
                format!(
                    "secrets: {:?} is not defined in the top-level secrets:",
                    s.source
                ),
            ));
        };
        let id = s.target.clone().unwrap_or_else(|| s.source.clone());
        let source = if let Some(file) = &def.file {
            SecretSource::File(PathBuf::from(file))
        } else if let Some(var) = &def.environment {
            match env(var) {
                Some(v) => SecretSource::Value(v.into_bytes()),
                None => {
                    return Err(refuse(
                        request,
                        format!(
                            "secrets: secret {:?} reads environment variable {var}, which is not set",
                            s.source
                        ),
                    ));
                }
            }
        } else if let Some(content) = &def.content {
            SecretSource::Value(content.clone().into_bytes())
        } else {
            return Err(refuse(
                request,
                format!(
                    "secrets: secret {:?} has no file, environment or content to build with",
                    s.source
                ),
            ));
        };
        secrets.insert(id, source);
    }
    let mut tags = vec![request.reference.clone()];
    tags.extend(b.tags.iter().filter(|t| **t != request.reference).cloned());
    Ok(berth_build::BuildRequest {
        context,
        dockerfile,
        build_args,
        target: b.target.clone(),
        labels: b
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        tags,
        no_cache: b.no_cache,
        network,
        shm_size: b.shm_size.map(|s| s.0.max(0) as u64),
        cache_from: b.cache_from.clone(),
        secrets,
        platform,
        // Set by `run_build` (see `crate::interrupt`).
        cancel: None,
    })
}

/// `platforms:` must include the host's: that is the one image built.
fn platform(request: &BuildRequest) -> Result<Option<String>, BackendError> {
    let platforms = &request.build.platforms;
    if platforms.is_empty() {
        return Ok(None);
    }
    let host = format!("linux/{}", berth_image::platform::host_arch());
    let matches = |p: &str| p == host || p.trim_end_matches("/v8") == host;
    if platforms.iter().any(|p| matches(p)) {
        if platforms.len() > 1 {
            tracing::warn!(service = %request.service, platforms = ?platforms, host = %host,
                "build.platforms: only the host's platform is built");
        }
        return Ok(Some(host));
    }
    Err(refuse(
        request,
        format!(
            "platforms {}: berth builds for the host platform ({host}) only; add it to the list",
            platforms.join(", ")
        ),
    ))
}

/// The images the stages of `build` start from (not `scratch`, not an
/// earlier stage), in file order: what `build.pull` / `build --pull`
/// pull before building.
pub fn base_images(build: &berth_build::BuildRequest) -> Result<Vec<String>, BackendError> {
    let invalid = |m: String| BackendError::new(ErrorKind::InvalidArgument, m);
    let (text, file) = match &build.dockerfile {
        Some(DockerfileSource::Inline(text)) => (text.clone(), PathBuf::from("Dockerfile")),
        Some(DockerfileSource::Path(p)) => (
            std::fs::read_to_string(p).map_err(|e| super::error::io("read", p, e))?,
            p.clone(),
        ),
        None => {
            let p = build.context.join("Dockerfile");
            (
                std::fs::read_to_string(&p).map_err(|e| super::error::io("read", &p, e))?,
                p,
            )
        }
    };
    let dockerfile = berth_spec::dockerfile::Dockerfile::parse(&text, &file)
        .map_err(|d| invalid(d.to_string()))?;
    let args = |k: &str| build.build_args.get(k).cloned();
    let needed = dockerfile
        .target_stages(build.target.as_deref(), &args)
        .map_err(|d| invalid(d.to_string()))?;
    let mut bases = Vec::new();
    for index in needed {
        let Some(stage) = dockerfile.stages.get(index) else {
            continue;
        };
        let base = dockerfile
            .expanded_base(stage, &args)
            .map_err(|e| invalid(format!("{}: FROM {}: {e}", file.display(), stage.base)))?;
        if base == "scratch"
            || dockerfile.resolve_stage_ref(&base, index).is_some()
            || bases.contains(&base)
        {
            continue;
        }
        bases.push(base);
    }
    Ok(bases)
}

fn resolve(context: &Path, file: &str) -> PathBuf {
    let p = Path::new(file);
    if p.is_absolute() {
        p.to_owned()
    } else {
        context.join(p)
    }
}

#[cfg(test)]
#[path = "build_request_tests.rs"]
mod tests;
