//! Credentials as Docker keeps them: `$DOCKER_CONFIG/config.json` (default
//! `~/.docker/config.json`) with `auths` (base64 `user:password` in
//! `auth`), a `credsStore` for every registry or `credHelpers` per
//! registry, both run as `docker-credential-<name> get|store|erase` with
//! the server URL on stdin, as the docker CLI runs them. An `identitytoken`
//! (or a helper's `<token>` user) is an OAuth2 refresh token, exchanged
//! per repository by `oauth`.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value, json};
use tracing::debug;

use crate::error::{Error, ErrorKind, Result};
use crate::reference::DEFAULT_DOMAIN;

/// The key Docker files Docker Hub's credentials under.
const HUB_CONFIG_KEY: &str = "https://index.docker.io/v1/";

/// A registry credential.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    Basic {
        username: String,
        password: String,
    },
    /// A registry (bearer) token given as is.
    Token(String),
    /// An OAuth2 refresh token (`identitytoken`), exchanged at the
    /// registry's token server for each repository (see `oauth`).
    IdentityToken(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
            Credentials::Token(_) => f.write_str("Token(***)"),
            Credentials::IdentityToken(_) => f.write_str("IdentityToken(***)"),
        }
    }
}

/// The docker CLI's configuration folder.
#[derive(Debug, Clone)]
pub struct DockerConfig {
    dir: PathBuf,
    /// Where `docker-credential-*` programs are looked up; `None`: `PATH`.
    helper_dir: Option<PathBuf>,
}

impl DockerConfig {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        DockerConfig {
            dir: dir.into(),
            helper_dir: None,
        }
    }

    /// Looks credential helpers up in `dir` instead of `PATH`.
    pub fn with_helper_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.helper_dir = Some(dir.into());
        self
    }

    fn helper_program(&self, helper: &str) -> PathBuf {
        let name = format!("docker-credential-{helper}");
        match &self.helper_dir {
            Some(dir) => dir.join(name),
            None => PathBuf::from(name),
        }
    }

    /// `$DOCKER_CONFIG`, else `$HOME/.docker`, as the docker CLI decides.
    pub fn from_env() -> Self {
        if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
            return Self::new(dir);
        }
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/root"));
        Self::new(home.join(".docker"))
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    fn read(&self) -> Result<Map<String, Value>> {
        let path = self.path();
        match std::fs::read(&path) {
            Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Ok(Map::new()),
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(Value::Object(map)) => Ok(map),
                Ok(_) => Err(Error::Credentials(format!(
                    "{} is not a JSON object",
                    path.display()
                ))),
                Err(e) => Err(Error::Credentials(format!("{}: {e}", path.display()))),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Map::new()),
            Err(e) => Err(Error::io("read", path, e)),
        }
    }

    fn write(&self, config: &Map<String, Value>) -> Result<()> {
        std::fs::create_dir_all(&self.dir).map_err(|e| Error::io("create", &self.dir, e))?;
        let path = self.path();
        let mut tmp = tempfile::Builder::new()
            .prefix(".config.json-")
            .permissions(std::fs::Permissions::from_mode(0o600))
            .tempfile_in(&self.dir)
            .map_err(|e| Error::io("create temp file in", &self.dir, e))?;
        let bytes = serde_json::to_vec_pretty(config).map_err(|source| Error::InvalidJson {
            what: "docker config".into(),
            source,
        })?;
        tmp.write_all(&bytes)
            .and_then(|()| tmp.write_all(b"\n"))
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(|e| Error::io("write", tmp.path().to_owned(), e))?;
        tmp.persist(&path)
            .map_err(|e| Error::io("rename temp file to", &path, e.error))?;
        Ok(())
    }

    /// The credential helper for `domain`: its `credHelpers` entry, else
    /// `credsStore`.
    fn helper(config: &Map<String, Value>, domain: &str) -> Option<String> {
        let key = config_key(domain);
        config
            .get("credHelpers")
            .and_then(|h| h.get(&key).or_else(|| h.get(domain)))
            .or_else(|| config.get("credsStore"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    }

    /// The credentials for `domain` (a reference's registry part), if any.
    pub fn credentials(&self, domain: &str) -> Result<Option<Credentials>> {
        let config = self.read()?;
        if let Some(helper) = Self::helper(&config, domain) {
            return helper_get(&self.helper_program(&helper), &config_key(domain));
        }
        let Some(auths) = config.get("auths").and_then(Value::as_object) else {
            return Ok(None);
        };
        let wanted = config_key(domain);
        let entry = auths
            .iter()
            .find(|(k, _)| normalize_key(k) == normalize_key(&wanted))
            .map(|(_, v)| v);
        let Some(entry) = entry else {
            return Ok(None);
        };
        if let Some(token) = entry
            .get("registrytoken")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            return Ok(Some(Credentials::Token(token.to_owned())));
        }
        // Before `auth`, as docker decides: beside an identity token,
        // `auth` holds a placeholder user and no password.
        if let Some(token) = entry
            .get("identitytoken")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            return Ok(Some(Credentials::IdentityToken(token.to_owned())));
        }
        let Some(auth) = entry
            .get("auth")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        else {
            return Ok(None);
        };
        let decoded = BASE64.decode(auth.trim()).map_err(|e| {
            Error::Credentials(format!(
                "the auth of {wanted} in {} is not base64: {e}",
                self.path().display()
            ))
        })?;
        let decoded = String::from_utf8(decoded).map_err(|_| {
            Error::Credentials(format!(
                "the auth of {wanted} in {} is not UTF-8",
                self.path().display()
            ))
        })?;
        let (username, password) = decoded.split_once(':').ok_or_else(|| {
            Error::Credentials(format!(
                "the auth of {wanted} in {} is not username:password",
                self.path().display()
            ))
        })?;
        Ok(Some(Credentials::Basic {
            username: username.to_owned(),
            password: password.trim_end_matches('\n').to_owned(),
        }))
    }

    /// Saves credentials as `docker login` does: through the helper when
    /// one is configured, else base64 in `auths` (the file kept 0600).
    /// Returns where they went, for the message.
    pub fn store(&self, domain: &str, username: &str, password: &str) -> Result<String> {
        let mut config = self.read()?;
        let key = config_key(domain);
        if let Some(helper) = Self::helper(&config, domain) {
            let body = json!({"ServerURL": key, "Username": username, "Secret": password});
            run_helper(
                &self.helper_program(&helper),
                "store",
                body.to_string().as_bytes(),
            )?;
            return Ok(format!("credential helper docker-credential-{helper}"));
        }
        let auths = config
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if !auths.is_object() {
            *auths = Value::Object(Map::new());
        }
        if let Some(auths) = auths.as_object_mut() {
            // Another spelling of the same registry must not linger.
            auths.retain(|k, _| normalize_key(k) != normalize_key(&key));
            auths.insert(
                key,
                json!({"auth": BASE64.encode(format!("{username}:{password}"))}),
            );
        }
        self.write(&config)?;
        Ok(self.path().display().to_string())
    }

    /// Forgets `domain`'s credentials; `false` when there were none.
    pub fn erase(&self, domain: &str) -> Result<bool> {
        let mut config = self.read()?;
        let key = config_key(domain);
        if let Some(helper) = Self::helper(&config, domain) {
            return match run_helper(&self.helper_program(&helper), "erase", key.as_bytes()) {
                Ok(_) => Ok(true),
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
                Err(e) => Err(e),
            };
        }
        let mut removed = false;
        if let Some(auths) = config.get_mut("auths").and_then(Value::as_object_mut) {
            let before = auths.len();
            auths.retain(|k, _| normalize_key(k) != normalize_key(&key));
            removed = auths.len() != before;
        }
        if removed {
            self.write(&config)?;
        }
        Ok(removed)
    }
}

