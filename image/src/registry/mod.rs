//! Registry pull and push over the OCI distribution API (oci-client), with
//! blobs streamed into the [`Store`] (never buffered whole), every digest
//! verified, and credentials read as Docker reads them.
//!
//! - `hosts`: which registries speak plain http (loopback, and those listed
//!   as insecure) and the Docker Hub's API host.
//! - `auth`: `~/.docker/config.json` (`auths`, `credHelpers`, `credsStore`).
//! - `login`: `login`'s check of a username and password.
//! - `oauth`: `identitytoken` credentials, exchanged at the registry's
//!   token server (`grant_type=refresh_token`) for a bearer token.
//! - `pull`: manifest (or index, resolved to one platform), config and
//!   layers, fetched concurrently by `fetch` (resumable, verified).
//! - `push`: blobs the registry lacks (mounted from another repository of
//!   the same registry when the store knows one), then the manifest.
//! - `records`: when each reference was last pulled and its registry
//!   digests, for `RepoDigests` and `pull_policy: daily`.
//!
//! The API is async (oci-client is); [`block_on`] runs one call to the end
//! on a runtime of its own for synchronous callers.

mod auth;
mod fetch;
mod hosts;
mod login;
mod oauth;
mod pull;
mod push;
mod records;

use std::sync::Arc;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;

use crate::digest::Digest;
use crate::error::{Error, ErrorKind, Result};
use crate::reference::Reference;

pub use auth::{Credentials, DockerConfig};
pub use hosts::{INSECURE_ENV, Insecure, REGISTRIES_CONFIG, is_loopback};
pub use login::login_check;
pub use pull::{PullOptions, PullOutcome, PullStatus};
pub use push::PushOutcome;
pub use records::{PullRecord, RegistryRecords};

/// Layers fetched or pushed at once, as dockerd's default
/// `max-concurrent-downloads` is 3 (and uploads 5).
pub const DEFAULT_CONCURRENCY: usize = 3;

/// What happens to a blob during a pull or push, for progress display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgressEvent {
    /// Present already (in the store for a pull, in the registry for a
    /// push): nothing moves.
    Exists { digest: Digest },
    /// Transfer started; `offset` > 0 when a partial download resumes.
    Started {
        digest: Digest,
        size: u64,
        offset: u64,
    },
    /// `done` of `size` bytes moved.
    Bytes {
        digest: Digest,
        done: u64,
        size: u64,
    },
    /// Transferred and verified.
    Done { digest: Digest },
    /// Pushed by a cross-repository mount, no bytes moved.
    Mounted { digest: Digest, from: String },
}

/// Receives [`ProgressEvent`]s from the transfer tasks.
pub trait Progress: Send + Sync {
    fn event(&self, event: ProgressEvent);
}

/// Ignores progress.
pub struct NoProgress;

impl Progress for NoProgress {
    fn event(&self, _event: ProgressEvent) {}
}

/// A client for registries: which ones are insecure, where credentials
/// come from, how many transfers run at once.
#[derive(Clone)]
pub struct Registry {
    insecure: Insecure,
    docker_config: DockerConfig,
    concurrency: usize,
}

impl Registry {
    pub fn new(insecure: Insecure, docker_config: DockerConfig) -> Self {
        Registry {
            insecure,
            docker_config,
            concurrency: DEFAULT_CONCURRENCY,
        }
    }

    /// Transfers at once (at least 1).
    pub fn with_concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    pub fn docker_config(&self) -> &DockerConfig {
        &self.docker_config
    }

    pub fn insecure(&self) -> &Insecure {
        &self.insecure
    }

    /// A client for `domain`: plain http when it is insecure, https (with
    /// rustls) otherwise. One client per operation: its token cache is
    /// per repository and scope anyway.
    pub(crate) fn client(&self, domain: &str) -> Arc<oci_client::Client> {
        install_crypto();
        let host = hosts::api_host(domain);
        let protocol = if self.insecure.is_insecure(domain) {
            ClientProtocol::HttpsExcept(vec![host.to_owned()])
        } else {
            ClientProtocol::Https
        };
        Arc::new(oci_client::Client::new(ClientConfig {
            protocol,
            // One PUT per blob: chunked PATCHes of a few MiB each cost a
            // round trip apiece, and some registries mishandle them.
            use_monolithic_push: true,
            max_concurrent_download: self.concurrency,
            max_concurrent_upload: self.concurrency,
            user_agent: concat!("berth/", env!("CARGO_PKG_VERSION")),
            // An unreachable registry fails in bounded time; a slow blob
            // is fine as long as bytes keep coming.
            connect_timeout: Some(std::time::Duration::from_secs(30)),
            read_timeout: Some(std::time::Duration::from_secs(120)),
            ..ClientConfig::default()
        }))
    }

