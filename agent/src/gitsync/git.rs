//! The `git` binary, driven for one checkout: resolve the ref on the
//! remote, fetch one commit, check it out in place.
//!
//! Why the binary and not gix: the checkout is a stable folder updated
//! in place (so project paths, and the relative bind mounts in them, do
//! not move between commits), and gix has no forced checkout of an
//! existing worktree; git also brings every transport (https with the
//! system's proxies and CAs, ssh, file) and its credential handling.
//!
//! Secrets never reach git's argv (which `ps` shows) or `.git/config`:
//! the remote is passed by URL on every call (no `origin`), https
//! credentials as an `http.extraHeader` through `GIT_CONFIG_*`
//! environment variables, the ssh key through `GIT_SSH_COMMAND`. Every
//! call is bounded by a timeout and kills git's whole process group
//! (git-remote-https, ssh) when it runs out. Git never prompts
//! (`GIT_TERMINAL_PROMPT=0`, ssh `BatchMode`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use base64::Engine as _;

use super::spec::{Credentials, GitRef};

/// Where fetched commits are kept (`refs/berth/fetched`): a ref of our
/// own, so nothing the remote calls its branches is touched locally.
const FETCHED_REF: &str = "refs/berth/fetched";

/// How the remote is authenticated.
#[derive(Debug, Clone, Default)]
pub struct Auth {
    /// Basic credentials for http(s) remotes.
    pub https: Option<Credentials>,
    /// A private key for ssh remotes.
    pub ssh_key: Option<PathBuf>,
    /// The `known_hosts` file ssh checks the server against (else ssh's
    /// default); host keys are always checked.
    pub known_hosts: Option<PathBuf>,
}

impl Auth {
    /// The environment that carries these credentials to git.
    fn environment(&self) -> Vec<(String, String)> {
        let mut env = Vec::new();
        if let Some(c) = &self.https {
            let basic = base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", c.username, c.password));
            env.push(("GIT_CONFIG_COUNT".into(), "1".into()));
            env.push(("GIT_CONFIG_KEY_0".into(), "http.extraHeader".into()));
            env.push((
                "GIT_CONFIG_VALUE_0".into(),
                format!("Authorization: Basic {basic}"),
            ));
        }
        env.push(("GIT_SSH_COMMAND".into(), self.ssh_command()));
        env
    }

    /// `ssh` with the key and known hosts, never asking anything.
    pub fn ssh_command(&self) -> String {
        let mut cmd = String::from("ssh -o BatchMode=yes -o StrictHostKeyChecking=yes");
        if let Some(key) = &self.ssh_key {
            cmd.push_str(" -o IdentitiesOnly=yes -i ");
            cmd.push_str(&shell_quote(&key.display().to_string()));
        }
        if let Some(hosts) = &self.known_hosts {
            cmd.push_str(" -o UserKnownHostsFile=");
            cmd.push_str(&shell_quote(&hosts.display().to_string()));
        }
        cmd
    }
}

/// Single quotes for `sh -c` (git runs `GIT_SSH_COMMAND` through a shell).
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// What went wrong, by class: the source's condition reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The remote could not be reached or read.
    Unreachable,
    /// The remote refused the credentials, or the host key.
    Authentication,
    /// No such branch, tag or commit on the remote.
    RefNotFound,
    /// `--git-path` is not a folder at the fetched commit.
    PathNotFound,
    /// A local git operation failed (checkout, the repository itself).
    Local,
    /// A call ran out of time.
    Timeout,
    /// There is no `git` binary.
    NotInstalled,
}

impl ErrorKind {
    /// The `SourceReady` condition's reason.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Unreachable => "FetchFailed",
            Self::Authentication => "AuthenticationFailed",
            Self::RefNotFound => "RefNotFound",
            Self::PathNotFound => "PathNotFound",
            Self::Local => "CheckoutFailed",
            Self::Timeout => "FetchTimedOut",
            Self::NotInstalled => "GitNotInstalled",
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct GitError {
    pub kind: ErrorKind,
    pub message: String,
}

impl GitError {
    fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

/// Classifies git's stderr (run with `LC_ALL=C`).
fn classify(stderr: &str) -> ErrorKind {
    const AUTH: [&str; 9] = [
        "Authentication failed",
        "could not read Username",
        "could not read Password",
        "Permission denied (publickey",
        "Host key verification failed",
        "returned error: 401",
        "returned error: 403",
        "HTTP Basic: Access denied",
        "Invalid username or password",
    ];
    if AUTH.iter().any(|p| stderr.contains(p)) {
        ErrorKind::Authentication
    } else if stderr.contains("couldn't find remote ref") || stderr.contains("not our ref") {
        ErrorKind::RefNotFound
    } else {
        ErrorKind::Unreachable
    }
}

/// The lines of git's stderr worth showing, on one line, bounded.
fn summary(stderr: &str) -> String {
    let text = stderr
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty()
                && !l.starts_with("Please make sure")
                && *l != "and the repository exists."
        })
        .collect::<Vec<_>>()
        .join("; ");
    if text.len() > 600 {
        let mut end = 600;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &text[..end])
    } else {
        text
    }
}

