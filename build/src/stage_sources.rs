//! Where a stage's sources come from besides the context: `--from` and
//! FROM names (a named context first, then an earlier stage, then an
//! image in the store), and ADD of git repositories (the step's key
//! names the commit the ref resolves to now; running the step copies
//! that commit's tree, or its subdir, into the destination folder).

use super::*;
use crate::git::{GitRef, GitSources};
use crate::named::Named;

/// What a `--from` or FROM name refers to.
pub(super) enum FromSource<'a> {
    Named(&'a Named),
    Stage(usize),
    Image,
}

impl StageRun<'_> {
    /// Named contexts win over stages and images of the same name.
    pub(super) fn source_of(&self, name: &str) -> FromSource<'_> {
        if let Some(n) = self.shared.named.get(name) {
            return FromSource::Named(n);
        }
        match self
            .shared
            .dockerfile
            .resolve_stage_ref(name, self.stage.index)
        {
            Some(i) => FromSource::Stage(i),
            None => FromSource::Image,
        }
    }

    fn wait_stage(&self, index: usize, name: &str, at: &StepAt) -> Result<StageOut> {
        self.shared.board.wait(index).map_err(|e| BuildError::Step {
            at: at.clone(),
            message: format!("stage {name} failed: {e}"),
        })
    }

    fn store_image(&self, reference: &str, at: &StepAt) -> Result<berth_image::Image> {
        self.shared.builder.store.image(reference).map_err(|e| {
            if e.kind() == berth_image::ErrorKind::NotFound {
                BuildError::BaseImageMissing {
                    image: reference.to_owned(),
                    at: at.clone(),
                }
            } else {
                e.into()
            }
        })
    }

    /// The cache key of what `--from` names: a stage's final key, an
    /// image's ID, or the content of a named folder.
    pub(super) fn source_key(&self, from: &str, at: &StepAt) -> Result<Key> {
        match self.source_of(from) {
            FromSource::Stage(i) => Ok(self.wait_stage(i, from, at)?.key),
            FromSource::Image => {
                let image = self.store_image(from, at)?;
                Ok(Key::base(&format!("image:{}", image.id)))
            }
            FromSource::Named(Named::Image(r)) => {
                let image = self.store_image(r, at)?;
                Ok(Key::base(&format!("image:{}", image.id)))
            }
            FromSource::Named(Named::Dir(root)) => {
                let mut h = Sha256::new();
                self.hash_sources(root, &[".".to_owned()], &mut h, at)?;
                Ok(Key(hex::encode(h.finalize())))
            }
        }
    }

    /// Adds the content of `patterns` under `root` to `h`.
    pub(super) fn hash_sources(
        &self,
        root: &SourceRoot,
        patterns: &[String],
        h: &mut Sha256,
        at: &StepAt,
    ) -> Result<()> {
        let context_err = |message: String| BuildError::Context {
            at: at.clone(),
            message,
        };
        let mut cache = self
            .shared
            .statcache
            .lock()
            .map_err(|_| BuildError::Invalid("stat cache poisoned".into()))?;
        for pattern in patterns {
            for s in &root.expand(pattern).map_err(context_err)? {
                h.update(s.rel.as_bytes());
                root.hash(s, &mut cache, h).map_err(context_err)?;
            }
        }
        Ok(())
    }

    /// A named folder `--from` reads like the context, if it names one.
    pub(super) fn named_dir(&self, from: &str) -> Option<SourceRoot> {
        match self.source_of(from) {
            FromSource::Named(Named::Dir(root)) => Some(root.clone()),
            _ => None,
        }
    }

    /// The snapshot dirs of what `--from` names (not a named folder).
    pub(super) fn source_layers(&self, from: &str, at: &StepAt) -> Result<Vec<PathBuf>> {
        let store = &self.shared.builder.store;
        let image = match self.source_of(from) {
            FromSource::Stage(i) => {
                let out = self.wait_stage(i, from, at)?;
                return Ok(store.prepare_layers(&out.state.layers)?);
            }
            FromSource::Image => self.store_image(from, at)?,
            FromSource::Named(Named::Image(r)) => self.store_image(r, at)?,
            FromSource::Named(Named::Dir(_)) => {
                return Err(BuildError::Step {
                    at: at.clone(),
                    message: format!("{from} is a folder context, not a filesystem of layers"),
                });
            }
        };
        Ok(store.prepare_rootfs(&image)?)
    }

    /// A folder context as a FROM base (or a replaced stage): one layer
    /// holding its files, cached by their content like a COPY.
    pub(super) fn start_from_folder(
        &mut self,
        name: &str,
        root: &SourceRoot,
        at: &StepAt,
    ) -> Result<()> {
        let shared = self.shared;
        self.state = ImageState::scratch();
        let mut h = Sha256::new();
        self.hash_sources(root, &[".".to_owned()], &mut h, at)?;
        let key = Key::step(
            &Key::base("scratch"),
            &format!("context:{name}"),
            &h.finalize(),
        );
        let history = format!("FROM {name} (context {})", root.root.display());
        if !shared.request.no_cache
            && let Some(entry) = shared.cache.get(&key)
        {
            self.record(key.clone(), &key, entry.layer, entry.created, &history);
            return Ok(());
        }
        let view = OverlayView::mount(&shared.tmp, &[])?;
        let err = |message: String| BuildError::Context {
            at: at.clone(),
            message,
        };
        let found = root.expand(".").map_err(err)?;
        copy::copy_sources(root, &found, &view.root(), "/", true, Attrs::default()).map_err(err)?;
        let upper = view.finish()?;
        let Done::Layer(layer, chain) = self.commit_upper(&upper.path().join("upper"), at)?;
        let created = now_rfc3339(shared.epoch);
        shared
            .cache
            .put(&key, &Entry::new(layer.clone(), chain, created.clone()))?;
        self.record(key.clone(), &key, layer, created, &history);
        Ok(())
    }

    /// The image a FROM (or a replaced stage) starts from.
    pub(super) fn start_from_image(&mut self, reference: &str, at: &StepAt) -> Result<()> {
        let store = &self.shared.builder.store;
        let image = self.store_image(reference, at)?;
        let raw = store.raw_config(&image)?;
        self.state = ImageState::from_base(&raw, store.image_layers(&image)?);
        self.key = Key::base(&format!("image:{}", image.id));
        Ok(())
    }
}

