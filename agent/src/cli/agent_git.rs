//! `berth agent --git URL ...`: the flags of git sync, checked and turned
//! into a [`SourceConfig`] before the agent starts (a bad ref, path or
//! credential file fails at once, naming the flag).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use super::secret_file::read_secret;
use crate::gitsync::SourceConfig;
use crate::gitsync::git::Auth;
use crate::gitsync::spec::{self, Credentials, GitRef};

/// The environment variable holding an https token, when there is no
/// `--git-token-file`.
const TOKEN_ENV: &str = "BERTH_GIT_TOKEN";

#[derive(Debug, clap::Args)]
pub struct GitArgs {
    /// Follow a git repository of Compose projects instead of a folder:
    /// `https://host/org/repo.git`, `ssh://git@host/org/repo.git`,
    /// `git@host:org/repo.git`, `file:///srv/repo.git` or a local path. It
    /// is checked out under `<root>/agent/git/`; each new commit is
    /// applied (only the projects it changes are touched).
    #[arg(long, value_name = "URL", env = "BERTH_GIT", conflicts_with = "dir")]
    pub git: Option<String>,
    /// The branch, tag or full commit id to follow (`refs/heads/NAME` or
    /// `refs/tags/NAME` to say which; a bare name is a branch, else a tag).
    #[arg(
        long,
        value_name = "REF",
        default_value = "main",
        env = "BERTH_GIT_REF",
        requires = "git"
    )]
    pub git_ref: String,
    /// The folder inside the repository that holds the projects (default:
    /// the repository's root).
    #[arg(
        long,
        value_name = "SUBDIR",
        default_value = "",
        hide_default_value = true,
        env = "BERTH_GIT_PATH",
        requires = "git"
    )]
    pub git_path: String,
    /// How often to ask the remote for a new commit (failures are retried
    /// sooner, from 2 s doubling up to this).
    #[arg(long, value_name = "DURATION", default_value = "60s", env = "BERTH_GIT_INTERVAL", value_parser = humantime::parse_duration, requires = "git")]
    pub git_interval: Duration,
    /// The longest one git call (ls-remote, fetch, checkout) may take.
    #[arg(long, value_name = "DURATION", default_value = "2m", env = "BERTH_GIT_TIMEOUT", value_parser = humantime::parse_duration, requires = "git", hide = true)]
    pub git_timeout: Duration,
    /// https: a file holding the token (or password) sent as HTTP Basic
    /// credentials with `--git-username`; else `BERTH_GIT_TOKEN`. A token
    /// in the URL (`https://user:token@host/...`) works too, and is never
    /// shown.
    #[arg(
        long,
        value_name = "FILE",
        env = "BERTH_GIT_TOKEN_FILE",
        requires = "git"
    )]
    pub git_token_file: Option<PathBuf>,
    /// https: the user name sent with the token (GitHub and Gitea take
    /// any; Bitbucket wants `x-token-auth`, GitLab OAuth tokens `oauth2`).
    #[arg(
        long,
        value_name = "NAME",
        default_value = "git",
        env = "BERTH_GIT_USERNAME",
        requires = "git"
    )]
    pub git_username: String,
    /// ssh: the private key to authenticate with (no passphrase).
    #[arg(long, value_name = "FILE", env = "BERTH_GIT_SSH_KEY", requires = "git")]
    pub git_ssh_key: Option<PathBuf>,
    /// ssh: the known_hosts file the server's key is checked against
    /// (default: ssh's own, `~/.ssh/known_hosts`). Host keys are always
    /// checked.
    #[arg(
        long,
        value_name = "FILE",
        env = "BERTH_GIT_KNOWN_HOSTS",
        requires = "git"
    )]
    pub git_known_hosts: Option<PathBuf>,
    /// A file holding the secret of a forge's push webhook: `POST
    /// /api/v1/source/refresh` then also takes GitHub's, Gitea's and
    /// Forgejo's `X-Hub-Signature-256` (HMAC-SHA256 of the body) and
    /// GitLab's `X-Gitlab-Token`, besides the API's bearer token.
    #[arg(
        long,
        value_name = "FILE",
        env = "BERTH_GIT_WEBHOOK_SECRET_FILE",
        requires = "git"
    )]
    pub git_webhook_secret_file: Option<PathBuf>,
}

