//! The glue between the image store and the runtime, which know nothing of
//! each other: an image's defaults combined with `run`'s flags the way
//! Docker combines them, the annotations that record which image a
//! container came from, and the "which container uses this image" answer
//! that `rmi` needs.
//!
//! Which image a container came from is kept in its config's
//! `annotations` (opaque to the runtime), not in its labels: labels are
//! the user's and the image's, shown by `inspect` and matched by filters,
//! and Docker keeps the image apart from them too (`Image`,
//! `Config.Image`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, bail};
use berth_image::{Digest, ErrorKind, Image, ImageConfig, Lease, Reference, Store};
use berth_runtime::{ContainerConfig, Runtime, combine_command, parse_signal};

/// The image reference exactly as the user gave it (`busybox`), which
/// `ps` shows and `inspect` reports as `Config.Image`.
pub const IMAGE_ANNOTATION: &str = "berth.image";
/// The image ID (`sha256:` + the config blob's digest), `inspect`'s
/// `Image`; what `rmi` checks containers against.
pub const IMAGE_ID_ANNOTATION: &str = "berth.image-id";

/// What `run`/`create` were told that an image has a default for.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--entrypoint X` as `[X]`, or Compose's `entrypoint:` list (`[""]`
    /// or `[]` clears the image's).
    pub entrypoint: Option<Vec<String>>,
    /// The positional command; `None` when none was given.
    pub cmd: Option<Vec<String>>,
    /// `--env-file` lines, then `-e`, each `KEY=VALUE`.
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub stop_signal: Option<String>,
    pub labels: BTreeMap<String, String>,
}

/// The container's process and metadata once image and flags are merged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: Option<String>,
    pub user: Option<String>,
    pub stop_signal: Option<String>,
    pub labels: BTreeMap<String, String>,
}

/// Docker's rules: command from ENTRYPOINT/CMD and the overrides
/// ([`combine_command`]); env image first, the caller's after (a later
/// value replaces an earlier one in place); working dir, user and stop
/// signal from the flag, else the image, else the runtime's default (`/`,
/// root, SIGTERM); the image's labels under the caller's. A `--rootfs`
/// container passes an empty [`ImageConfig`].
pub fn merge(image: &ImageConfig, o: Overrides) -> anyhow::Result<Merged> {
    let entrypoint = o.entrypoint;
    let args = combine_command(
        image.entrypoint.as_deref().unwrap_or_default(),
        image.cmd.as_deref().unwrap_or_default(),
        entrypoint,
        o.cmd,
    );
    if args.is_empty() {
        bail!("no command specified");
    }
    if let Some(w) = &o.workdir
        && !w.starts_with('/')
    {
        bail!("the working directory {w:?} is invalid, it needs to be an absolute path");
    }
    let non_empty = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
    let stop_signal = non_empty(&o.stop_signal).or_else(|| non_empty(&image.stop_signal));
    if let Some(s) = &stop_signal {
        parse_signal(s).with_context(|| format!("invalid stop signal {s:?}"))?;
    }
    let mut labels = image.labels.clone();
    labels.extend(o.labels);
    Ok(Merged {
        args,
        env: overlay_env(&image.env, &o.env),
        cwd: non_empty(&o.workdir).or_else(|| non_empty(&image.working_dir)),
        user: non_empty(&o.user).or_else(|| non_empty(&image.user)),
        stop_signal,
        labels,
    })
}

/// `base` with `over` applied: a key already present keeps its position
/// and takes the new value, a new key is appended (Docker's
/// `ReplaceOrAppendEnvValues`), so `inspect` shows each key once.
pub fn overlay_env(base: &[String], over: &[String]) -> Vec<String> {
    let key = |kv: &str| kv.split_once('=').map_or(kv, |(k, _)| k).to_owned();
    let mut out: Vec<String> = Vec::with_capacity(base.len() + over.len());
    for kv in base.iter().chain(over) {
        let k = key(kv);
        match out.iter_mut().find(|e| key(e) == k) {
            Some(slot) => slot.clone_from(kv),
            None => out.push(kv.clone()),
        }
    }
    out
}

/// An image ready to be a container's rootfs. The lease keeps `rmi` and GC
/// away until the container's config (which records the image) is on
/// disk: drop it once `Runtime::create` has returned.
pub struct Prepared {
    pub image: Image,
    /// Snapshot dirs, lowest layer first (`Rootfs::Layers`).
    pub layers: Vec<PathBuf>,
    pub lease: Lease,
}

/// Resolves `name` (reference, ID or unique ID prefix) and unpacks its
/// layers. A missing image is reported like Docker's `run` reports it, with
/// how to get one in, since berth cannot pull yet.
pub fn prepare_image(store: &Store, name: &str) -> anyhow::Result<Prepared> {
    let lease = store.lease().context("cannot lock the image store")?;
    let image = match store.image(name) {
        Ok(image) => image,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let reference = Reference::parse(name)
                .with_context(|| format!("invalid reference format {name:?}"))?;
            let familiar = reference.familiar();
            // Docker prints this line before it tries to pull.
            eprintln!("Unable to find image '{familiar}' locally");
            bail!(
                "no such image: {familiar}: berth does not pull from registries yet; \
                 add it with `berth load -i ARCHIVE` (a `docker save` or OCI archive) \
                 or `berth image import ROOTFS.tar {familiar}`"
            );
        }
        Err(e) => return Err(e).with_context(|| format!("cannot resolve image {name:?}")),
    };
    if image.layers().is_empty() {
        bail!("image {name} has no layers: there is no root filesystem to run");
    }
    let layers = store
        .prepare_rootfs(&image)
        .with_context(|| format!("cannot unpack the layers of {name}"))?;
    Ok(Prepared {
        image,
        layers,
        lease,
    })
}

