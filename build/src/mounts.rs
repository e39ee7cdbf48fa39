//! RUN `--mount`s as runtime mounts:
//! - `cache`: a folder kept across builds under `<root>/build/cache-mounts/`
//!   (by `id`, default the target), created with `uid`/`gid`/`mode`
//!   (0:0 0755); `sharing=locked` holds an flock for the step,
//!   `private` takes a fresh folder when another build holds it. Not part
//!   of the cache key, as in BuildKit.
//! - `bind`: `source` (default the root) of the context, a stage or an
//!   image, read-only unless `rw`; with `rw` it is an overlay whose upper
//!   dir is thrown away, so writes never reach the source or the layer.
//! - `tmpfs`: a fresh tmpfs (`size`).
//! - `secret`: the `--secret` of that `id` copied into the container's
//!   folder (never into the rootfs or the cache key) at `target` (default
//!   `/run/secrets/<id>`, mode 0400) or exported as `env`; a missing one
//!   fails the step only when `required`.
//! - `ssh`: the build's agent of that `id` (default `default`) behind a
//!   socket of the step's own at `target` (default
//!   `/run/buildkit/ssh_agent.<n>`), `uid`/`gid`/`mode` (0:0 0600); the
//!   first ssh mount is `SSH_AUTH_SOCK`. Without that agent the mount is
//!   left out, or the step fails when `required`. Not in the cache key.
//!
//! Mount targets the runtime had to create in the rootfs are removed from
//! the step's upper dir afterwards ([`remove_stubs`]), as BuildKit does.

use std::fs;
use std::path::{Path, PathBuf};

use berth_runtime::Mount as RtMount;
use berth_spec::dockerfile::{CacheSharing, Mount, MountType};
use nix::fcntl::{Flock, FlockArg};
use sha2::{Digest as _, Sha256};

use crate::context::{SourceRoot, clean_rel};
use crate::fsop::OverlayView;
use crate::request::SecretSource;

/// What a RUN's mounts need kept alive while it runs.
#[derive(Default)]
pub struct Prepared {
    pub mounts: Vec<RtMount>,
    /// `KEY=value` of `env=` secrets.
    pub env: Vec<String>,
    /// Targets, to clean out of the upper dir afterwards.
    pub targets: Vec<String>,
    pub views: Vec<OverlayView>,
    pub locks: Vec<Flock<fs::File>>,
    /// The sockets of ssh mounts, relaying to their agent while RUN runs.
    pub forwards: Vec<crate::ssh::Forward>,
    /// ssh mounts so far (the default target is `ssh_agent.<n>`).
    pub ssh_mounts: usize,
}

/// Where bind sources come from.
pub enum BindFrom {
    Context(SourceRoot),
    /// Snapshot dirs of a stage or image, lowest first.
    Layers(Vec<PathBuf>),
}

pub struct MountEnv<'a> {
    pub state_dir: &'a Path,
    pub tmp: &'a Path,
    pub workdir: &'a str,
    pub secrets: &'a std::collections::BTreeMap<String, SecretSource>,
    pub ssh: &'a crate::ssh::Agents,
}

fn absolute(target: &str, workdir: &str) -> String {
    if target.starts_with('/') {
        format!("/{}", clean_rel(target))
    } else {
        format!("/{}", clean_rel(&format!("{workdir}/{target}")))
    }
}