/// One checkout folder and how to reach its remote.
#[derive(Debug, Clone)]
pub struct Repo {
    dir: PathBuf,
    env: Vec<(String, String)>,
    timeout: Duration,
}

/// A commit's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitInfo {
    pub time: SystemTime,
    pub subject: String,
}

impl Repo {
    pub fn new(dir: &Path, auth: &Auth, timeout: Duration) -> Self {
        Self {
            dir: dir.to_path_buf(),
            env: auth.environment(),
            timeout,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Runs `git -C <dir> ARGS`; stdout on success.
    async fn git(&self, what: &str, args: &[&str]) -> Result<String, GitError> {
        let mut cmd = tokio::process::Command::new("git");
        cmd.arg("-C")
            .arg(&self.dir)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("LC_ALL", "C")
            .env("GIT_TERMINAL_PROMPT", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own group, so a timeout ends its helpers too.
            .process_group(0)
            .kill_on_drop(true);
        tracing::debug!(what, ?args, dir = %self.dir.display(), "git");
        let child = cmd.spawn().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                GitError::new(
                    ErrorKind::NotInstalled,
                    "the git binary is not installed (apt-get install git)",
                )
            } else {
                GitError::new(ErrorKind::Local, format!("cannot run git: {e}"))
            }
        })?;
        let pid = child.id();
        match tokio::time::timeout(self.timeout, child.wait_with_output()).await {
            Ok(Ok(out)) if out.status.success() => {
                Ok(String::from_utf8_lossy(&out.stdout).into_owned())
            }
            Ok(Ok(out)) => {
                let stderr = String::from_utf8_lossy(&out.stderr);
                Err(GitError::new(
                    classify(&stderr),
                    format!("git {what}: {}", summary(&stderr)),
                ))
            }
            Ok(Err(e)) => Err(GitError::new(
                ErrorKind::Local,
                format!("git {what}: cannot wait for git: {e}"),
            )),
            Err(_) => {
                if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
                    let _ = nix::sys::signal::killpg(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                Err(GitError::new(
                    ErrorKind::Timeout,
                    format!(
                        "git {what}: no answer within {}",
                        humantime::format_duration(self.timeout)
                    ),
                ))
            }
        }
    }

    /// Makes the folder a repository if it is not one, and clears the
    /// locks a git process killed mid-call leaves (see
    /// [`Self::clear_stale_locks`]). Call once, before any other git call
    /// on the folder.
    pub async fn prepare(&self) -> Result<(), GitError> {
        let local = |e: std::io::Error| {
            GitError::new(
                ErrorKind::Local,
                format!("cannot prepare {}: {e}", self.dir.display()),
            )
        };
        if let Some(parent) = self.dir.parent() {
            use std::os::unix::fs::DirBuilderExt;
            // 0700: compose files and .env files in the repository may
            // hold secrets.
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(local)?;
        }
        std::fs::create_dir_all(&self.dir).map_err(local)?;
        self.clear_stale_locks();
        if !self.dir.join(".git").is_dir() {
            self.git("init", &["init", "-q"]).await?;
        }
        Ok(())
    }

    /// Removes git's `*.lock` files (index, HEAD, shallow, config, refs)
    /// that a git process killed mid-call (the agent killed, or a call
    /// that ran out of time) leaves behind: each would fail every later
    /// call with "File exists", and updates would stop for good. Only safe
    /// while no git runs on this repository, which holds here: the syncer
    /// is its only user, one call at a time, and calls this at start and
    /// after a timeout (once the killed group is gone).
    pub fn clear_stale_locks(&self) {
        let git_dir = self.dir.join(".git");
        let mut dirs = vec![git_dir.clone()];
        let mut removed = Vec::new();
        while let Some(dir) = dirs.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
                // Locks live at the top and under refs/ (loose refs); the
                // object store has none worth walking.
                if is_dir && path.starts_with(git_dir.join("refs")) {
                    dirs.push(path);
                } else if !is_dir
                    && path.extension().is_some_and(|e| e == "lock")
                    && std::fs::remove_file(&path).is_ok()
                {
                    removed.push(path.display().to_string());
                }
            }
        }
        if !removed.is_empty() {
            tracing::warn!(
                ?removed,
                "removed stale git locks left by an interrupted git call"
            );
        }
    }

    /// The commit `reference` names on the remote now, and the full ref
    /// to fetch it by (the commit itself for [`GitRef::Commit`]).
    pub async fn resolve(
        &self,
        url: &str,
        reference: &GitRef,
    ) -> Result<(String, String), GitError> {
        if let GitRef::Commit(sha) = reference {
            return Ok((sha.clone(), sha.clone()));
        }
        let wanted = reference.remote_refs();
        let mut args = vec!["ls-remote", "--", url];
        let peeled: Vec<String> = wanted
            .iter()
            .filter(|r| r.starts_with("refs/tags/"))
            .map(|r| format!("{r}^{{}}"))
            .collect();
        args.extend(wanted.iter().map(String::as_str));
        args.extend(peeled.iter().map(String::as_str));
        let out = self.git("ls-remote", &args).await?;
        pick_ref(&out, &wanted).ok_or_else(|| {
            GitError::new(
                ErrorKind::RefNotFound,
                format!(
                    "{url} has no {}",
                    match reference {
                        GitRef::Branch(b) => format!("branch {b:?}"),
                        GitRef::Tag(t) => format!("tag {t:?}"),
                        _ => format!("branch or tag {:?}", reference.display()),
                    }
                ),
            )
        })
    }

    /// Fetches `full_ref` (or a commit id) from `url` into
    /// [`FETCHED_REF`]; returns the commit.
    pub async fn fetch(
        &self,
        url: &str,
        full_ref: &str,
        commit_ref: bool,
    ) -> Result<String, GitError> {
        if commit_ref {
            if self.has_commit(full_ref).await {
                return Ok(full_ref.to_owned());
            }
            self.fetch_shallow(url, full_ref).await?;
            self.git("update-ref", &["update-ref", FETCHED_REF, full_ref])
                .await?;
        } else {
            let refspec = format!("+{full_ref}:{FETCHED_REF}");
            self.fetch_shallow(url, &refspec).await?;
        }
        let target = if commit_ref {
            format!("{full_ref}^{{commit}}")
        } else {
            format!("{FETCHED_REF}^{{commit}}")
        };
        let out = self
            .git("rev-parse", &["rev-parse", "--verify", "-q", &target])
            .await?;
        Ok(out.trim().to_owned())
    }

    /// One commit deep (what a deployment needs); a dumb http remote
    /// cannot do shallow fetches, so it gets a full one.
    async fn fetch_shallow(&self, url: &str, refspec: &str) -> Result<(), GitError> {
        let shallow = ["fetch", "-q", "--no-tags", "--depth=1", "--", url, refspec];
        match self.git("fetch", &shallow).await {
            Err(e) if e.message.contains("shallow") => {
                let full = ["fetch", "-q", "--no-tags", "--", url, refspec];
                self.git("fetch", &full).await.map(drop)
            }
            other => other.map(drop),
        }
    }

    async fn has_commit(&self, sha: &str) -> bool {
        let object = format!("{sha}^{{commit}}");
        self.git("cat-file", &["cat-file", "-e", &object])
            .await
            .is_ok()
    }

    /// The commit checked out, if any.
    pub async fn head(&self) -> Option<String> {
        self.git(
            "rev-parse",
            &["rev-parse", "--verify", "-q", "HEAD^{commit}"],
        )
        .await
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
    }

    /// Whether tracked files differ from the commit checked out (local
    /// edits the next checkout discards). Untracked files are not
    /// looked at: data of relative bind mounts lives there.
    pub async fn is_dirty(&self) -> Result<bool, GitError> {
        let out = self
            .git("status", &["status", "--porcelain", "--untracked-files=no"])
            .await?;
        Ok(!out.trim().is_empty())
    }

    /// Whether `path` is a folder at `commit` (`""`: the root, always).
    pub async fn has_folder(&self, commit: &str, path: &str) -> Result<bool, GitError> {
        if path.is_empty() {
            return Ok(true);
        }
        let object = format!("{commit}:{path}");
        match self.git("cat-file", &["cat-file", "-t", &object]).await {
            Ok(kind) => Ok(kind.trim() == "tree"),
            Err(_) => Ok(false),
        }
    }

    /// Forces the worktree to `commit`: tracked files are made exactly
    /// the commit's (local edits discarded), untracked files are left.
    pub async fn checkout(&self, commit: &str) -> Result<(), GitError> {
        self.git(
            "checkout",
            &[
                "-c",
                "advice.detachedHead=false",
                "checkout",
                "-q",
                "--force",
                "--detach",
                commit,
                "--",
            ],
        )
        .await
        .map(drop)
        .map_err(|e| GitError::new(ErrorKind::Local, e.message))
    }

    pub async fn commit_info(&self, commit: &str) -> Result<CommitInfo, GitError> {
        let out = self
            .git("log", &["log", "-1", "--format=%ct%x09%s", commit, "--"])
            .await?;
        let (time, subject) = out.trim_end().split_once('\t').unwrap_or((out.trim(), ""));
        let secs: u64 = time.parse().unwrap_or(0);
        Ok(CommitInfo {
            time: SystemTime::UNIX_EPOCH + Duration::from_secs(secs),
            subject: subject.to_owned(),
        })
    }
}

/// From `git ls-remote` output, the commit of the first wanted ref
/// present; an annotated tag's peeled line (`^{}`) names its commit.
fn pick_ref(ls_remote: &str, wanted: &[String]) -> Option<(String, String)> {
    let lines: Vec<(&str, &str)> = ls_remote
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .collect();
    wanted.iter().find_map(|want| {
        let peeled = format!("{want}^{{}}");
        let sha = lines
            .iter()
            .find(|(_, r)| *r == peeled)
            .or_else(|| lines.iter().find(|(_, r)| r == want))?
            .0;
        Some((want.clone(), sha.to_owned()))
    })
}

#[cfg(test)]
#[path = "git_tests.rs"]
mod tests;
