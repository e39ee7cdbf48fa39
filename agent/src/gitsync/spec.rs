//! What `--git`, `--git-ref` and `--git-path` say, checked before anything
//! runs: the ref's kind, the URL with its credentials taken out (they must
//! never reach a log, the status or git's argv), the checkout's folder
//! name, and the retry delay after failed fetches. Pure: no I/O.

use std::time::Duration;

use sha2::{Digest, Sha256};

/// What `--git-ref` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitRef {
    /// `refs/heads/NAME`.
    Branch(String),
    /// `refs/tags/NAME` (an annotated tag is followed to its commit).
    Tag(String),
    /// A full commit id (40 hex digits, or 64 for SHA-256 repositories).
    Commit(String),
    /// A bare name: a branch of that name, else a tag (as `git clone
    /// --branch` resolves it).
    Name(String),
}

impl GitRef {
    /// Parses `--git-ref`. Refuses what git would refuse as a ref name
    /// (`git check-ref-format`'s rules that matter here) and anything
    /// starting with `-`, which git would read as an option.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("the ref is empty: give a branch, a tag or a commit id".to_owned());
        }
        let is_hex = text.chars().all(|c| c.is_ascii_hexdigit());
        if is_hex && (text.len() == 40 || text.len() == 64) {
            return Ok(Self::Commit(text.to_ascii_lowercase()));
        }
        let (kind, name): (fn(String) -> Self, &str) =
            if let Some(name) = text.strip_prefix("refs/heads/") {
                (Self::Branch, name)
            } else if let Some(name) = text.strip_prefix("refs/tags/") {
                (Self::Tag, name)
            } else {
                (Self::Name, text)
            };
        check_ref_name(name).map_err(|why| format!("{text:?} is not a valid ref: {why}"))?;
        Ok(kind(name.to_owned()))
    }

    /// The refs `git ls-remote` is asked for, most wanted first.
    pub fn remote_refs(&self) -> Vec<String> {
        match self {
            Self::Branch(b) => vec![format!("refs/heads/{b}")],
            Self::Tag(t) => vec![format!("refs/tags/{t}")],
            Self::Name(n) => vec![format!("refs/heads/{n}"), format!("refs/tags/{n}")],
            Self::Commit(_) => Vec::new(),
        }
    }

    /// The revision label Flux uses: `main@sha1:<commit>`, `v1.2@sha1:...`,
    /// or `sha1:<commit>` for a pinned commit.
    pub fn revision(&self, commit: &str) -> String {
        let algo = if commit.len() == 64 { "sha256" } else { "sha1" };
        match self {
            Self::Branch(n) | Self::Tag(n) | Self::Name(n) => format!("{n}@{algo}:{commit}"),
            Self::Commit(_) => format!("{algo}:{commit}"),
        }
    }

    /// As the user wrote it (for the status).
    pub fn display(&self) -> String {
        match self {
            Self::Branch(b) => format!("refs/heads/{b}"),
            Self::Tag(t) => format!("refs/tags/{t}"),
            Self::Commit(c) | Self::Name(c) => c.clone(),
        }
    }
}

fn check_ref_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("the name is empty");
    }
    if name.starts_with('-') {
        return Err("it starts with '-'");
    }
    if name.contains("..") || name.contains("@{") || name.contains("//") {
        return Err("it contains '..', '@{' or '//'");
    }
    if name
        .chars()
        .any(|c| c.is_ascii_control() || " ~^:?*[\\".contains(c))
    {
        return Err("it contains a space, a control character or one of ~^:?*[\\");
    }
    if name.ends_with('/') || name.ends_with('.') || name.ends_with(".lock") {
        return Err("it ends with '/', '.' or '.lock'");
    }
    if name.split('/').any(|part| part.starts_with('.')) {
        return Err("a component starts with '.'");
    }
    Ok(())
}

/// A user name and password (or token) for https.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password, even in a debug log.
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// `url` without the secret part of its user info, and the credentials
/// taken out of an http(s) URL (`https://user:token@host/...`, or
/// `https://token@host/...`: GitHub and Gitea take a token as the user
/// name). Other schemes keep their user name (`ssh://git@host/...` names
/// the account, not a secret) and lose only a password. scp-like
/// addresses (`git@host:org/repo`) and local paths are returned as given.
pub fn split_credentials(url: &str) -> (String, Option<Credentials>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_owned(), None);
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return (url.to_owned(), None);
    };
    let (user, password) = match userinfo.split_once(':') {
        Some((u, p)) => (percent_decode(u), Some(percent_decode(p))),
        None => (percent_decode(userinfo), None),
    };
    let http = scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https");
    if http {
        let credentials = Credentials {
            username: user,
            password: password.unwrap_or_default(),
        };
        return (format!("{scheme}://{host}{path}"), Some(credentials));
    }
    let user_part = userinfo.split(':').next().unwrap_or_default();
    (format!("{scheme}://{user_part}@{host}{path}"), None)
}

/// `url` safe to show: what [`split_credentials`] leaves.
pub fn redact_url(url: &str) -> String {
    split_credentials(url).0
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(Some(hi)), Some(Some(lo))) = (
                bytes.get(i + 1).map(|b| hex(*b)),
                bytes.get(i + 2).map(|b| hex(*b)),
            )
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The checkout's folder under `<root>/agent/git/`: the first 16 hex
/// digits of the sha256 of the redacted URL. Not of the ref or the path,
/// so that changing either keeps the same folder, and project folders
/// (and the relative bind mounts in them) keep their paths.
pub fn checkout_name(redacted_url: &str) -> String {
    let digest = format!("{:x}", Sha256::digest(redacted_url.as_bytes()));
    digest[..16].to_owned()
}

