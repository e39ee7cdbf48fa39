//! A stage's steps that change the filesystem: COPY, ADD and WORKDIR
//! through an overlay view of the stage, RUN in a runtime container; each
//! upper dir becomes the step's layer.

use super::*;

impl StageRun<'_> {
    pub(super) fn execute(
        &mut self,
        instruction: &Instruction,
        at: &StepAt,
        vertex: u32,
        started: Instant,
        link: Option<link::LinkOwner>,
    ) -> Result<Done> {
        match instruction {
            Instruction::Run(run) => self.execute_run(run, at, vertex, started),
            Instruction::Copy(_) | Instruction::Add(_) | Instruction::Workdir(_) => {
                self.execute_fsop(instruction, at, link)
            }
            _ => Ok(Done::Layer(None, None)),
        }
    }

    pub(super) fn lowers(&self) -> Result<Vec<PathBuf>> {
        Ok(self
            .shared
            .builder
            .store
            .prepare_layers(&self.state.layers)?)
    }

    /// COPY, ADD or WORKDIR through an overlay of the stage; with `link`
    /// (`--link`), onto an empty dir instead.
    pub(super) fn execute_fsop(
        &mut self,
        instruction: &Instruction,
        at: &StepAt,
        link: Option<link::LinkOwner>,
    ) -> Result<Done> {
        let shared = self.shared;
        if let Some(owner) = link {
            std::fs::create_dir_all(&shared.tmp).map_err(|e| BuildError::io(&shared.tmp, e))?;
            let staging = tempfile::Builder::new()
                .prefix("link-")
                .tempdir_in(&shared.tmp)
                .map_err(|e| BuildError::io(&shared.tmp, e))?;
            let upper = staging.path().join("upper");
            std::fs::create_dir(&upper).map_err(|e| BuildError::io(&upper, e))?;
            self.write_files(instruction, at, &upper, Some(owner))?;
            return self.commit_upper(&upper, at);
        }
        let view = OverlayView::mount(&shared.tmp, &self.lowers()?)?;
        self.write_files(instruction, at, &view.root(), None)?;
        let tmp = view.finish()?;
        self.commit_upper(&tmp.path().join("upper"), at)
    }

    /// Writes what COPY, ADD or WORKDIR adds under `root`; `owner` is a
    /// linked step's resolved `--chown` (its `root` has no passwd file).
    fn write_files(
        &mut self,
        instruction: &Instruction,
        at: &StepAt,
        root: &std::path::Path,
        owner: Option<link::LinkOwner>,
    ) -> Result<()> {
        let shared = self.shared;
        let err = |message: String| BuildError::Step {
            at: at.clone(),
            message,
        };
        let root = root.to_path_buf();
        let attrs = |chown: Option<&str>, chmod: Option<&str>| match owner {
            Some(ids) => {
                let (uid, gid) = ids.unwrap_or((0, 0));
                let mode = chmod.map(copy::parse_chmod).transpose()?;
                Ok(Attrs { uid, gid, mode })
            }
            None => self.attrs(chown, chmod, &root),
        };
        let workdir = self.state.workdir();
        match instruction {
            Instruction::Workdir(w) => {
                let dir = resolve_workdir(&workdir, w);
                let attrs = Attrs::default();
                copy::mkdir_all(&root, &dir, attrs).map_err(err)?;
            }
            Instruction::Copy(c) => {
                let attrs = attrs(c.chown.as_deref(), c.chmod.as_deref()).map_err(err)?;
                let (dest, dir_hint) = copy::dest_path(&c.dest, &workdir);
                let from_view;
                let named = c.from.as_deref().and_then(|f| self.named_dir(f));
                let from_root = match (&c.from, named) {
                    (_, Some(root)) => root,
                    (Some(f), None) => {
                        let layers = self.source_layers(f, at)?;
                        from_view = OverlayView::mount(&shared.tmp, &layers)?;
                        SourceRoot::filesystem(from_view.root())
                    }
                    (None, None) => shared.context.clone(),
                };
                let from_root = from_root.with_excludes(&c.exclude).map_err(&err)?;
                let mut all = Vec::new();
                for pattern in &c.sources {
                    all.extend(from_root.expand(pattern).map_err(|message| {
                        BuildError::Context {
                            at: at.clone(),
                            message,
                        }
                    })?);
                }
                let dir_hint = dir_hint || c.sources.len() > 1;
                if c.parents {
                    // --parents: each source keeps its path below the
                    // destination directory.
                    for src in &all {
                        let sub = if src.path.is_dir() {
                            src.rel.clone()
                        } else {
                            std::path::Path::new(&src.rel)
                                .parent()
                                .map(|p| p.to_string_lossy().into_owned())
                                .unwrap_or_default()
                        };
                        let d = format!("{}/{sub}/", dest.trim_end_matches('/'));
                        copy::copy_sources(
                            &from_root,
                            std::slice::from_ref(src),
                            &root,
                            &d,
                            true,
                            attrs,
                        )
                        .map_err(&err)?;
                    }
                } else {
                    copy::copy_sources(&from_root, &all, &root, &dest, dir_hint, attrs)
                        .map_err(&err)?;
                }
                self.write_inline(&c.inline_sources, &root, &dest, dir_hint, attrs)
                    .map_err(err)?;
            }
            Instruction::Add(a) => {
                let attrs = attrs(a.chown.as_deref(), a.chmod.as_deref()).map_err(err)?;
                let (dest, dir_hint) = copy::dest_path(&a.dest, &workdir);
                let add_root = shared.context.with_excludes(&a.exclude).map_err(&err)?;
                let mut all = Vec::new();
                let mut urls = Vec::new();
                for pattern in &a.sources {
                    if crate::git::is_git_url(pattern) {
                        self.add_git(pattern, a, &root, &dest, attrs, at)?;
                        continue;
                    }
                    if crate::fetch::is_url(pattern) {
                        urls.push(
                            crate::fetch::fetch(
                                pattern,
                                a.checksum.as_deref(),
                                &shared.builder.state_dir().join("downloads"),
                            )
                            .map_err(&err)?,
                        );
                        continue;
                    }
                    all.extend(add_root.expand(pattern).map_err(|message| {
                        BuildError::Context {
                            at: at.clone(),
                            message,
                        }
                    })?);
                }
                let dir_hint = dir_hint || a.sources.len() > 1;
                for f in &urls {
                    let target_rel = if dir_hint {
                        copy::mkdir_all(&root, &dest, attrs).map_err(&err)?;
                        format!("{}/{}", dest.trim_end_matches('/'), f.name)
                    } else {
                        dest.clone()
                    };
                    // Docker: downloaded files are 0600 unless --chmod.
                    let url_attrs = Attrs {
                        mode: Some(attrs.mode.unwrap_or(0o600)),
                        ..attrs
                    };
                    copy::install_file(&root, &target_rel, &f.path, f.modified, url_attrs)
                        .map_err(&err)?;
                }
                let unpack = a.unpack.unwrap_or(true);
                let (archives, plain): (Vec<_>, Vec<_>) = all.into_iter().partition(|s| {
                    unpack && s.path.is_file() && crate::archive::is_archive(&s.path)
                });
                copy::copy_sources(
                    &add_root,
                    &plain,
                    &root,
                    &dest,
                    dir_hint || !archives.is_empty() && !plain.is_empty(),
                    attrs,
                )
                .map_err(err)?;
                for archive in archives {
                    let target = copy::mkdir_all(&root, &dest, attrs).map_err(err)?;
                    crate::archive::extract(&archive.path, &target).map_err(err)?;
                }
                self.write_inline(&a.inline_sources, &root, &dest, dir_hint, attrs)
                    .map_err(err)?;
            }
            _ => {}
        }
        Ok(())
    }

    pub(super) fn write_inline(
        &self,
        inline: &[berth_spec::dockerfile::InlineSource],
        root: &std::path::Path,
        dest: &str,
        dir_hint: bool,
        attrs: Attrs,
    ) -> std::result::Result<(), String> {
        for src in inline {
            let data = if src.expand {
                berth_spec::dockerfile::expand_word(
                    &src.data,
                    &|k| self.lookup(k),
                    self.shared.dockerfile.escape,
                )
                .unwrap_or_else(|_| src.data.clone())
            } else {
                src.data.clone()
            };
            let target_rel = if dir_hint || inline.len() > 1 {
                copy::mkdir_all(root, dest, attrs)?;
                format!("{}/{}", dest.trim_end_matches('/'), clean_rel(&src.path))
            } else {
                dest.to_owned()
            };
            let parent = std::path::Path::new(&target_rel)
                .parent()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_else(|| "/".into());
            copy::mkdir_all(root, &parent, attrs)?;
            let target =
                berth_runtime::secure_join(root, &target_rel).map_err(|e| e.to_string())?;
            std::fs::write(&target, data).map_err(|e| format!("{}: {e}", target.display()))?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(
                &target,
                std::fs::Permissions::from_mode(attrs.mode.unwrap_or(0o644)),
            )
            .map_err(|e| e.to_string())?;
            nix::unistd::chown(
                &target,
                Some(nix::unistd::Uid::from_raw(attrs.uid)),
                Some(nix::unistd::Gid::from_raw(attrs.gid)),
            )
            .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    pub(super) fn attrs(
        &self,
        chown: Option<&str>,
        chmod: Option<&str>,
        root: &std::path::Path,
    ) -> std::result::Result<Attrs, String> {
        let (uid, gid) = match chown {
            Some(c) => copy::resolve_chown(c, root)?,
            None => (0, 0),
        };
        let mode = chmod.map(copy::parse_chmod).transpose()?;
        Ok(Attrs { uid, gid, mode })
    }

    /// Turns an upper dir into the step's layer and snapshot.
    pub(super) fn commit_upper(&self, upper: &std::path::Path, _at: &StepAt) -> Result<Done> {
        if layer::is_empty_dir(upper) {
            return Ok(Done::Layer(None, None));
        }
        let store = &self.shared.builder.store;
        let epoch = self.shared.epoch;
        let built = store.write_layer(&mut |w| layer::write_tar(upper, w, epoch))?;
        let mut diff_ids = self.state.diff_ids();
        diff_ids.push(built.diff_id.clone());
        let chain = berth_image::digest::chain_ids(&diff_ids)
            .pop()
            .ok_or_else(|| BuildError::Invalid("no chain id".into()))?;
        store.adopt_snapshot(&chain, upper)?;
        Ok(Done::Layer(Some(built), Some(chain)))
    }

    pub(super) fn execute_run(
        &mut self,
        run: &berth_spec::dockerfile::Run,
        at: &StepAt,
        vertex: u32,
        started: Instant,
    ) -> Result<Done> {
        let shared = self.shared;
        let err = |message: String| BuildError::Step {
            at: at.clone(),
            message,
        };
        let lowers = self.lowers()?;
        let workdir = self.state.workdir();
        let state_dir = shared.builder.state_dir();
        let mount_env = crate::mounts::MountEnv {
            state_dir: &state_dir,
            tmp: &shared.tmp,
            workdir: &workdir,
            secrets: &shared.request.secrets,
            ssh: &shared.ssh,
        };
        let mut prepared = crate::mounts::Prepared::default();
        for m in &run.mounts {
            let bind_from = || match (&m.from, m.from.as_deref().and_then(|f| self.named_dir(f))) {
                (_, Some(root)) => Ok(crate::mounts::BindFrom::Context(root)),
                (Some(f), None) => self
                    .source_layers(f, at)
                    .map(crate::mounts::BindFrom::Layers)
                    .map_err(|e| e.to_string()),
                (None, None) => Ok(crate::mounts::BindFrom::Context(shared.context.clone())),
            };
            crate::mounts::prepare(m, &mount_env, bind_from, &mut prepared)
                .map_err(|e| err(format!("--mount={}: {e}", m.spec)))?;
        }
        let argv = self.run_argv(run);
        let mut env: Vec<String> = self
            .args
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
            .filter(|kv| {
                let k = kv.split_once('=').map_or(kv.as_str(), |(k, _)| k);
                self.state.env_var(k).is_none()
            })
            .collect();
        for (k, v) in shared.args.proxies() {
            env.push(format!("{k}={v}"));
        }
        let mut full = self.state.env();
        if !full.iter().any(|kv| kv.starts_with("PATH=")) {
            full.insert(0, format!("PATH={}", crate::imageconfig::DEFAULT_PATH));
        }
        full.extend(env);
        full.extend(prepared.env.iter().cloned());
        crate::network::check_entitlements(run, shared.request).map_err(&err)?;
        let network = StepNetwork::of(
            run.network,
            &shared.request.network,
            shared.builder.run_networks.is_some(),
        );
        std::fs::create_dir_all(&shared.tmp).map_err(|e| BuildError::io(&shared.tmp, e))?;
        let staging = tempfile::Builder::new()
            .prefix("run-")
            .tempdir_in(&shared.tmp)
            .map_err(|e| BuildError::io(&shared.tmp, e))?;
        let upper = staging.path().join("upper");
        let spec = RunSpec {
            lowers: lowers.clone(),
            argv: argv.clone(),
            env: full,
            user: self.state.user(),
            cwd: workdir.clone(),
            network,
            networks: shared
                .builder
                .run_networks
                .clone()
                .map(|n| n as std::sync::Arc<dyn crate::network::RunNetworks>),
            extra_hosts: shared.request.extra_hosts.clone(),
            privileged: run.security == Some(SecurityMode::Insecure),
            rlimits: shared.request.ulimits.clone(),
            shm_size: shared.request.shm_size,
            mounts: std::mem::take(&mut prepared.mounts),
            at: at.clone(),
        };
        let code = run::run(
            &shared.builder.runtime,
            spec,
            &upper,
            shared.progress,
            vertex,
            started,
            shared.request.cancel.as_deref(),
        )?;
        crate::mounts::remove_stubs(&upper, &lowers, &prepared.targets);
        drop(prepared);
        if code != 0 {
            return Err(BuildError::RunFailed {
                at: at.clone(),
                command: argv.join(" "),
                code,
            });
        }
        self.commit_upper(&upper, at)
    }

    /// RUN's argv: exec form as is; shell form (heredocs included) through
    /// the stage's SHELL. A lone `<<EOF` heredoc runs its body as the
    /// script.
    pub(super) fn run_argv(&self, run: &berth_spec::dockerfile::Run) -> Vec<String> {
        match &run.command {
            CommandLine::Exec(a) => a.clone(),
            CommandLine::Shell(cmd) => {
                let mut script = cmd.clone();
                if let [only] = run.heredocs.as_slice()
                    && cmd.trim_start().starts_with("<<")
                    && cmd.split_whitespace().count() == 1
                {
                    script = only.content.clone();
                } else {
                    for h in &run.heredocs {
                        script.push('\n');
                        script.push_str(&h.content);
                        script.push_str(&h.name);
                    }
                }
                let mut argv = self.state.shell();
                argv.push(script);
                argv
            }
        }
    }
}