    /// The credentials Docker would use for `reference`'s registry, for
    /// `access` to its repository: an identity token is exchanged for an
    /// access token here (oci-client knows no refresh_token grant).
    pub(crate) async fn auth_for(
        &self,
        reference: &Reference,
        access: oauth::Access<'_>,
    ) -> Result<RegistryAuth> {
        let domain = reference.domain();
        Ok(match self.docker_config.credentials(domain)? {
            Some(Credentials::Basic { username, password }) => {
                RegistryAuth::Basic(username, password)
            }
            Some(Credentials::Token(token)) => RegistryAuth::Bearer(token),
            Some(Credentials::IdentityToken(refresh)) => {
                match oauth::access_token(
                    &self.insecure,
                    domain,
                    reference.path(),
                    access,
                    &refresh,
                )
                .await?
                {
                    Some(token) => RegistryAuth::Bearer(token),
                    None => RegistryAuth::Anonymous,
                }
            }
            None => RegistryAuth::Anonymous,
        })
    }
}

/// reqwest is built without a default crypto provider (see Cargo.toml):
/// install ring's. A second install is harmless (Err: already set).
/// rustls deprecates ring's provider for lacking post-quantum key
/// exchange; registries do not need it, and aws-lc-rs is a long C build.
#[allow(deprecated)]
pub(crate) fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Our [`Reference`] as oci-client's (the same grammar; Docker Hub's
/// `docker.io` is mapped to its API host by oci-client itself).
pub(crate) fn to_oci_ref(reference: &Reference) -> Result<oci_client::Reference> {
    let tag = reference.tag().unwrap_or("latest");
    let r = match reference.digest() {
        Some(d) => oci_client::Reference::with_tag_and_digest(
            reference.domain().to_owned(),
            reference.path().to_owned(),
            tag.to_owned(),
            d.to_string(),
        ),
        None => oci_client::Reference::with_tag(
            reference.domain().to_owned(),
            reference.path().to_owned(),
            tag.to_owned(),
        ),
    };
    Ok(r)
}

/// The same repository addressed by `digest`.
pub(crate) fn by_digest(
    reference: &oci_client::Reference,
    digest: &Digest,
) -> oci_client::Reference {
    oci_client::Reference::with_digest(
        reference.registry().to_owned(),
        reference.repository().to_owned(),
        digest.to_string(),
    )
}

/// An oci-client error as ours, classified so callers can tell a missing
/// image from bad credentials from an unreachable registry.
pub(crate) fn registry_error(
    action: &'static str,
    reference: &str,
    err: OciDistributionError,
) -> Error {
    let kind = match &err {
        OciDistributionError::ImageManifestNotFoundError(_) => ErrorKind::NotFound,
        OciDistributionError::AuthenticationFailure(_)
        | OciDistributionError::UnauthorizedError { .. } => ErrorKind::Unauthorized,
        OciDistributionError::RegistryError { envelope, .. } => {
            let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
            if codes
                .iter()
                .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied))
            {
                ErrorKind::Unauthorized
            } else if codes.iter().any(|c| {
                matches!(
                    c,
                    OciErrorCode::ManifestUnknown
                        | OciErrorCode::NameUnknown
                        | OciErrorCode::BlobUnknown
                        | OciErrorCode::NotFound
                )
            }) {
                ErrorKind::NotFound
            } else {
                ErrorKind::Registry
            }
        }
        OciDistributionError::ServerError { code, .. } => match *code {
            401 | 403 => ErrorKind::Unauthorized,
            404 => ErrorKind::NotFound,
            _ => ErrorKind::Registry,
        },
        OciDistributionError::DigestError(_) => ErrorKind::Invalid,
        OciDistributionError::RequestError(e) => match e.status().map(|s| s.as_u16()) {
            Some(401 | 403) => ErrorKind::Unauthorized,
            Some(404) => ErrorKind::NotFound,
            _ => ErrorKind::Registry,
        },
        _ => ErrorKind::Registry,
    };
    let mut message = error_chain(&err);
    if kind == ErrorKind::NotFound {
        message = format!("not found in the registry ({message})");
    }
    if kind == ErrorKind::Unauthorized {
        message.push_str(" (log in with `berth login REGISTRY`)");
    }
    Error::Registry {
        action,
        reference: reference.to_owned(),
        message,
        kind,
    }
}

/// An error and its causes on one line: reqwest hides the useful part
/// ("connection refused") in its source chain.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// Runs `future` to completion on a runtime of its own, on a thread of its
/// own, so it works whether or not the caller is inside a tokio runtime
/// (blocking inside one would panic).
pub fn block_on<F>(future: F) -> Result<F::Output>
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .map_err(|e| {
                        Error::io("start an async runtime for", "the registry client", e)
                    })?;
                Ok(runtime.block_on(future))
            })
            .join()
            .unwrap_or_else(|_| {
                Err(Error::Registry {
                    action: "run",
                    reference: "the registry client".into(),
                    message: "its thread panicked".into(),
                    kind: ErrorKind::Registry,
                })
            })
    })
}