/// `--git-path`: a relative path inside the repository, `/`-separated,
/// with no `..`; `""` for the repository's root.
pub fn normalize_path(path: &str) -> Result<String, String> {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if path.starts_with('/') {
        return Err(format!(
            "--git-path {path:?} must be relative to the repository's root"
        ));
    }
    if parts.iter().any(|p| *p == ".." || p.starts_with('-')) {
        return Err(format!(
            "--git-path {path:?} must stay inside the repository (no '..')"
        ));
    }
    Ok(parts.join("/"))
}

/// How long to wait after `failures` failed fetches in a row: 2 s,
/// doubling, never longer than the poll interval (a failing remote is
/// tried at least as often as a healthy one).
pub fn retry_delay(failures: u32, interval: Duration) -> Duration {
    if failures == 0 {
        return interval;
    }
    let exp = (failures - 1).min(16);
    Duration::from_secs(2u64 << exp).min(interval)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_parse_by_kind() {
        let sha = "87c80e39288f55315769bd6b195071cc0b29d365";
        assert_eq!(GitRef::parse("main"), Ok(GitRef::Name("main".into())));
        assert_eq!(
            GitRef::parse("refs/heads/release/1.x"),
            Ok(GitRef::Branch("release/1.x".into()))
        );
        assert_eq!(
            GitRef::parse("refs/tags/v1.2.0"),
            Ok(GitRef::Tag("v1.2.0".into()))
        );
        assert_eq!(
            GitRef::parse(&sha.to_uppercase()),
            Ok(GitRef::Commit(sha.into()))
        );
        // Short hex is a name: a short id cannot be fetched.
        assert_eq!(GitRef::parse("abc123"), Ok(GitRef::Name("abc123".into())));
        for bad in [
            "",
            "-upload-pack=x",
            "a..b",
            "a b",
            "main.lock",
            "x:y",
            "refs/heads/",
            "refs/tags/.hidden",
            "a^",
        ] {
            assert!(GitRef::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn revisions_are_flux_labels() {
        let sha = "87c80e39288f55315769bd6b195071cc0b29d365";
        assert_eq!(
            GitRef::Name("main".into()).revision(sha),
            format!("main@sha1:{sha}")
        );
        assert_eq!(
            GitRef::Tag("v1".into()).revision(sha),
            format!("v1@sha1:{sha}")
        );
        assert_eq!(
            GitRef::Commit(sha.into()).revision(sha),
            format!("sha1:{sha}")
        );
        let long = "a".repeat(64);
        assert_eq!(
            GitRef::Name("main".into()).revision(&long),
            format!("main@sha256:{long}")
        );
        assert_eq!(
            GitRef::Name("main".into()).remote_refs(),
            ["refs/heads/main", "refs/tags/main"]
        );
    }

    #[test]
    fn credentials_leave_https_urls() {
        let (url, creds) = split_credentials("https://bot:s3cr%40t@git.example.com/org/repo.git");
        assert_eq!(url, "https://git.example.com/org/repo.git");
        let creds = creds.unwrap();
        assert_eq!(creds.username, "bot");
        assert_eq!(creds.password, "s3cr@t");
        assert!(!format!("{creds:?}").contains("s3cr"));

        let (url, creds) = split_credentials("https://ghp_token@github.com/o/r");
        assert_eq!(url, "https://github.com/o/r");
        assert_eq!(creds.unwrap().username, "ghp_token");

        // An @ in the path is not user info.
        let (url, creds) = split_credentials("https://host/org/repo@2");
        assert_eq!(url, "https://host/org/repo@2");
        assert!(creds.is_none());
    }

    #[test]
    fn other_urls_keep_their_user_and_lose_a_password() {
        assert_eq!(
            redact_url("ssh://git:pw@host:22/org/repo"),
            "ssh://git@host:22/org/repo"
        );
        assert_eq!(
            redact_url("ssh://git@host/org/repo"),
            "ssh://git@host/org/repo"
        );
        assert_eq!(
            redact_url("git@github.com:o/r.git"),
            "git@github.com:o/r.git"
        );
        assert_eq!(redact_url("file:///srv/repo.git"), "file:///srv/repo.git");
        assert_eq!(redact_url("/srv/repo.git"), "/srv/repo.git");
    }

    #[test]
    fn the_checkout_folder_depends_on_the_url_only() {
        let a = checkout_name("https://host/o/r");
        assert_eq!(a.len(), 16);
        assert_eq!(a, checkout_name("https://host/o/r"));
        assert_ne!(a, checkout_name("https://host/o/other"));
        // Credentials do not move the checkout.
        assert_eq!(a, checkout_name(&redact_url("https://u:p@host/o/r")));
    }

    #[test]
    fn paths_stay_inside_the_repository() {
        assert_eq!(normalize_path(""), Ok(String::new()));
        assert_eq!(normalize_path("./apps//prod/"), Ok("apps/prod".into()));
        assert!(normalize_path("/etc").is_err());
        assert!(normalize_path("apps/../..").is_err());
    }

    #[test]
    fn failed_fetches_back_off_up_to_the_interval() {
        let interval = Duration::from_secs(60);
        let delays: Vec<u64> = (0..=7)
            .map(|n| retry_delay(n, interval).as_secs())
            .collect();
        assert_eq!(delays, [60, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(retry_delay(u32::MAX, interval), interval);
        // A short interval caps the very first retry too.
        assert_eq!(
            retry_delay(1, Duration::from_millis(500)),
            Duration::from_millis(500)
        );
    }
}