/// Records in `config` which image it was made from.
pub fn annotate(config: &mut ContainerConfig, name: &str, id: &Digest) {
    config
        .annotations
        .insert(IMAGE_ANNOTATION.to_owned(), name.to_owned());
    config
        .annotations
        .insert(IMAGE_ID_ANNOTATION.to_owned(), id.to_string());
}

/// The image a container was made from: (reference as given, image ID).
pub fn image_of(config: &ContainerConfig) -> Option<(&str, &str)> {
    Some((
        config.annotations.get(IMAGE_ANNOTATION)?.as_str(),
        config.annotations.get(IMAGE_ID_ANNOTATION)?.as_str(),
    ))
}

/// A container that uses an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageUser {
    pub container_id: String,
    pub running: bool,
}

/// The first container (by id) made from image `id`, in any state, from a
/// container still being created to a dead one. Reads each `config.json`
/// directly: a container being created has a config before it has a
/// state, and it must count.
pub fn container_using(rt: &Runtime, id: &Digest) -> Option<ImageUser> {
    let want = id.to_string();
    let mut ids = rt.ids();
    ids.sort();
    ids.into_iter().find_map(|cid| {
        let path = rt.state_root().container(&cid).config();
        let config: ContainerConfig = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
        let (_, image_id) = image_of(&config)?;
        (image_id == want).then(|| ImageUser {
            // A created container's pid 1 exists (it waits for `start`),
            // but Docker counts it as stopped: go by the status.
            running: rt
                .inspect(&cid)
                .is_ok_and(|i| matches!(i.observed.status.as_str(), "running" | "unknown")),
            container_id: cid,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    fn image() -> ImageConfig {
        ImageConfig {
            env: v(&["PATH=/bin", "GREETING=hi"]),
            entrypoint: Some(v(&["/bin/sh", "-c"])),
            cmd: Some(v(&["echo $GREETING"])),
            working_dir: Some("/srv".into()),
            user: Some("nobody".into()),
            stop_signal: Some("SIGQUIT".into()),
            labels: BTreeMap::from([("a".into(), "image".into()), ("b".into(), "image".into())]),
            ..Default::default()
        }
    }

    #[test]
    fn image_defaults_apply_when_nothing_overrides_them() {
        let m = merge(&image(), Overrides::default()).unwrap();
        assert_eq!(m.args, v(&["/bin/sh", "-c", "echo $GREETING"]));
        assert_eq!(m.env, v(&["PATH=/bin", "GREETING=hi"]));
        assert_eq!(m.cwd.as_deref(), Some("/srv"));
        assert_eq!(m.user.as_deref(), Some("nobody"));
        assert_eq!(m.stop_signal.as_deref(), Some("SIGQUIT"));
        assert_eq!(m.labels["a"], "image");
    }

    #[test]
    fn flags_override_the_image() {
        let o = Overrides {
            entrypoint: Some(v(&["echo"])),
            cmd: Some(v(&["x"])),
            env: v(&["GREETING=yo", "NEW=1", "GREETING=last"]),
            workdir: Some("/tmp".into()),
            user: Some("0".into()),
            stop_signal: Some("SIGINT".into()),
            labels: BTreeMap::from([("b".into(), "flag".into())]),
        };
        let m = merge(&image(), o).unwrap();
        assert_eq!(m.args, v(&["echo", "x"]));
        assert_eq!(m.env, v(&["PATH=/bin", "GREETING=last", "NEW=1"]));
        assert_eq!(m.cwd.as_deref(), Some("/tmp"));
        assert_eq!(m.user.as_deref(), Some("0"));
        assert_eq!(m.stop_signal.as_deref(), Some("SIGINT"));
        assert_eq!(m.labels["a"], "image");
        assert_eq!(m.labels["b"], "flag");
    }

    #[test]
    fn entrypoint_overrides_follow_docker() {
        let run = |ep: Option<&str>, cmd: Option<&[&str]>| {
            merge(
                &image(),
                Overrides {
                    entrypoint: ep.map(|e| v(&[e])),
                    cmd: cmd.map(v),
                    ..Default::default()
                },
            )
            .map(|m| m.args)
        };
        // A command keeps the image's entrypoint.
        assert_eq!(
            run(None, Some(&["echo x"])).unwrap(),
            v(&["/bin/sh", "-c", "echo x"])
        );
        // --entrypoint resets the image's CMD.
        assert_eq!(run(Some("echo"), None).unwrap(), v(&["echo"]));
        // --entrypoint "" clears it; the command runs alone.
        assert_eq!(run(Some(""), Some(&["ls", "/"])).unwrap(), v(&["ls", "/"]));
        let err = run(Some(""), None).unwrap_err();
        assert_eq!(err.to_string(), "no command specified");
    }

    #[test]
    fn empty_image_and_bad_flags() {
        let err = merge(&ImageConfig::default(), Overrides::default()).unwrap_err();
        assert_eq!(err.to_string(), "no command specified");
        let m = merge(
            &ImageConfig::default(),
            Overrides {
                cmd: Some(v(&["true"])),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!((m.cwd, m.user, m.stop_signal), (None, None, None));
        let err = merge(
            &image(),
            Overrides {
                workdir: Some("rel".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("absolute path"), "{err}");
        let err = merge(
            &image(),
            Overrides {
                stop_signal: Some("SIGNOPE".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("invalid stop signal"), "{err}");
    }

    #[test]
    fn overlay_env_replaces_in_place() {
        assert_eq!(
            overlay_env(&v(&["A=1", "B=2"]), &v(&["B=3", "C=4", "A=5"])),
            v(&["A=5", "B=3", "C=4"])
        );
        assert_eq!(overlay_env(&[], &v(&["K"])), v(&["K"]));
    }
}
