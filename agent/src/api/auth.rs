//! Bearer tokens for the mutating calls.
//!
//! One shared token, read once at start (`--token-file`, or
//! `BERTH_API_TOKEN`). Compared in constant time over its bytes (only the
//! length can leak), so response timing does not reveal a prefix.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;

use super::types::ApiError;

/// How mutating calls are authorized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// No token configured: mutating calls are refused (403).
    Disabled,
    Token(String),
}

impl Auth {
    /// `Ok` when `headers` carry the configured token.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let token = match self {
            Auth::Disabled => {
                return Err(ApiError::forbidden(
                    "mutating calls are disabled because no API token is configured: start \\
                     the agent with --token-file FILE (a file holding the token) or with \\
                     BERTH_API_TOKEN set, then send `Authorization: Bearer <token>`",
                ));
            }
            Auth::Token(t) => t,
        };
        let presented = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, rest) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            });
        match presented {
            None => Err(ApiError::unauthorized(
                "this call needs `Authorization: Bearer <token>` with the agent's API token",
            )),
            Some(p) if constant_time_eq(p.as_bytes(), token.as_bytes()) => Ok(()),
            Some(_) => Err(ApiError::unauthorized("the bearer token is not valid")),
        }
    }
}

pub(super) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, value.parse().unwrap());
        h
    }

    #[test]
    fn tokens_are_checked() {
        let auth = Auth::Token("s3cret".into());
        assert!(auth.check(&headers("Bearer s3cret")).is_ok());
        assert!(auth.check(&headers("bearer s3cret")).is_ok());
        assert_eq!(auth.check(&headers("Bearer s3cre")).unwrap_err().code, 401);
        assert_eq!(
            auth.check(&headers("Bearer s3cretx")).unwrap_err().code,
            401
        );
        assert_eq!(auth.check(&headers("Basic s3cret")).unwrap_err().code, 401);
        assert_eq!(auth.check(&HeaderMap::new()).unwrap_err().code, 401);
    }

    #[test]
    fn without_a_token_mutations_are_forbidden_with_a_hint() {
        let err = Auth::Disabled.check(&headers("Bearer x")).unwrap_err();
        assert_eq!(err.code, 403);
        assert!(err.message.contains("--token-file"), "{}", err.message);
        assert!(err.message.contains("BERTH_API_TOKEN"), "{}", err.message);
    }
}
