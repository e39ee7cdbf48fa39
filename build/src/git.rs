//! Git sources: `ADD <git url> /dst`, a git URL as the build context or
//! as a named context. URLs follow BuildKit's rules ([`GitRef::parse`]):
//! `git://…`, `ssh://…`, `git@host:…`, `github.com/…`, and `http(s)://`
//! URLs whose path ends in `.git`; a `#ref:subdir` fragment or the newer
//! `?ref=&tag=&branch=&subdir=&checksum=&keep-git-dir&submodules` query.
//!
//! Why the `git` binary and not the gix crate: every transport (smart
//! HTTP, git://, ssh with the user's agent and config), shallow fetches
//! and submodules work the same as they do for the user's own `git`, and
//! errors read as git's; gix would add a large dependency tree and its
//! ssh support runs the `ssh` binary anyway.
//!
//! The ref is resolved to a commit with `git ls-remote` first
//! ([`GitSources::resolve`], once per build and URL): the cache key of
//! the step takes that commit, so a moved branch rebuilds and an
//! unchanged one is a cache hit with nothing fetched. A checkout is a
//! shallow fetch of that one commit (`--depth 1`) into a fresh
//! repository, kept by commit under `<root>/build/git/checkouts/` (so a
//! git context that did not move is not fetched again; `builder prune`
//! removes them). `.git` is dropped unless `keep-git-dir` is asked for.
//!
//! Credentials, as BuildKit takes them: the build secrets `GIT_AUTH_TOKEN`
//! (`GIT_AUTH_TOKEN.<host>` for one host) or `GIT_AUTH_HEADER` become an
//! HTTP `Authorization` header for http(s) remotes; ssh remotes use the
//! build's `default` ssh agent when one is forwarded.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use sha2::{Digest as _, Sha256};

pub use crate::git_url::{GitRef, is_git_url};
use crate::request::SecretSource;

/// Says how to give credentials when git's message is about them.
fn with_auth_hint(message: String) -> String {
    if message.contains("Authentication failed") || message.contains("could not read Username") {
        format!(
            "{message} (a private http(s) repository needs a token: --secret id=GIT_AUTH_TOKEN,env=VAR)"
        )
    } else if message.contains("Permission denied (publickey") {
        format!("{message} (an ssh repository needs an agent holding the key: --ssh default)")
    } else {
        message
    }
}

fn is_commit(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.chars().all(|c| c.is_ascii_hexdigit())
}

/// A ref resolved on the remote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub commit: String,
    /// The full ref name fetched (`refs/heads/main`), or the commit itself.
    pub fetch: String,
    /// An annotated tag's own object id, which `--checksum` may name too.
    pub tag_object: Option<String>,
}

/// Picks the commit for `wanted` from `git ls-remote` output: the exact
/// ref name, else a branch, else a tag (peeled), else HEAD when nothing
/// was asked for.
fn pick(listing: &str, wanted: Option<&str>) -> Option<Resolved> {
    let refs: Vec<(&str, &str)> = listing.lines().filter_map(|l| l.split_once('\t')).collect();
    let find = |name: &str| {
        refs.iter()
            .find(|(_, r)| *r == name)
            .map(|(c, _)| (*c).to_owned())
    };
    let candidates: Vec<String> = match wanted {
        None => vec!["HEAD".into()],
        Some(w) if w.starts_with("refs/") || w == "HEAD" => vec![w.to_owned()],
        Some(w) => vec![
            format!("refs/heads/{w}"),
            format!("refs/tags/{w}"),
            w.to_owned(),
        ],
    };
    for name in candidates {
        if let Some(object) = find(&name) {
            let peeled = find(&format!("{name}^{{}}"));
            return Some(Resolved {
                commit: peeled.clone().unwrap_or_else(|| object.clone()),
                fetch: name,
                tag_object: peeled.map(|_| object),
            });
        }
    }
    None
}

/// How git reaches private repositories.
#[derive(Debug, Clone, Default)]
pub struct GitAuth {
    /// `GIT_AUTH_TOKEN` secrets, by host (`None`: every host).
    tokens: BTreeMap<Option<String>, Vec<u8>>,
    headers: BTreeMap<Option<String>, Vec<u8>>,
    /// The `default` ssh agent socket of the build.
    pub ssh_auth_sock: Option<PathBuf>,
}

impl GitAuth {
    /// BuildKit's secret names: `GIT_AUTH_TOKEN[.host]`, `GIT_AUTH_HEADER[.host]`.
    pub fn from_secrets(secrets: &BTreeMap<String, SecretSource>) -> Self {
        let mut auth = GitAuth::default();
        for (id, source) in secrets {
            let value = match source {
                SecretSource::Value(v) => v.clone(),
                SecretSource::File(p) => match std::fs::read(p) {
                    Ok(v) => v,
                    Err(_) => continue,
                },
            };
            let (name, host) = match id.split_once('.') {
                Some((n, h)) => (n, Some(h.to_owned())),
                None => (id.as_str(), None),
            };
            match name {
                "GIT_AUTH_TOKEN" => {
                    auth.tokens.insert(host, value);
                }
                "GIT_AUTH_HEADER" => {
                    auth.headers.insert(host, value);
                }
                _ => {}
            }
        }
        auth
    }

