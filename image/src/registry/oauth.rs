//! `identitytoken` credentials: an OAuth2 refresh token that `docker login`
//! keeps instead of a password (Azure Container Registry, Docker Desktop's
//! SSO), in `config.json` or from a credential helper (username
//! `<token>`). It is never sent to the registry itself: the token server
//! named by the registry's `WWW-Authenticate: Bearer realm=...` challenge
//! exchanges it for an access token for one repository and its actions
//! (docker/distribution's "OAuth2 token authentication": a `POST` of
//! `grant_type=refresh_token`, `refresh_token`, `service`, `scope`,
//! `client_id`), and that access token goes to oci-client as a bearer
//! token.
//!
//! A refresh token the server rotates (a new `refresh_token` in the
//! answer) is not written back: the old one keeps working until it
//! expires, and `docker login` renews it.

use serde_json::Value;
use tracing::debug;

use super::hosts;
use super::login::{
    CLIENT_ID, challenge_of, challenge_param, client_builder, form_encode, parse_challenge,
};
use crate::error::{Error, ErrorKind, Result};

/// What the access token is for: `pull`, or `pull,push` (and `pull` of
/// the repository a push mounts blobs from, as docker asks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access<'a> {
    Pull,
    Push { mount_from: Option<&'a str> },
}

impl Access<'_> {
    /// The token request's `scope`: space-separated resource scopes.
    fn scope(self, repository: &str) -> String {
        match self {
            Access::Pull => format!("repository:{repository}:pull"),
            Access::Push { mount_from: None } => format!("repository:{repository}:pull,push"),
            Access::Push {
                mount_from: Some(from),
            } => format!("repository:{repository}:pull,push repository:{from}:pull"),
        }
    }
}

/// Exchanges `refresh_token` for an access token to `repository` of
/// `domain`; `None` when the registry asks for no authentication at all.
pub(crate) async fn access_token(
    insecure: &hosts::Insecure,
    domain: &str,
    repository: &str,
    access: Access<'_>,
    refresh_token: &str,
) -> Result<Option<String>> {
    super::install_crypto();
    let host = hosts::api_host(domain);
    let failed = |message: String, kind: ErrorKind| Error::Registry {
        action: "authenticate to",
        reference: domain.to_owned(),
        message,
        kind,
    };
    let net = |e: reqwest::Error| failed(super::error_chain(&e), ErrorKind::Registry);
    let client = client_builder()
        .connect_timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(net)?;
    let url = format!("{}://{host}/v2/", insecure.scheme(domain));
    let first = client.get(&url).send().await.map_err(net)?;
    if first.status().is_success() {
        return Ok(None);
    }
    let challenge = challenge_of(&first);
    if first.status().as_u16() != 401 || !challenge.to_ascii_lowercase().starts_with("bearer") {
        return Err(failed(
            format!(
                "config.json holds an identity token for {domain}, but GET {url} answered {} with {:?} rather than a Bearer challenge naming a token server; log in with a username and password (`berth login {domain}`)",
                first.status(),
                challenge
            ),
            ErrorKind::Unauthorized,
        ));
    }
    let params = parse_challenge(&challenge);
    let param = |name: &str| challenge_param(&params, name);
    let realm = param("realm").ok_or_else(|| {
        failed(
            format!("the registry's challenge {challenge:?} names no realm (token server)"),
            ErrorKind::Registry,
        )
    })?;
    let scope = access.scope(repository);
    let mut form = vec![
        ("grant_type", "refresh_token".to_owned()),
        ("refresh_token", refresh_token.to_owned()),
        ("client_id", CLIENT_ID.to_owned()),
        ("scope", scope.clone()),
    ];
    if let Some(service) = param("service") {
        form.push(("service", service));
    }
    let body = form_encode(&form);
    debug!(%realm, %scope, "exchanging the identity token for an access token");
    let res = client
        .post(&realm)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .map_err(net)?;
    let status = res.status();
    let bytes = res.bytes().await.map_err(net)?;
    let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if !status.is_success() {
        let reason = ["error_description", "error", "details"]
            .iter()
            .find_map(|k| answer.get(*k).and_then(Value::as_str))
            .map(str::to_owned)
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).trim().to_owned());
        let kind = if matches!(status.as_u16(), 400 | 401 | 403) {
            ErrorKind::Unauthorized
        } else {
            ErrorKind::Registry
        };
        return Err(failed(
            format!(
                "the token server {realm} refused the identity token from config.json ({status}: {reason}); it may have expired or been revoked: log in again (`docker login {domain}` or `berth login {domain}`)"
            ),
            kind,
        ));
    }
    answer
        .get("access_token")
        .or_else(|| answer.get("token"))
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(|t| Some(t.to_owned()))
        .ok_or_else(|| {
            failed(
                format!("the token server {realm} answered without an access_token"),
                ErrorKind::Registry,
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_name_the_repository_and_a_mount_source() {
        assert_eq!(Access::Pull.scope("team/app"), "repository:team/app:pull");
        assert_eq!(
            Access::Push { mount_from: None }.scope("team/app"),
            "repository:team/app:pull,push"
        );
        assert_eq!(
            Access::Push {
                mount_from: Some("team/base")
            }
            .scope("team/app"),
            "repository:team/app:pull,push repository:team/base:pull"
        );
    }
}
