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

use berth_build::{BuildNetwork, DockerfileSource, Entitlements, ExtraHost, SecretSource};
use berth_reconcilers::BackendError;
use berth_reconcilers::ErrorKind;
use berth_reconcilers::container::BuildRequest;
use berth_runtime::Rlimit;

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

/// Turns a remote (git) build context into a folder: the URL and the
/// request so far (its secrets and ssh agents reach the remote).
pub type RemoteContext<'a> =
    &'a dyn Fn(&str, &berth_build::BuildRequest) -> Result<PathBuf, String>;

/// The remote-context step of [`translate`] over a real builder: the git
/// repository checked out under the store's `build/git/`.
pub fn git_checkout(
    builder: &berth_build::Builder,
) -> impl Fn(&str, &berth_build::BuildRequest) -> Result<PathBuf, String> + '_ {
    move |url, request| builder.git_context(url, request).map_err(|e| e.to_string())
}

/// The builder's request for `request`, tagged with its reference and
/// `build.tags`; a git `context:` is checked out through `remote`.
pub fn translate(
    request: &BuildRequest,
    env: EnvLookup<'_>,
    remote: RemoteContext<'_>,
) -> Result<berth_build::BuildRequest, BackendError> {
    let b = &request.build;
    let (context, remote_url) = match b.context.as_deref() {
        None => {
            return Err(refuse(
                request,
                "context is missing (the loader gives it the compose file's folder)",
            ));
        }
        Some(c) if berth_spec::compose::paths::is_remote_context(c) => (PathBuf::new(), Some(c)),
        Some(c) => (PathBuf::from(c), None),
    };
    if b.dockerfile_inline.is_some() && b.dockerfile.is_some() {
        return Err(refuse(
            request,
            "dockerfile and build.dockerfile_inline are both set; keep one",
        ));
    }
    let ssh = ssh_sources(b.ssh.iter().map(|k| (k.id.clone(), k.path.clone())), env)
        .map_err(|e| refuse(request, format!("ssh: {e}")))?;
    let mut named_contexts = BTreeMap::new();
    for (name, value) in &b.additional_contexts {
        let named = match value.strip_prefix("service:") {
            Some(service) => match request.service_images.get(service) {
                Some(reference) => berth_build::NamedContext::Image(reference.clone()),
                None => {
                    return Err(refuse(
                        request,
                        format!("additional_contexts.{name}: service {service:?} is not defined"),
                    ));
                }
            },
            None => berth_build::NamedContext::parse(value)
                .map_err(|e| refuse(request, format!("additional_contexts.{name}: {e}")))?,
        };
        named_contexts.insert(name.clone(), named);
    }
    let mut extra_hosts = Vec::new();
    for (name, addresses) in &b.extra_hosts {
        for address in addresses {
            extra_hosts.push(
                ExtraHost::new(name, address)
                    .map_err(|e| refuse(request, format!("extra_hosts: {e}")))?,
            );
        }
    }
    let entitlements = entitlements(&b.entitlements, b.privileged)
        .map_err(|e| refuse(request, format!("entitlements: {e}")))?;
    let ulimits = b
        .ulimits
        .iter()
        .map(|(name, u)| {
            let (soft, hard) = u.soft_hard();
            Rlimit {
                name: name.clone(),
                soft,
                hard,
            }
        })
        .collect();
    let ulimits = build_rlimits(ulimits, &format!("service {}", request.service))
        .map_err(|e| refuse(request, format!("ulimits: {e}")))?;
    if !b.no_cache_filter.is_empty() {
        return Err(refuse(
            request,
            "no_cache_filter: not supported; use no_cache: true (or `build --no-cache`)",
        ));
    }
    let platform = platform(request)?;
    let network = network(b.network.as_deref().unwrap_or("default"))
        .map_err(|e| refuse(request, format!("network: {e}")))?;
    if let Some(isolation) = &b.isolation {
        tracing::warn!(service = %request.service, isolation = %isolation,
            "build.isolation is a Windows setting; ignored");
    }
    let mut inline_cache = false;
    for spec in &b.cache_to {
        // Warned, not refused: a compose file written for CI caches
        // (type=gha, type=registry) should still build here.
        match super::build_cache::parse_cache_to(spec) {
            Ok(()) => inline_cache = true,
            Err(message) => tracing::warn!(service = %request.service,
                "build.cache_to: {message}; not exported"),
        }
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
    let mut build = berth_build::BuildRequest {
        context,
        dockerfile: None,
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
        extra_hosts,
        ulimits,
        entitlements,
        shm_size: b.shm_size.map(|s| s.0.max(0) as u64),
        // Specs as written: `build_output::run_build` makes them local
        // images (pulling) before the build.
        cache_from: b.cache_from.clone(),
        inline_cache,
        secrets,
        ssh,
        named_contexts,
        platform,
        // Set by `run_build` (see `crate::interrupt`).
        cancel: None,
    };
    if let Some(url) = remote_url {
        build.context =
            remote(url, &build).map_err(|e| refuse(request, format!("context {url:?}: {e}")))?;
    }
    build.dockerfile = match (&b.dockerfile_inline, &b.dockerfile) {
        (Some(text), _) => Some(DockerfileSource::Inline(text.clone())),
        // Compose: relative to the context, not to the compose file.
        (None, Some(f)) => Some(DockerfileSource::Path(resolve(&build.context, f))),
        (None, None) => None,
    };
    Ok(build)
}

/// The network of RUN steps (`berth build --network`, compose
/// `build.network`): `default` (a bridge with egress), `none`, `host`, or
/// the name of a network made with `berth network create`.
pub fn network(name: &str) -> Result<BuildNetwork, String> {
    Ok(match name {
        "default" => BuildNetwork::Default,
        "none" => BuildNetwork::None,
        "host" => BuildNetwork::Host,
        "" => return Err("give default, none, host or a network's name".to_owned()),
        other if other.starts_with("container:") => {
            return Err(format!(
                "{other:?}: builds run on default, none, host or a bridge network, not in another container's namespace"
            ));
        }
        other => BuildNetwork::Named(other.to_owned()),
    })
}

/// BuildKit's entitlements (`berth build --allow`, compose
/// `build.entitlements`); `privileged` (compose `build.privileged`)
/// grants `security.insecure`.
pub fn entitlements(names: &[String], privileged: bool) -> Result<Entitlements, String> {
    let mut granted = Entitlements {
        security_insecure: privileged,
        ..Entitlements::default()
    };
    // `--allow a,b` as well as `--allow a --allow b`.
    for name in names.iter().flat_map(|n| n.split(',')).map(str::trim) {
        match name {
            "network.host" => granted.network_host = true,
            "security.insecure" => granted.security_insecure = true,
            other => {
                return Err(format!(
                    "{other:?} is not an entitlement berth grants: use network.host or security.insecure"
                ));
            }
        }
    }
    Ok(granted)
}

/// Ulimits of RUN steps, checked, with a warning per value above what
/// this host allows (as a service's are). They are returned as asked: the
/// runtime clamps them when it sets them, and RUN steps' cache keys hold
/// them, which must not depend on the host (an inline cache made here is
/// matched elsewhere). `whose` names them in the warning.
pub fn build_rlimits(limits: Vec<Rlimit>, whose: &str) -> Result<Vec<Rlimit>, String> {
    berth_runtime::validate_rlimits(&limits).map_err(|e| e.to_string())?;
    for c in berth_runtime::clamp_rlimits_to_host(&mut limits.clone()) {
        tracing::warn!(
            ulimit = %c.name,
            requested = ?c.requested,
            allowed = ?c.allowed,
            "{whose}: build ulimit {} above the host's maximum: clamped to {}/{} (soft/hard)",
            c.name, c.allowed.0, c.allowed.1
        );
    }
    Ok(limits)
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

/// `--ssh` / `build.ssh` entries as the builder takes them: an id with
/// no path is the agent of `SSH_AUTH_SOCK` (from `env`); paths are
/// comma-separated (one socket, or key files).
pub fn ssh_sources(
    entries: impl Iterator<Item = (String, Option<String>)>,
    env: EnvLookup<'_>,
) -> Result<BTreeMap<String, Vec<PathBuf>>, String> {
    let mut out = BTreeMap::new();
    for (id, paths) in entries {
        if id.is_empty() {
            return Err("an entry has no id (use default or ID=PATH)".into());
        }
        let paths: Vec<PathBuf> = match paths.filter(|p| !p.is_empty()) {
            Some(p) => p.split(',').map(PathBuf::from).collect(),
            None => match env("SSH_AUTH_SOCK") {
                Some(sock) if !sock.is_empty() => vec![PathBuf::from(sock)],
                _ => {
                    return Err(format!(
                        "{id}: SSH_AUTH_SOCK is not set; start an agent (eval $(ssh-agent); ssh-add) or give {id}=PATH"
                    ));
                }
            },
        };
        out.insert(id, paths);
    }
    Ok(out)
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