/// The `auths` key Docker uses for `domain`.
pub(crate) fn config_key(domain: &str) -> String {
    if domain == DEFAULT_DOMAIN || domain == "index.docker.io" || domain == "registry-1.docker.io" {
        HUB_CONFIG_KEY.to_owned()
    } else {
        domain.to_owned()
    }
}

/// `https://reg:5000/v1/` and `reg:5000` are one key (docker's
/// `ConvertToHostname`).
fn normalize_key(key: &str) -> &str {
    let key = key
        .strip_prefix("http://")
        .or_else(|| key.strip_prefix("https://"))
        .unwrap_or(key);
    key.split('/').next().unwrap_or(key)
}

fn helper_get(helper: &Path, server: &str) -> Result<Option<Credentials>> {
    let out = match run_helper(helper, "get", server.as_bytes()) {
        Ok(out) => out,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let value: Value = serde_json::from_slice(&out).map_err(|e| {
        Error::Credentials(format!(
            "{} get printed no JSON credentials: {e}",
            helper.display()
        ))
    })?;
    let username = value.get("Username").and_then(Value::as_str).unwrap_or("");
    let secret = value.get("Secret").and_then(Value::as_str).unwrap_or("");
    if secret.is_empty() {
        return Ok(None);
    }
    // The helper protocol's way of handing over an identity token.
    if username == "<token>" {
        return Ok(Some(Credentials::IdentityToken(secret.to_owned())));
    }
    Ok(Some(Credentials::Basic {
        username: username.to_owned(),
        password: secret.to_owned(),
    }))
}

/// Runs `docker-credential-<helper> <action>` with `input` on stdin.
/// "credentials not found" (the protocol's message) is `NotFound`.
fn run_helper(program: &Path, action: &str, input: &[u8]) -> Result<Vec<u8>> {
    let program = program.display().to_string();
    debug!(program, action, "running credential helper");
    let mut child = Command::new(&program)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            Error::Credentials(format!(
                "cannot run {program} (named by the docker config's credsStore/credHelpers): {e}"
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that answers without reading its input (one that knows
        // a single server) may exit before the write: its exit status and
        // output decide, as with docker (Go's os/exec ignores EPIPE here).
        match stdin.write_all(input) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                return Err(Error::Credentials(format!(
                    "cannot write to {program}: {e}"
                )));
            }
            _ => {}
        }
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::Credentials(format!("cannot wait for {program}: {e}")))?;
    if out.status.success() {
        return Ok(out.stdout);
    }
    let text = String::from_utf8_lossy(if out.stdout.is_empty() {
        &out.stderr
    } else {
        &out.stdout
    })
    .trim()
    .to_owned();
    if text.contains("credentials not found") {
        return Err(Error::Registry {
            action: "find credentials for",
            reference: String::from_utf8_lossy(input).into_owned(),
            message: text,
            kind: ErrorKind::NotFound,
        });
    }
    Err(Error::Credentials(format!(
        "{program} {action} failed: {text}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auths_are_read_in_any_spelling_and_written_back_0600() {
        let dir = tempfile::tempdir().unwrap();
        let config = DockerConfig::new(dir.path());
        assert_eq!(config.credentials("reg:5000").unwrap(), None);
        std::fs::write(
            config.path(),
            r#"{"auths": {"https://reg:5000/v1/": {"auth": "dTpwOng="}}, "other": 1}"#,
        )
        .unwrap();
        assert_eq!(
            config.credentials("reg:5000").unwrap(),
            Some(Credentials::Basic {
                username: "u".into(),
                password: "p:x".into()
            })
        );
        config.store("docker.io", "me", "secret").unwrap();
        let text = std::fs::read_to_string(config.path()).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["other"], 1, "other keys are kept");
        assert_eq!(
            v["auths"][HUB_CONFIG_KEY]["auth"],
            BASE64.encode("me:secret")
        );
        let mode = std::fs::metadata(config.path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(config.erase("reg:5000").unwrap());
        assert!(!config.erase("reg:5000").unwrap());
        assert_eq!(config.credentials("reg:5000").unwrap(), None);
        assert!(config.credentials("docker.io").unwrap().is_some());
    }

    #[test]
    fn a_credential_helper_is_asked_with_the_server_url() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let helper = bin.join("docker-credential-berthtest");
        std::fs::write(
            &helper,
            "#!/bin/sh\nread url\nif [ \"$1\" = get ] && [ \"$url\" = reg.lan ]; then echo '{\"ServerURL\":\"reg.lan\",\"Username\":\"hu\",\"Secret\":\"hs\"}'; exit 0; fi\necho 'credentials not found in native keychain'; exit 1\n",
        )
        .unwrap();
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let config = DockerConfig::new(dir.path()).with_helper_dir(&bin);
        std::fs::write(
            config.path(),
            r#"{"credHelpers": {"reg.lan": "berthtest"}}"#,
        )
        .unwrap();
        assert_eq!(
            config.credentials("reg.lan").unwrap(),
            Some(Credentials::Basic {
                username: "hu".into(),
                password: "hs".into()
            })
        );
        // Not found by the helper: no credentials, not an error.
        std::fs::write(config.path(), r#"{"credsStore": "berthtest"}"#).unwrap();
        assert_eq!(config.credentials("other.lan").unwrap(), None);
    }

    #[test]
    fn identity_tokens_come_before_the_placeholder_auth_and_from_helpers() {
        let dir = tempfile::tempdir().unwrap();
        let config = DockerConfig::new(dir.path());
        // As `az acr login` writes it: a placeholder user, no password.
        std::fs::write(
            config.path(),
            r#"{"auths": {"acr.io": {"auth": "MDAwMDAwMDAtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDAwMDAwOg==", "identitytoken": "rt-1"}}}"#,
        )
        .unwrap();
        assert_eq!(
            config.credentials("acr.io").unwrap(),
            Some(Credentials::IdentityToken("rt-1".into()))
        );
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let helper = bin.join("docker-credential-berthsso");
        std::fs::write(
            &helper,
            "#!/bin/sh\necho '{\"ServerURL\":\"sso.lan\",\"Username\":\"<token>\",\"Secret\":\"rt-2\"}'\n",
        )
        .unwrap();
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let config = DockerConfig::new(dir.path()).with_helper_dir(&bin);
        std::fs::write(config.path(), r#"{"credsStore": "berthsso"}"#).unwrap();
        assert_eq!(
            config.credentials("sso.lan").unwrap(),
            Some(Credentials::IdentityToken("rt-2".into()))
        );
        assert_eq!(
            format!("{:?}", Credentials::IdentityToken("secret".into())),
            "IdentityToken(***)"
        );
    }
}
