//! One stage: FROM, then each instruction in order. Metadata instructions
//! change the config; COPY, ADD, WORKDIR and RUN make layers. Every step
//! has a cache key (parent key, the step as executed, the digest of what
//! it reads); a step whose key is in the cache is not run.

use std::path::PathBuf;
use std::time::{Instant, SystemTime};

use berth_image::{BuiltLayer, Digest};
use berth_spec::dockerfile::{Command, CommandLine, Dockerfile, Instruction, SecurityMode, Stage};
use sha2::{Digest as _, Sha256};

use crate::builder::Shared;
use crate::cache::{Entry, Key};
use crate::context::{SourceRoot, clean_rel};
use crate::copy::{self, Attrs};
use crate::error::{BuildError, Result, StepAt};
use crate::fsop::OverlayView;
use crate::imageconfig::ImageState;
use crate::layer;
use crate::network::StepNetwork;
use crate::request::{Event, StepReport, StepStatus};
use crate::run::{self, RunSpec};

#[path = "stage_exec.rs"]
mod exec;

/// A finished stage: its image state and the cache key of its last step.
#[derive(Debug, Clone)]
pub struct StageOut {
    pub state: ImageState,
    pub key: Key,
}

pub struct StageRun<'a> {
    shared: &'a Shared<'a>,
    stage: &'a Stage,
    label: String,
    total: usize,
    state: ImageState,
    key: Key,
    /// The stage's ARGs as declared so far.
    args: Vec<(String, Option<String>)>,
    /// Whether the next steps can still come from the cache.
    cache_ok: bool,
}

/// A step's result before it is recorded.
enum Done {
    Layer(Option<BuiltLayer>, Option<Digest>),
}

impl<'a> StageRun<'a> {
    pub fn new(shared: &'a Shared<'a>, index: usize) -> Result<Self> {
        let df: &Dockerfile = shared.dockerfile;
        let stage = df
            .stages
            .get(index)
            .ok_or_else(|| BuildError::Invalid(format!("no stage {index}")))?;
        let label = match &stage.name {
            Some(n) => n.clone(),
            None if df.stages.len() == 1 => String::new(),
            None => format!("stage-{index}"),
        };
        Ok(Self {
            shared,
            stage,
            label,
            total: stage.commands.len() + 1,
            state: ImageState::default(),
            key: Key::base(""),
            args: Vec::new(),
            cache_ok: !shared.request.no_cache,
        })
    }

    fn at(&self, command: Option<&Command>) -> StepAt {
        let (line, text) = match command {
            Some(c) => (c.location.start_line, c.original.clone()),
            None => (
                self.stage.location.start_line,
                format!("FROM {}", self.stage.base),
            ),
        };
        StepAt {
            file: self.shared.file_label.clone(),
            line,
            instruction: text,
        }
    }

    fn step_name(&self, n: usize, text: &str) -> String {
        let text: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if self.label.is_empty() {
            format!("[{n}/{}] {text}", self.total)
        } else {
            format!("[{} {n}/{}] {text}", self.label, self.total)
        }
    }

    fn report(&self, name: String, status: StepStatus) {
        if let Ok(mut s) = self.shared.steps.lock() {
            s.push(StepReport {
                stage: self.label.clone(),
                name,
                status,
            });
        }
    }

    /// Variable lookup for expansion: ENV wins over ARG.
    fn lookup(&self, key: &str) -> Option<String> {
        self.state.env_var(key).or_else(|| {
            self.args
                .iter()
                .rev()
                .find(|(n, _)| n == key)
                .and_then(|(_, v)| v.clone())
        })
    }

    pub fn build(mut self) -> Result<StageOut> {
        self.start_from_base()?;
        let commands = self.stage.commands.clone();
        for (i, command) in commands.iter().enumerate() {
            self.step(i + 2, command, false)?;
        }
        Ok(StageOut {
            state: self.state,
            key: self.key,
        })
    }