/// Turns one `--mount` into runtime mounts (added to `out`).
pub fn prepare(
    m: &Mount,
    env: &MountEnv<'_>,
    bind_from: impl FnOnce() -> Result<BindFrom, String>,
    out: &mut Prepared,
) -> Result<(), String> {
    match m.kind {
        MountType::Ssh => {
            let id = m.id.as_deref().unwrap_or("default");
            let n = out.ssh_mounts;
            out.ssh_mounts += 1;
            let Some(agent) = env.ssh.socket(id) else {
                if m.required {
                    return Err(format!(
                        "ssh agent {id:?} is required but was not forwarded: pass --ssh {id} (or compose build.ssh: [{id}])"
                    ));
                }
                return Ok(());
            };
            let target = absolute(
                m.target
                    .as_deref()
                    .unwrap_or(&format!("/run/buildkit/ssh_agent.{n}")),
                env.workdir,
            );
            let forward = crate::ssh::Forward::start(
                agent,
                env.tmp,
                m.uid.unwrap_or(0),
                m.gid.unwrap_or(0),
                m.mode.unwrap_or(0o600),
            )?;
            // BuildKit: the first ssh mount is the step's SSH_AUTH_SOCK.
            if n == 0 {
                out.env.push(format!("SSH_AUTH_SOCK={target}"));
            }
            out.targets.push(target.clone());
            out.mounts.push(RtMount::Bind {
                source: forward.path(),
                target,
                readonly: false,
                copy_up: false,
            });
            out.forwards.push(forward);
            Ok(())
        }
        MountType::Tmpfs => {
            let target = absolute(
                m.target.as_deref().ok_or("tmpfs mount needs target=")?,
                env.workdir,
            );
            out.targets.push(target.clone());
            out.mounts.push(RtMount::Tmpfs {
                target,
                size: m.size,
                mode: None,
                options: Vec::new(),
            });
            Ok(())
        }
        MountType::Cache => {
            let target = absolute(
                m.target.as_deref().ok_or("cache mount needs target=")?,
                env.workdir,
            );
            let id = m.id.clone().unwrap_or_else(|| target.clone());
            let key = hex::encode(Sha256::digest(id.as_bytes()));
            let base = env.state_dir.join("cache-mounts");
            fs::create_dir_all(&base).map_err(|e| format!("{}: {e}", base.display()))?;
            let mut dir = base.join(&key);
            let lock_path = base.join(format!("{key}.lock"));
            let lock_file = fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)
                .map_err(|e| format!("{}: {e}", lock_path.display()))?;
            match m.sharing.unwrap_or(CacheSharing::Shared) {
                CacheSharing::Shared => {}
                CacheSharing::Locked => {
                    let lock = Flock::lock(lock_file, FlockArg::LockExclusive)
                        .map_err(|(_, e)| format!("lock cache {id}: {e}"))?;
                    out.locks.push(lock);
                }
                CacheSharing::Private => {
                    match Flock::lock(lock_file, FlockArg::LockExclusiveNonblock) {
                        Ok(lock) => out.locks.push(lock),
                        Err(_) => {
                            dir = base.join(format!("{key}-{}", std::process::id()));
                        }
                    }
                }
            }
            if !dir.exists() {
                fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                use std::os::unix::fs::PermissionsExt;
                fs::set_permissions(&dir, fs::Permissions::from_mode(m.mode.unwrap_or(0o755)))
                    .map_err(|e| e.to_string())?;
                nix::unistd::chown(
                    &dir,
                    Some(nix::unistd::Uid::from_raw(m.uid.unwrap_or(0))),
                    Some(nix::unistd::Gid::from_raw(m.gid.unwrap_or(0))),
                )
                .map_err(|e| e.to_string())?;
            }
            out.targets.push(target.clone());
            out.mounts.push(RtMount::Bind {
                source: dir,
                target,
                readonly: m.readonly,
                copy_up: false,
            });
            Ok(())
        }
        MountType::Secret => {
            let id =
                m.id.clone()
                    .or_else(|| {
                        m.target
                            .as_deref()
                            .and_then(|t| Path::new(t).file_name())
                            .map(|n| n.to_string_lossy().into_owned())
                    })
                    .ok_or("secret mount needs id= or target=")?;
            let Some(source) = env.secrets.get(&id) else {
                if m.required {
                    return Err(format!(
                        "secret {id} is required but was not given: pass --secret id={id},src=FILE"
                    ));
                }
                return Ok(());
            };
            let content = match source {
                SecretSource::Value(v) => v.clone(),
                SecretSource::File(p) => fs::read(p)
                    .map_err(|e| format!("secret {id}: cannot read {}: {e}", p.display()))?,
            };
            if let Some(var) = &m.env {
                out.env
                    .push(format!("{var}={}", String::from_utf8_lossy(&content)));
                if m.target.is_none() {
                    return Ok(());
                }
            }
            let target = absolute(
                m.target.as_deref().unwrap_or(&format!("/run/secrets/{id}")),
                env.workdir,
            );
            out.targets.push(target.clone());
            out.mounts.push(RtMount::File {
                source: None,
                content: Some(content),
                target,
                uid: m.uid.unwrap_or(0),
                gid: m.gid.unwrap_or(0),
                mode: m.mode.unwrap_or(0o400),
            });
            Ok(())
        }
        MountType::Bind => {
            let target = absolute(
                m.target.as_deref().ok_or("bind mount needs target=")?,
                env.workdir,
            );
            let source_rel = clean_rel(m.source.as_deref().unwrap_or("/"));
            let src = match bind_from()? {
                BindFrom::Context(ctx) => {
                    if source_rel.is_empty() {
                        ctx.root.clone()
                    } else {
                        ctx.expand(&source_rel)?
                            .into_iter()
                            .next()
                            .map(|s| s.path)
                            .ok_or("bind source not found")?
                    }
                }
                BindFrom::Layers(layers) => {
                    let view = OverlayView::mount(env.tmp, &layers).map_err(|e| e.to_string())?;
                    let p = berth_runtime::secure_join(&view.root(), &source_rel)
                        .map_err(|e| e.to_string())?;
                    out.views.push(view);
                    p
                }
            };
            if !src.exists() {
                return Err(format!("bind source {source_rel:?} not found"));
            }
            let source = if m.readonly || !src.is_dir() {
                src
            } else {
                // Writes go to a throwaway upper dir.
                let view = OverlayView::mount(env.tmp, std::slice::from_ref(&src))
                    .map_err(|e| e.to_string())?;
                let root = view.root();
                out.views.push(view);
                root
            };
            out.targets.push(target.clone());
            out.mounts.push(RtMount::Bind {
                source,
                target,
                readonly: m.readonly,
                copy_up: false,
            });
            Ok(())
        }
    }
}