impl StageRun<'_> {
    fn git_ref(pattern: &str, at: &StepAt) -> Result<GitRef> {
        GitRef::parse(pattern).map_err(|message| BuildError::Step {
            at: at.clone(),
            message,
        })
    }

    /// What the cache key takes for a git source: the remote, the commit
    /// its ref names on the remote now, the subdir and whether `.git` is
    /// kept (no fetch: a cache hit costs one `ls-remote`).
    pub(super) fn git_input(&self, pattern: &str, add: &Add, at: &StepAt) -> Result<String> {
        let git = Self::git_ref(pattern, at)?;
        let resolved = self
            .shared
            .git
            .resolve(&git, add.checksum.as_deref())
            .map_err(|message| BuildError::Step {
                at: at.clone(),
                message,
            })?;
        Ok(format!(
            "git\0{}\0{}\0{}\0{}\0{}",
            git.remote,
            resolved.commit,
            git.subdir.as_deref().unwrap_or_default(),
            add.keep_git_dir || git.keep_git_dir.unwrap_or(false),
            git.submodules.unwrap_or(true),
        ))
    }

    /// Copies the repository's tree at the resolved commit into `dest`
    /// (always a folder, as BuildKit does).
    pub(super) fn add_git(
        &self,
        pattern: &str,
        add: &Add,
        root: &std::path::Path,
        dest: &str,
        attrs: Attrs,
        at: &StepAt,
    ) -> Result<()> {
        let err = |message: String| BuildError::Step {
            at: at.clone(),
            message,
        };
        let git = Self::git_ref(pattern, at)?;
        let sources = &self.shared.git;
        let resolved = sources
            .resolve(&git, add.checksum.as_deref())
            .map_err(err)?;
        let keep = add.keep_git_dir || git.keep_git_dir.unwrap_or(false);
        let checkout = sources.checkout(&git, &resolved, keep).map_err(err)?;
        let tree = GitSources::subdir(&checkout, &git, &resolved).map_err(err)?;
        let from = SourceRoot::filesystem(tree)
            .with_excludes(&add.exclude)
            .map_err(err)?;
        let found = from.expand(".").map_err(err)?;
        copy::copy_sources(&from, &found, root, dest, true, attrs).map_err(err)?;
        tracing::debug!(remote = %git.shown_remote(), commit = %resolved.commit, dest, "ADD git");
        Ok(())
    }
}
