//! `login`'s check of a username and password (the registry's `/v2/`
//! challenge, then Basic or the token flow), and the challenge parsing and
//! form encoding the token flows share (`oauth`).

use serde_json::Value;

use super::hosts;
use crate::error::{Error, ErrorKind, Result};
use crate::reference::DEFAULT_DOMAIN;

/// Checks `username`/`password` against `domain` the way `docker login`
/// does: `/v2/`, and on a `401` the challenge it names (Basic: the same
/// request with the credentials; Bearer: a token from the realm with them).
pub async fn login_check(
    insecure: &hosts::Insecure,
    domain: &str,
    username: &str,
    password: &str,
) -> Result<()> {
    super::install_crypto();
    let host = if domain == DEFAULT_DOMAIN {
        "registry-1.docker.io"
    } else {
        domain
    };
    let url = format!("{}://{host}/v2/", insecure.scheme(domain));
    let failed = |message: String, kind: ErrorKind| Error::Registry {
        action: "log in to",
        reference: domain.to_owned(),
        message,
        kind,
    };
    let net = |e: reqwest::Error| failed(super::error_chain(&e), ErrorKind::Registry);
    let client = client_builder().build().map_err(net)?;
    let first = client.get(&url).send().await.map_err(net)?;
    if first.status().is_success() {
        // No auth at all: docker says "Login Succeeded" too.
        return Ok(());
    }
    if first.status().as_u16() != 401 {
        return Err(failed(
            format!("GET {url} answered {}", first.status()),
            ErrorKind::Registry,
        ));
    }
    let challenge = challenge_of(&first);
    let denied = || {
        failed(
            "unauthorized: incorrect username or password".into(),
            ErrorKind::Unauthorized,
        )
    };
    if challenge.to_ascii_lowercase().starts_with("basic") {
        let res = client
            .get(&url)
            .basic_auth(username, Some(password))
            .send()
            .await
            .map_err(net)?;
        return if res.status().is_success() {
            Ok(())
        } else {
            Err(denied())
        };
    }
    let params = parse_challenge(&challenge);
    let realm = challenge_param(&params, "realm").ok_or_else(|| {
        failed(
            format!("unsupported authentication challenge {challenge:?}"),
            ErrorKind::Registry,
        )
    })?;
    let mut query = vec![
        ("account", username.to_owned()),
        ("client_id", CLIENT_ID.to_owned()),
    ];
    if let Some(service) = challenge_param(&params, "service") {
        query.push(("service", service));
    }
    let mut token_url = realm.clone();
    token_url.push(if realm.contains('?') { '&' } else { '?' });
    token_url.push_str(&form_encode(&query));
    let res = client
        .get(&token_url)
        .basic_auth(username, Some(password))
        .send()
        .await
        .map_err(net)?;
    if !res.status().is_success() {
        return Err(denied());
    }
    let body: Value = res.bytes().await.map_err(net).and_then(|b| {
        serde_json::from_slice(&b).map_err(|e| failed(e.to_string(), ErrorKind::Registry))
    })?;
    let token = body
        .get("token")
        .or_else(|| body.get("access_token"))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            failed(
                "the token endpoint returned no token".into(),
                ErrorKind::Registry,
            )
        })?;
    let res = client
        .get(&url)
        .bearer_auth(token)
        .send()
        .await
        .map_err(net)?;
    if res.status().is_success() {
        Ok(())
    } else {
        Err(denied())
    }
}

/// The client id berth names itself with at token servers.
pub(super) const CLIENT_ID: &str = "berth";

/// A client builder that names berth as the user agent.
pub(super) fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder().user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
}

/// The `WWW-Authenticate` challenge of an answer ("" when it has none).
pub(super) fn challenge_of(res: &reqwest::Response) -> String {
    res.headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// The value of `name` in a [`parse_challenge`] list.
pub(super) fn challenge_param(params: &[(String, String)], name: &str) -> Option<String> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

/// `k=v&k=v` with each value percent-encoded (a query string or an
/// `application/x-www-form-urlencoded` body).
pub(super) fn form_encode(pairs: &[(&str, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", url_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// `Bearer realm="x",service="y"` → `[(realm, x), (service, y)]`.
pub(super) fn parse_challenge(header: &str) -> Vec<(String, String)> {
    let rest = header.split_once(' ').map(|(_, r)| r).unwrap_or("");
    let mut out = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = chars.by_ref().take_while(|c| *c != ',').collect();
        }
        out.push((key.trim().to_ascii_lowercase(), value));
    }
    out
}

pub(super) fn url_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse() {
        let p = parse_challenge(
            r#"Bearer realm="https://auth.io/token",service="registry.io",scope="a,b""#,
        );
        assert_eq!(
            p,
            vec![
                ("realm".into(), "https://auth.io/token".into()),
                ("service".into(), "registry.io".into()),
                ("scope".into(), "a,b".into())
            ]
        );
    }
}
