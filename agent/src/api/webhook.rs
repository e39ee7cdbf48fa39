//! Forges' push webhooks on `POST /api/v1/source/refresh`. A forge cannot
//! send our bearer token, so with `--git-webhook-secret-file` the call is
//! also accepted when it proves it knows that secret the way the forge
//! does: GitHub, Gitea and Forgejo sign the body (`X-Hub-Signature-256:
//! sha256=<hex HMAC-SHA256(secret, body)>`), GitLab sends the secret
//! itself (`X-Gitlab-Token`). Compared in constant time. The secret only
//! ever asks for a fetch: it is not the API token.

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};

use super::auth::constant_time_eq;

/// Whether `headers` and `body` prove knowledge of `secret`.
pub fn verified(secret: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(signature) = header("x-hub-signature-256") {
        let expected = signature_of(secret, body);
        return constant_time_eq(signature.trim().as_bytes(), expected.as_bytes());
    }
    if let Some(token) = header("x-gitlab-token") {
        return constant_time_eq(token.trim().as_bytes(), secret.as_bytes());
    }
    false
}

/// `X-Hub-Signature-256` of `body` under `secret`, as a forge computes it.
pub fn signature_of(secret: &str, body: &[u8]) -> String {
    format!("sha256={}", hex(&hmac_sha256(secret.as_bytes(), body)))
}

/// RFC 2104 HMAC over SHA-256 (64-byte blocks).
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2.
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than a block.
        assert_eq!(
            hex(&hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn signatures_and_tokens_are_checked() {
        let body = br#"{"ref":"refs/heads/main"}"#;
        let signed = signature_of("s3cret", body);
        let headers = |name: &'static str, value: &str| {
            let mut h = HeaderMap::new();
            h.insert(name, value.parse().unwrap());
            h
        };
        assert!(verified(
            "s3cret",
            &headers("x-hub-signature-256", &signed),
            body
        ));
        assert!(!verified(
            "s3cret",
            &headers("x-hub-signature-256", &signed),
            b"{}"
        ));
        assert!(!verified(
            "other",
            &headers("x-hub-signature-256", &signed),
            body
        ));
        assert!(verified(
            "s3cret",
            &headers("x-gitlab-token", "s3cret"),
            body
        ));
        assert!(!verified(
            "s3cret",
            &headers("x-gitlab-token", "s3cre"),
            body
        ));
        assert!(!verified("s3cret", &HeaderMap::new(), body));
    }
}