/// Removes what the runtime created in `upper` only to mount over it: the
/// target itself when it is an empty dir or empty file, then its parents
/// while they are empty dirs that no lower layer has.
pub fn remove_stubs(upper: &Path, lowers: &[PathBuf], targets: &[String]) {
    for t in targets {
        let rel = clean_rel(t);
        let mut path = upper.join(&rel);
        let mut rel_path = PathBuf::from(&rel);
        loop {
            let in_lower = lowers
                .iter()
                .any(|l| l.join(&rel_path).symlink_metadata().is_ok());
            let removable = match fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => fs::read_dir(&path).is_ok_and(|mut d| d.next().is_none()),
                Ok(m) if m.is_file() => m.len() == 0,
                _ => false,
            };
            if !removable || in_lower {
                break;
            }
            let _ = if path.is_dir() {
                fs::remove_dir(&path)
            } else {
                fs::remove_file(&path)
            };
            match (path.parent(), rel_path.parent()) {
                (Some(p), Some(r)) if !r.as_os_str().is_empty() => {
                    path = p.to_owned();
                    rel_path = r.to_owned();
                }
                _ => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn stubs_go_but_real_changes_stay() {
        let upper = tempfile::tempdir().unwrap();
        let lower = tempfile::tempdir().unwrap();
        fs::create_dir_all(upper.path().join("run/secrets")).unwrap();
        fs::write(upper.path().join("run/secrets/token"), "").unwrap();
        fs::create_dir_all(upper.path().join("var/cache/apt")).unwrap();
        fs::create_dir_all(lower.path().join("var/cache")).unwrap();
        fs::write(upper.path().join("kept.txt"), "x").unwrap();
        remove_stubs(
            upper.path(),
            &[lower.path().to_owned()],
            &["/run/secrets/token".into(), "/var/cache/apt".into()],
        );
        assert!(!upper.path().join("run").exists());
        assert!(!upper.path().join("var/cache/apt").exists());
        assert!(
            upper.path().join("var/cache").exists(),
            "stops at a dir the lower has"
        );
        assert!(upper.path().join("kept.txt").exists());
    }
}