    fn start_from_base(&mut self) -> Result<()> {
        let shared = self.shared;
        let df = shared.dockerfile;
        let at = self.at(None);
        let base = df
            .expanded_base(self.stage, &|k| shared.args.global_lookup(k))
            .map_err(|e| BuildError::Step {
                at: at.clone(),
                message: e.to_string(),
            })?;
        if let Some(platform) = &self.stage.platform {
            let lookup = |k: &str| {
                shared
                    .args
                    .globals
                    .iter()
                    .rev()
                    .find(|(n, _)| n == k)
                    .and_then(|(_, v)| v.clone())
                    .or_else(|| shared.args.global_lookup(k))
            };
            let platform = berth_spec::dockerfile::expand_word(platform, &lookup, df.escape)
                .map_err(|e| BuildError::Step {
                    at: at.clone(),
                    message: e.to_string(),
                })?;
            let host = format!("linux/{}", berth_image::platform::host_arch());
            if platform != host {
                return Err(BuildError::Step {
                    at,
                    message: format!(
                        "--platform={platform}: berth builds for the host platform ({host}) only"
                    ),
                });
            }
        }
        let vertex = shared.next_vertex();
        let name = self.step_name(1, &format!("FROM {base}"));
        shared.progress.event(Event::Started {
            vertex,
            name: name.clone(),
        });
        let started = Instant::now();
        if base == "scratch" {
            self.state = ImageState::scratch();
            self.key = Key::base("scratch");
        } else if let Some(dep) = df.resolve_stage_ref(&base, self.stage.index) {
            let out = shared.board.wait(dep).map_err(|e| BuildError::Step {
                at: at.clone(),
                message: format!("stage {base} failed: {e}"),
            })?;
            self.state = out.state;
            self.state.cmd_set = false;
            self.key = out.key;
        } else {
            let store = &shared.builder.store;
            let image = match store.image(&base) {
                Ok(i) => i,
                Err(e) if e.kind() == berth_image::ErrorKind::NotFound => {
                    return Err(BuildError::BaseImageMissing { image: base, at });
                }
                Err(e) => return Err(e.into()),
            };
            let raw = store.raw_config(&image)?;
            self.state = ImageState::from_base(&raw, store.image_layers(&image)?);
            self.key = Key::base(&format!("image:{}", image.id));
        }
        shared.progress.event(Event::Done {
            vertex,
            elapsed: started.elapsed(),
        });
        self.report(name, StepStatus::Metadata);
        let triggers = self.state.take_onbuild();
        for trigger in triggers {
            let text = format!("FROM scratch\n{trigger}\n");
            let parsed =
                Dockerfile::parse(&text, std::path::Path::new("ONBUILD")).map_err(|d| {
                    BuildError::Step {
                        at: self.at(None),
                        message: format!("bad ONBUILD trigger {trigger:?} in the base image: {d}"),
                    }
                })?;
            for command in parsed.stages.into_iter().flat_map(|s| s.commands) {
                self.step(1, &command, true)?;
            }
        }
        Ok(())
    }

    fn step(&mut self, n: usize, command: &Command, onbuild: bool) -> Result<()> {
        let shared = self.shared;
        if shared.failed.load(std::sync::atomic::Ordering::Relaxed)
            || shared
                .request
                .cancel
                .as_ref()
                .is_some_and(|c| c.load(std::sync::atomic::Ordering::Relaxed))
        {
            return Err(BuildError::Cancelled);
        }
        let at = self.at(Some(command));
        let escape = shared.dockerfile.escape;
        let step_err = |message: String| BuildError::Step {
            at: at.clone(),
            message,
        };
        let instruction = command
            .instruction
            .expand(&|k| self.lookup(k), escape)
            .map_err(|e| step_err(e.to_string()))?;
        let shown = if onbuild {
            format!("ONBUILD {}", command.original)
        } else {
            command.original.clone()
        };
        let name = self.step_name(n, &shown);
        // A step that reads another stage starts (in the progress) once
        // that stage is done, as BuildKit shows it.
        for reference in berth_spec::dockerfile::stages::stage_refs(&instruction) {
            if let Some(i) = shared
                .dockerfile
                .resolve_stage_ref(reference, self.stage.index)
            {
                let _ = shared.board.wait(i);
            }
        }
        let vertex = shared.next_vertex();
        let started = Instant::now();
        let layered = matches!(
            instruction,
            Instruction::Run(_)
                | Instruction::Copy(_)
                | Instruction::Add(_)
                | Instruction::Workdir(_)
        );
        let history_text = history_text(&instruction, &command.original, &self.state, &self.args);
        // Metadata steps change the key too (as in Docker), so a later
        // layer step built under another ENV is not confused with this one.
        let what = self.describe(&instruction);
        if !layered {
            shared.progress.event(Event::Started {
                vertex,
                name: name.clone(),
            });
            self.apply_metadata(&instruction, &command.original)
                .map_err(step_err)?;
            self.key = Key::step(&self.key, &what, b"");
            self.state.push_history(&history_text, true);
            shared.progress.event(Event::Done {
                vertex,
                elapsed: started.elapsed(),
            });
            self.report(name, StepStatus::Metadata);
            return Ok(());
        }
        shared.progress.event(Event::Started {
            vertex,
            name: name.clone(),
        });
        let inputs = match self.inputs(&instruction, &at) {
            Ok(i) => i,
            Err(e) => {
                shared.progress.event(Event::Failed {
                    vertex,
                    elapsed: started.elapsed(),
                    error: e.to_string(),
                });
                return Err(e);
            }
        };
        let key = Key::step(&self.key, &what, &inputs);
        if self.cache_ok
            && let Some(entry) = shared.cache.get(&key)
        {
            shared.progress.event(Event::Cached { vertex });
            self.apply_workdir(&instruction);
            self.record(key, entry.layer, entry.created, &history_text);
            self.report(name, StepStatus::Cached);
            return Ok(());
        }
        self.cache_ok = false;
        let result = self.execute(&instruction, &at, vertex, started);
        let Done::Layer(layer, chain) = match result {
            Ok(d) => d,
            Err(e) => {
                shared.progress.event(Event::Failed {
                    vertex,
                    elapsed: started.elapsed(),
                    error: e.to_string(),
                });
                return Err(e);
            }
        };
        let created = now_rfc3339(shared.epoch);
        shared
            .cache
            .put(&key, &Entry::new(layer.clone(), chain, created.clone()))?;
        self.apply_workdir(&instruction);
        self.record(key, layer, created, &history_text);
        shared.progress.event(Event::Done {
            vertex,
            elapsed: started.elapsed(),
        });
        self.report(name, StepStatus::Executed);
        Ok(())
    }

