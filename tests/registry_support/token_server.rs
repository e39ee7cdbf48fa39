//! A token server for docker-registry's `auth: token:` mode, speaking
//! docker/distribution's "OAuth2 token authentication": a `POST` with
//! `grant_type=refresh_token` and the one refresh token it knows gets a
//! JWT access token (RS256, the signing certificate in the `x5c` header,
//! that certificate being the registry's `rootcertbundle`) granting the
//! requested repository actions; anything else gets `401 invalid_grant`.
//! Every request's form is kept, so a test can check what the client sent.
//!
//! The key and certificate are made by `openssl` (scripts/test.sh installs
//! it); the JWT is signed in process with ring.

#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

pub const SERVICE: &str = "berth-test-registry";
pub const ISSUER: &str = "berth-test-issuer";

pub struct TokenServer {
    pub port: u16,
    /// The PEM certificate the registry trusts (`rootcertbundle`).
    pub cert_pem: PathBuf,
    /// Each request: method, path, and its form (or query) fields.
    pub requests: Arc<Seen>,
}

struct Signer {
    key: ring::signature::RsaKeyPair,
    cert_der: Vec<u8>,
    refresh_token: String,
}

impl TokenServer {
    /// Makes a key and self-signed certificate in `dir` and serves tokens
    /// to holders of `refresh_token` on a free 127.0.0.1 port.
    pub fn start(dir: &Path, refresh_token: &str) -> TokenServer {
        let key_pem = dir.join("token-key.pem");
        let cert_pem = dir.join("token-cert.pem");
        let key_der = dir.join("token-key.der");
        let cert_der = dir.join("token-cert.der");
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=berth-test-token",
            "-days",
            "2",
            "-keyout",
            key_pem.to_str().unwrap(),
            "-out",
            cert_pem.to_str().unwrap(),
        ]);
        openssl(&[
            "pkcs8",
            "-topk8",
            "-nocrypt",
            "-in",
            key_pem.to_str().unwrap(),
            "-outform",
            "DER",
            "-out",
            key_der.to_str().unwrap(),
        ]);
        openssl(&[
            "x509",
            "-in",
            cert_pem.to_str().unwrap(),
            "-outform",
            "DER",
            "-out",
            cert_der.to_str().unwrap(),
        ]);
        let key = ring::signature::RsaKeyPair::from_pkcs8(&std::fs::read(&key_der).unwrap())
            .expect("openssl's PKCS#8 RSA key");
        let signer = Arc::new(Signer {
            key,
            cert_der: std::fs::read(&cert_der).unwrap(),
            refresh_token: refresh_token.to_owned(),
        });
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let signer = signer.clone();
                let seen = seen.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, &signer, &seen);
                });
            }
        });
        TokenServer {
            port,
            cert_pem,
            requests,
        }
    }

    /// The realm the registry names in its challenge.
    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    /// The registry's `auth:` section for this server.
    pub fn registry_auth(&self) -> String {
        format!(
            "auth:\n  token:\n    realm: {}\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
            self.realm(),
            self.cert_pem.display()
        )
    }
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One request as the server saw it: method, path, form (or query).
pub type Request = (String, String, BTreeMap<String, String>);
pub type Seen = Mutex<Vec<Request>>;

fn serve(stream: TcpStream, signer: &Signer, seen: &Seen) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let target = parts.next().unwrap_or("").to_owned();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.trim().eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let form = if method == "POST" {
        parse_form(&String::from_utf8_lossy(&body))
    } else {
        parse_form(query)
    };
    seen.lock()
        .unwrap()
        .push((method.clone(), path.to_owned(), form.clone()));
    let (status, answer) = if method == "POST"
        && path == "/token"
        && form.get("grant_type").map(String::as_str) == Some("refresh_token")
        && form.get("refresh_token") == Some(&signer.refresh_token)
    {
        let token = signer.access_token(form.get("scope").map(String::as_str).unwrap_or(""));
        (
            "200 OK",
            json!({"access_token": token, "expires_in": 300, "scope": form.get("scope")}),
        )
    } else {
        (
            "401 Unauthorized",
            json!({"error": "invalid_grant", "error_description": "the refresh token is not valid"}),
        )
    };
    let body = answer.to_string();
    let mut out = stream;
    write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    out.flush()
}

impl Signer {
    /// A JWT granting the actions of `scope` (`repository:NAME:ACTIONS`,
    /// space-separated for several).
    fn access_token(&self, scope: &str) -> String {
        let access: Vec<Value> = scope
            .split_whitespace()
            .filter_map(|s| {
                let mut parts = s.splitn(3, ':');
                let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
                Some(json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
            })
            .collect();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let header =
            json!({"typ": "JWT", "alg": "RS256", "x5c": [STANDARD.encode(&self.cert_der)]});
        let claims = json!({
            "iss": ISSUER,
            "sub": "alice",
            "aud": SERVICE,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": format!("berth-test-{now}-{}", std::process::id()),
            "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(
                &ring::signature::RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                signing_input.as_bytes(),
                &mut signature,
            )
            .unwrap();
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}

fn parse_form(text: &str) -> BTreeMap<String, String> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
