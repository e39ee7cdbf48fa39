//! What a step's cache key holds besides its parent's: the step as
//! executed (`describe`) and the digest of what it reads (`inputs`: the
//! context files its patterns reach, downloads, bind-mounted sources,
//! `--from` stages' keys and images' IDs). Nothing here may depend on the
//! host (paths, owners, mtimes, store-local IDs): an inline cache made on
//! one host is matched on another.

use super::*;

impl StageRun<'_> {
    /// The step as the cache key sees it: the expanded instruction and,
    /// for RUN, everything that shapes its process.
    pub(super) fn describe(&self, instruction: &Instruction) -> String {
        let mut what = serde_json::to_string(instruction).unwrap_or_default();
        match instruction {
            Instruction::Run(run) => {
                let args: Vec<String> = self
                    .args
                    .iter()
                    .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
                    .collect();
                let request = self.shared.request;
                // The network the step runs on, by kind and name: never
                // a bridge address or a netns path, which are the host's.
                let network = StepNetwork::of(
                    run.network,
                    &request.network,
                    self.shared.builder.run_networks.is_some(),
                );
                what.push_str(&format!(
                    "|env={:?}|args={args:?}|user={:?}|cwd={}|shell={:?}|net={network:?}",
                    self.state.env(),
                    self.state.user(),
                    self.state.workdir(),
                    self.state.shell(),
                ));
                // As in BuildKit, where they are part of the exec op;
                // `host-gateway` stays a word, not the gateway it means.
                if !request.extra_hosts.is_empty() {
                    what.push_str(&format!("|hosts={:?}", request.extra_hosts));
                }
                if !request.ulimits.is_empty() {
                    what.push_str(&format!("|ulimits={:?}", request.ulimits));
                }
            }
            Instruction::Copy(_) | Instruction::Add(_) | Instruction::Workdir(_) => {
                what.push_str(&format!(
                    "|cwd={}|user={:?}",
                    self.state.workdir(),
                    self.state.user()
                ));
            }
            Instruction::Arg(_) => {
                what.push_str(&format!("|args={:?}", self.args));
            }
            _ => {}
        }
        if let Some(e) = self.shared.epoch {
            what.push_str(&format!("|epoch={e}"));
        }
        what
    }

    /// The digest of what a step reads besides its parent.
    pub(super) fn inputs(&self, instruction: &Instruction, at: &StepAt) -> Result<Vec<u8>> {
        let shared = self.shared;
        let mut h = Sha256::new();
        let bind_sources: Vec<String>;
        let no_excludes = Vec::new();
        let excludes = match instruction {
            Instruction::Copy(c) => &c.exclude,
            Instruction::Add(a) => &a.exclude,
            _ => &no_excludes,
        };
        let context_err = |message: String| BuildError::Context {
            at: at.clone(),
            message,
        };
        let mut context = shared
            .context
            .with_excludes(excludes)
            .map_err(context_err)?;
        let (sources, from) = match instruction {
            Instruction::Copy(c) => (&c.sources, c.from.as_deref()),
            Instruction::Add(a) => (&a.sources, None),
            Instruction::Run(r) => {
                // What bind mounts read is part of the key; cache, tmpfs
                // and secret mounts are not (as in BuildKit).
                let binds = r
                    .mounts
                    .iter()
                    .filter(|m| m.kind == berth_spec::dockerfile::MountType::Bind);
                for m in binds.clone() {
                    if let Some(f) = &m.from {
                        h.update(m.spec.as_bytes());
                        h.update(self.source_key(f, at)?.0.as_bytes());
                    }
                }
                bind_sources = binds
                    .filter(|m| m.from.is_none())
                    .map(|m| {
                        let s = clean_rel(m.source.as_deref().unwrap_or("."));
                        if s.is_empty() { ".".to_owned() } else { s }
                    })
                    .collect();
                if bind_sources.is_empty() {
                    return Ok(h.finalize().to_vec());
                }
                (&bind_sources, None)
            }
            _ => return Ok(Vec::new()),
        };
        if let Some(from) = from {
            // A named folder is read like the context; anything else is
            // keyed by what it is (a stage's key, an image's ID).
            match self.named_dir(from) {
                Some(root) => context = root.with_excludes(excludes).map_err(context_err)?,
                None => {
                    h.update(self.source_key(from, at)?.0.as_bytes());
                    return Ok(h.finalize().to_vec());
                }
            }
        }
        // Remote sources first: their network round trips must not hold
        // the stat cache the other stages hash with.
        let mut remote = std::collections::HashMap::new();
        if let Instruction::Add(add) = instruction {
            for pattern in sources {
                if crate::git::is_git_url(pattern) {
                    remote.insert(pattern, self.git_input(pattern, add, at)?);
                } else if crate::fetch::is_url(pattern) {
                    let fetched = crate::fetch::fetch(
                        pattern,
                        add.checksum.as_deref(),
                        &shared.builder.state_dir().join("downloads"),
                    )
                    .map_err(|message| BuildError::Step {
                        at: at.clone(),
                        message,
                    })?;
                    remote.insert(
                        pattern,
                        format!("{pattern}{}{}", fetched.digest, fetched.name),
                    );
                }
            }
        }
        let mut cache = shared
            .statcache
            .lock()
            .map_err(|_| BuildError::Invalid("stat cache poisoned".into()))?;
        for pattern in sources {
            if let Some(input) = remote.get(pattern) {
                h.update(input.as_bytes());
                continue;
            }
            let found = context
                .expand(pattern)
                .map_err(|message| BuildError::Context {
                    at: at.clone(),
                    message,
                })?;
            for s in &found {
                h.update(s.rel.as_bytes());
                context
                    .hash(s, &mut cache, &mut h)
                    .map_err(|message| BuildError::Context {
                        at: at.clone(),
                        message,
                    })?;
            }
        }
        Ok(h.finalize().to_vec())
    }
}