    /// `http.extraHeader` for `git`, when a token or header applies, as
    /// `GIT_CONFIG_*` environment variables: a `-c` argument would show
    /// the credential to every user in the process list.
    fn config_env(&self, git: &GitRef) -> Vec<(&'static str, String)> {
        if !git.is_http() {
            return Vec::new();
        }
        let host = git.host().map(str::to_owned);
        let pick =
            |m: &BTreeMap<Option<String>, Vec<u8>>| m.get(&host).or_else(|| m.get(&None)).cloned();
        let header = if let Some(h) = pick(&self.headers) {
            String::from_utf8_lossy(&h).trim().to_owned()
        } else if let Some(t) = pick(&self.tokens) {
            use base64::Engine as _;
            let token = String::from_utf8_lossy(&t).trim().to_owned();
            let basic =
                base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{token}"));
            format!("basic {basic}")
        } else {
            return Vec::new();
        };
        vec![
            ("GIT_CONFIG_COUNT", "1".into()),
            ("GIT_CONFIG_KEY_0", "http.extraHeader".into()),
            ("GIT_CONFIG_VALUE_0", format!("Authorization: {header}")),
        ]
    }
}

/// Resolutions and checkouts of one build (a URL is resolved once, so
/// the cache key and the files a step gets name the same commit).
pub struct GitSources {
    dir: PathBuf,
    auth: GitAuth,
    resolved: Mutex<HashMap<(String, Option<String>), Resolved>>,
}

impl GitSources {
    /// Checkouts under `<state_dir>/git`.
    pub fn new(state_dir: &Path, auth: GitAuth) -> Self {
        GitSources {
            dir: state_dir.join("git"),
            auth,
            resolved: Mutex::new(HashMap::new()),
        }
    }