    fn record(&mut self, key: Key, layer: Option<BuiltLayer>, created: String, history: &str) {
        self.key = key;
        self.state.created = created;
        let empty = layer.is_none();
        if let Some(l) = layer {
            self.state.layers.push(l);
        }
        self.state.push_history(history, empty);
    }

    fn apply_workdir(&mut self, instruction: &Instruction) {
        if let Instruction::Workdir(w) = instruction {
            let dir = resolve_workdir(&self.state.workdir(), w);
            self.state.set("WorkingDir", serde_json::json!(dir));
        }
    }

    /// The step as the cache key sees it: the expanded instruction and,
    /// for RUN, everything that shapes its process.
    fn describe(&self, instruction: &Instruction) -> String {
        let mut what = serde_json::to_string(instruction).unwrap_or_default();
        match instruction {
            Instruction::Run(run) => {
                let args: Vec<String> = self
                    .args
                    .iter()
                    .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
                    .collect();
                let request = self.shared.request;
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
                // As in BuildKit, where they are part of the exec op.
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
    fn inputs(&self, instruction: &Instruction, at: &StepAt) -> Result<Vec<u8>> {
        let shared = self.shared;
        let mut h = Sha256::new();
        let bind_sources: Vec<String>;
        let no_excludes = Vec::new();
        let excludes = match instruction {
            Instruction::Copy(c) => &c.exclude,
            Instruction::Add(a) => &a.exclude,
            _ => &no_excludes,
        };
        let context =
            shared
                .context
                .with_excludes(excludes)
                .map_err(|message| BuildError::Context {
                    at: at.clone(),
                    message,
                })?;
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
            h.update(self.source_key(from, at)?.0.as_bytes());
            return Ok(h.finalize().to_vec());
        }
        let mut cache = shared
            .statcache
            .lock()
            .map_err(|_| BuildError::Invalid("stat cache poisoned".into()))?;
        for pattern in sources {
            if crate::fetch::is_url(pattern) {
                let checksum = match instruction {
                    Instruction::Add(a) => a.checksum.as_deref(),
                    _ => None,
                };
                let fetched = crate::fetch::fetch(
                    pattern,
                    checksum,
                    &shared.builder.state_dir().join("downloads"),
                )
                .map_err(|message| BuildError::Step {
                    at: at.clone(),
                    message,
                })?;
                h.update(pattern.as_bytes());
                h.update(fetched.digest.as_bytes());
                h.update(fetched.name.as_bytes());
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

    /// The cache key of what `--from` names: a stage's final key or an
    /// image's ID.
    fn source_key(&self, from: &str, at: &StepAt) -> Result<Key> {
        let df = self.shared.dockerfile;
        if let Some(i) = df.resolve_stage_ref(from, self.stage.index) {
            let out = self.shared.board.wait(i).map_err(|e| BuildError::Step {
                at: at.clone(),
                message: format!("stage {from} failed: {e}"),
            })?;
            return Ok(out.key);
        }
        let image = self.shared.builder.store.image(from).map_err(|e| {
            if e.kind() == berth_image::ErrorKind::NotFound {
                BuildError::BaseImageMissing {
                    image: from.to_owned(),
                    at: at.clone(),
                }
            } else {
                e.into()
            }
        })?;
        Ok(Key::base(&format!("image:{}", image.id)))
    }

    /// The snapshot dirs of what `--from` names.
    fn source_layers(&self, from: &str, at: &StepAt) -> Result<Vec<PathBuf>> {
        let df = self.shared.dockerfile;
        let store = &self.shared.builder.store;
        if let Some(i) = df.resolve_stage_ref(from, self.stage.index) {
            let out = self.shared.board.wait(i).map_err(|e| BuildError::Step {
                at: at.clone(),
                message: format!("stage {from} failed: {e}"),
            })?;
            return Ok(store.prepare_layers(&out.state.layers)?);
        }
        let image = store.image(from)?;
        Ok(store.prepare_rootfs(&image)?)
    }

    fn apply_metadata(
        &mut self,
        instruction: &Instruction,
        original: &str,
    ) -> std::result::Result<(), String> {
        let s = &mut self.state;
        match instruction {
            Instruction::Env(kvs) => {
                for kv in kvs {
                    s.set_env(&kv.key, &kv.value);
                }
            }
            Instruction::Label(kvs) => {
                for kv in kvs {
                    s.add_label(&kv.key, &kv.value);
                }
            }
            Instruction::Expose(ports) => {
                for p in ports {
                    s.expose(p)?;
                }
            }
            Instruction::Volume(vols) => {
                for v in vols {
                    s.add_volume(v);
                }
            }
            Instruction::User(u) => s.set("User", serde_json::json!(u)),
            Instruction::StopSignal(sig) => s.set("StopSignal", serde_json::json!(sig)),
            Instruction::Shell(sh) => s.set("Shell", serde_json::json!(sh)),
            Instruction::Cmd(cmd) => {
                let argv = s.argv(cmd);
                s.set("Cmd", serde_json::json!(argv));
                s.cmd_set = true;
            }
            Instruction::Entrypoint(ep) => {
                let argv = s.argv(ep);
                s.set("Entrypoint", serde_json::json!(argv));
                if !s.cmd_set {
                    s.set("Cmd", serde_json::Value::Null);
                }
            }
            Instruction::Healthcheck(hc) => s.set_healthcheck(hc),
            Instruction::Onbuild(_) => {
                let trigger = original
                    .trim_start()
                    .get(7..)
                    .unwrap_or_default()
                    .trim_start();
                s.add_onbuild(trigger);
            }
            Instruction::Maintainer(m) => s.author = Some(m.clone()),
            Instruction::Arg(decls) => {
                for d in decls {
                    let value = self.shared.args.stage_value(&d.name, d.default.clone());
                    self.args.retain(|(n, _)| n != &d.name);
                    self.args.push((d.name.clone(), value));
                }
            }
            Instruction::Run(_)
            | Instruction::Copy(_)
            | Instruction::Add(_)
            | Instruction::Workdir(_) => {}
        }
        Ok(())
    }
}

/// WORKDIR relative to the current one.
pub fn resolve_workdir(current: &str, w: &str) -> String {
    let joined = if w.starts_with('/') {
        w.to_owned()
    } else {
        format!("{}/{w}", current.trim_end_matches('/'))
    };
    format!("/{}", clean_rel(&joined))
}

fn now_rfc3339(epoch: Option<u64>) -> String {
    match epoch {
        Some(e) => crate::builder::rfc3339(e),
        None => humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
    }
}

/// The history `created_by` text, as BuildKit writes it.
fn history_text(
    instruction: &Instruction,
    original: &str,
    state: &ImageState,
    args: &[(String, Option<String>)],
) -> String {
    let joined = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    match instruction {
        Instruction::Run(r) => {
            // BuildKit's `|N K=V ...` prefix: the ARGs RUN saw.
            let with: Vec<String> = args
                .iter()
                .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
                .collect();
            let prefix = if with.is_empty() {
                String::new()
            } else {
                format!("|{} {} ", with.len(), with.join(" "))
            };
            match &r.command {
                CommandLine::Exec(a) => format!("RUN {prefix}{} # buildkit", a.join(" ")),
                CommandLine::Shell(s) => {
                    format!("RUN {prefix}{} {s} # buildkit", state.shell().join(" "))
                }
            }
        }
        Instruction::Copy(_) | Instruction::Add(_) => format!("{} # buildkit", joined(original)),
        Instruction::Env(kvs) | Instruction::Label(kvs) => {
            let word = if matches!(instruction, Instruction::Env(_)) {
                "ENV"
            } else {
                "LABEL"
            };
            let pairs: Vec<String> = kvs
                .iter()
                .map(|kv| format!("{}={}", kv.key, kv.value))
                .collect();
            format!("{word} {}", pairs.join(" "))
        }
        Instruction::Workdir(w) => format!("WORKDIR {w}"),
        Instruction::User(u) => format!("USER {u}"),
        _ => joined(original),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workdir_is_relative_to_the_previous_one() {
        assert_eq!(resolve_workdir("/", "app"), "/app");
        assert_eq!(resolve_workdir("/app", "src/../lib"), "/app/lib");
        assert_eq!(resolve_workdir("/app", "/x/"), "/x");
    }
}