/// The source the flags describe, with its checkout under `root`.
pub fn source(args: &GitArgs, root: &Path) -> anyhow::Result<SourceConfig> {
    let given = args.git.as_deref().unwrap_or_default().trim();
    anyhow::ensure!(!given.is_empty(), "--git: the URL is empty");
    anyhow::ensure!(
        !given.starts_with('-'),
        "--git {:?}: a URL cannot start with '-'",
        spec::redact_url(given)
    );
    let (url, url_credentials) = spec::split_credentials(&local_path(given)?);
    let reference = GitRef::parse(&args.git_ref).map_err(|e| anyhow::anyhow!("--git-ref {e}"))?;
    let path = spec::normalize_path(&args.git_path).map_err(anyhow::Error::msg)?;
    anyhow::ensure!(
        !args.git_interval.is_zero(),
        "--git-interval must be greater than zero"
    );
    let https = match read_secret(
        "--git-token-file",
        args.git_token_file.as_deref(),
        Some(TOKEN_ENV),
        "token",
    )? {
        Some(password) => Some(Credentials {
            username: args.git_username.clone(),
            password,
        }),
        None => url_credentials,
    };
    let ssh_key = readable_file("--git-ssh-key", args.git_ssh_key.as_deref())?;
    let known_hosts = readable_file("--git-known-hosts", args.git_known_hosts.as_deref())?;
    let root = absolute(root).with_context(|| format!("--root {}", root.display()))?;
    let checkout = root
        .join("agent")
        .join("git")
        .join(spec::checkout_name(&url));
    let webhook_secret = read_secret(
        "--git-webhook-secret-file",
        args.git_webhook_secret_file.as_deref(),
        None,
        "secret",
    )?;
    Ok(SourceConfig {
        url,
        reference,
        path,
        interval: args.git_interval,
        timeout: args.git_timeout,
        webhook_secret,
        checkout,
        auth: Auth {
            https,
            ssh_key,
            known_hosts,
        },
    })
}

/// A local repository given by a relative path is made absolute: git runs
/// in the checkout folder, where a relative path would mean another place.
fn local_path(url: &str) -> anyhow::Result<String> {
    if url.contains("://") || !Path::new(url).exists() {
        return Ok(url.to_owned());
    }
    let path = Path::new(url)
        .canonicalize()
        .with_context(|| format!("--git {}", spec::redact_url(url)))?;
    Ok(path.display().to_string())
}

/// A file flag's path, made absolute, once the file is known readable:
/// a missing key fails at start, naming the flag, not at the first fetch.
fn readable_file(flag: &str, file: Option<&Path>) -> anyhow::Result<Option<PathBuf>> {
    let Some(file) = file else {
        return Ok(None);
    };
    let named = || format!("{flag} {}", file.display());
    std::fs::File::open(file).with_context(named)?;
    Ok(Some(absolute(file).with_context(named)?))
}

fn absolute(path: &Path) -> std::io::Result<PathBuf> {
    if path.is_absolute() {
        Ok(path.to_path_buf())
    } else {
        Ok(std::env::current_dir()?.join(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(url: &str) -> GitArgs {
        GitArgs {
            git: Some(url.to_owned()),
            git_ref: "main".into(),
            git_path: "apps".into(),
            git_interval: Duration::from_secs(60),
            git_timeout: Duration::from_secs(120),
            git_token_file: None,
            git_username: "git".into(),
            git_ssh_key: None,
            git_known_hosts: None,
            git_webhook_secret_file: None,
        }
    }

    #[test]
    fn a_token_file_wins_over_the_url_and_the_url_is_redacted() {
        let tmp = tempfile::tempdir().unwrap();
        let token = tmp.path().join("token");
        std::fs::write(&token, "file-token\n").unwrap();
        let mut a = args("https://u:url-token@host/o/r.git");
        let s = source(&a, tmp.path()).unwrap();
        assert_eq!(s.url, "https://host/o/r.git");
        assert_eq!(s.auth.https.as_ref().unwrap().password, "url-token");
        a.git_token_file = Some(token);
        let s = source(&a, tmp.path()).unwrap();
        let creds = s.auth.https.clone().unwrap();
        assert_eq!(
            (creds.username.as_str(), creds.password.as_str()),
            ("git", "file-token")
        );
        assert_eq!(s.dir(), s.checkout.join("apps"));
        assert!(s.checkout.starts_with(tmp.path().join("agent/git")));
    }

    #[test]
    fn bad_flags_are_refused_by_name() {
        let tmp = tempfile::tempdir().unwrap();
        let mut a = args("file:///r");
        a.git_ref = "a..b".into();
        assert!(
            source(&a, tmp.path())
                .unwrap_err()
                .to_string()
                .contains("--git-ref")
        );
        let mut a = args("file:///r");
        a.git_path = "../x".into();
        assert!(
            source(&a, tmp.path())
                .unwrap_err()
                .to_string()
                .contains("--git-path")
        );
        let mut a = args("file:///r");
        a.git_ssh_key = Some(tmp.path().join("missing"));
        assert!(format!("{:#}", source(&a, tmp.path()).unwrap_err()).contains("--git-ssh-key"));
        assert!(source(&args("--upload-pack=x"), tmp.path()).is_err());
    }
}