    fn git(&self, git: &GitRef) -> Command {
        let mut cmd = Command::new("git");
        // A server that stops answering fails the build instead of
        // hanging it: under 1 KB/s for 60 s ends an http transfer.
        cmd.args([
            "-c",
            "http.lowSpeedLimit=1000",
            "-c",
            "http.lowSpeedTime=60",
        ])
        .envs(self.auth.config_env(git))
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "true")
        .stdin(std::process::Stdio::null());
        if std::env::var_os("GIT_SSH_COMMAND").is_none() {
            // No password prompt can be answered during a build.
            cmd.env(
                "GIT_SSH_COMMAND",
                "ssh -o BatchMode=yes -o ConnectTimeout=30",
            );
        }
        if let Some(sock) = &self.auth.ssh_auth_sock {
            cmd.env("SSH_AUTH_SOCK", sock);
        }
        cmd
    }

    fn run(
        &self,
        git: &GitRef,
        args: &[&str],
        dir: Option<&Path>,
        doing: &str,
    ) -> Result<String, String> {
        let mut cmd = self.git(git);
        if let Some(d) = dir {
            cmd.current_dir(d);
        }
        cmd.args(args);
        tracing::debug!(remote = %git.shown_remote(), ?args, "git");
        let out = cmd.output().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                format!("{doing}: the git binary is not installed (apt-get install git)")
            } else {
                format!("{doing}: cannot run git: {e}")
            }
        })?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let last: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
            return Err(format!("{doing}: {}", last.join("; ")));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The commit `git`'s ref names on its remote now (memoized for the
    /// build); checked against `checksum` when given.
    pub fn resolve(&self, git: &GitRef, checksum: Option<&str>) -> Result<Resolved, String> {
        let key = (git.remote.clone(), git.reference.clone());
        let memo = self.resolved.lock().ok().and_then(|m| m.get(&key).cloned());
        let resolved = match memo {
            Some(r) => r,
            None => {
                let r = self.ls_remote(git)?;
                if let Ok(mut m) = self.resolved.lock() {
                    m.insert(key, r.clone());
                }
                r
            }
        };
        for want in checksum.into_iter().chain(git.checksum.as_deref()) {
            let want = want.to_ascii_lowercase();
            let matches = |c: &str| want.len() >= 7 && c.starts_with(&want);
            if !matches(&resolved.commit) && !resolved.tag_object.as_deref().is_some_and(matches) {
                return Err(format!(
                    "checksum of {} does not match: expected {want}, got {}",
                    git.shown_remote(),
                    resolved.commit
                ));
            }
        }
        Ok(resolved)
    }

    fn ls_remote(&self, git: &GitRef) -> Result<Resolved, String> {
        if let Some(r) = git.reference.as_deref().filter(|r| is_commit(r)) {
            return Ok(Resolved {
                commit: r.to_ascii_lowercase(),
                fetch: r.to_ascii_lowercase(),
                tag_object: None,
            });
        }
        let doing = format!("cannot reach git repository {}", git.shown_remote());
        let listing = self
            .run(git, &["ls-remote", "--", &git.remote], None, &doing)
            .map_err(with_auth_hint)?;
        pick(&listing, git.reference.as_deref()).ok_or_else(|| match &git.reference {
            Some(r) => format!(
                "ref {r:?} not found in git repository {} (give a branch, tag or full commit hash)",
                git.shown_remote()
            ),
            None => format!(
                "git repository {} has no HEAD (name a branch with #BRANCH)",
                git.shown_remote()
            ),
        })
    }

    /// The repository at `resolved` on disk (its root; join the subdir
    /// with [`GitSources::subdir`]). Fetched once per commit.
    pub fn checkout(
        &self,
        git: &GitRef,
        resolved: &Resolved,
        keep_git_dir: bool,
    ) -> Result<PathBuf, String> {
        let submodules = git.submodules.unwrap_or(true);
        let id = hex::encode(Sha256::digest(
            format!(
                "{}\0{}\0{keep_git_dir}\0{submodules}",
                git.remote, resolved.commit
            )
            .as_bytes(),
        ));
        let checkouts = self.dir.join("checkouts");
        let dest = checkouts.join(&id);
        if dest.is_dir() {
            return Ok(dest);
        }
        std::fs::create_dir_all(&checkouts).map_err(|e| format!("{}: {e}", checkouts.display()))?;
        let tmp = tempfile::Builder::new()
            .prefix(".fetch-")
            .tempdir_in(&checkouts)
            .map_err(|e| format!("{}: {e}", checkouts.display()))?;
        let work = tmp.path();
        let fetching = format!(
            "cannot fetch {} from git repository {}",
            resolved.fetch,
            git.shown_remote()
        );
        self.run(git, &["init", "-q", "."], Some(work), &fetching)?;
        self.run(
            git,
            &["remote", "add", "origin", &git.remote],
            Some(work),
            &fetching,
        )?;
        let shallow = self.run(
            git,
            &[
                "fetch",
                "-q",
                "--depth=1",
                "--no-tags",
                "origin",
                &resolved.fetch,
            ],
            Some(work),
            &fetching,
        );
        let fetched = self
            .run(
                git,
                &["rev-parse", "FETCH_HEAD^{commit}"],
                Some(work),
                &fetching,
            )
            .map(|s| s.trim().to_owned());
        if shallow.is_err() || fetched.as_deref().ok() != Some(resolved.commit.as_str()) {
            // A server that refuses a commit by hash, or a ref that moved
            // since it was resolved: every ref, then the commit.
            self.run(
                git,
                &[
                    "fetch",
                    "-q",
                    "--no-tags",
                    "origin",
                    "+refs/heads/*:refs/remotes/origin/*",
                    "+refs/tags/*:refs/tags/*",
                ],
                Some(work),
                &fetching,
            )
            .map_err(|e| match shallow {
                Err(first) => first,
                Ok(_) => e,
            })?;
        }
        self.run(
            git,
            &["checkout", "-q", "--detach", &resolved.commit],
            Some(work),
            &fetching,
        )
        .map_err(|e| format!("{e} (commit {} is not in the repository)", resolved.commit))?;
        if submodules && work.join(".gitmodules").exists() {
            self.run(
                git,
                &[
                    "submodule",
                    "update",
                    "-q",
                    "--init",
                    "--recursive",
                    "--depth=1",
                ],
                Some(work),
                &format!("cannot fetch the submodules of {}", git.shown_remote()),
            )?;
        }
        if !keep_git_dir {
            let dot_git = work.join(".git");
            std::fs::remove_dir_all(&dot_git).map_err(|e| format!("{}: {e}", dot_git.display()))?;
        }
        let kept = tmp.keep();
        if let Err(e) = std::fs::rename(&kept, &dest) {
            let _ = std::fs::remove_dir_all(&kept);
            // Another build checked out the same commit meanwhile.
            if !dest.is_dir() {
                return Err(format!("{}: {e}", dest.display()));
            }
        }
        Ok(dest)
    }

    /// `checkout`'s `subdir`, which must be a folder inside it.
    pub fn subdir(checkout: &Path, git: &GitRef, resolved: &Resolved) -> Result<PathBuf, String> {
        let Some(sub) = &git.subdir else {
            return Ok(checkout.to_owned());
        };
        let path = berth_runtime::secure_join(checkout, sub).map_err(|e| e.to_string())?;
        if !path.is_dir() {
            return Err(format!(
                "subdir {sub:?} is not a folder of git repository {} at {}",
                git.shown_remote(),
                resolved.commit
            ));
        }
        Ok(path)
    }

    /// Resolves and checks out `url` for a build context: its folder.
    pub fn context(&self, url: &str) -> Result<PathBuf, String> {
        let git = GitRef::parse(url)?;
        let resolved = self.resolve(&git, None)?;
        let checkout = self.checkout(&git, &resolved, git.keep_git_dir.unwrap_or(false))?;
        tracing::info!(remote = %git.shown_remote(), commit = %resolved.commit, "git context");
        Self::subdir(&checkout, &git, &resolved)
    }
}

#[cfg(test)]
#[path = "git_tests.rs"]
mod tests;
