//! One stage: FROM, then each instruction in order. Metadata instructions
//! change the config; COPY, ADD, WORKDIR and RUN make layers. Every step
//! has a cache key (parent key, the step as executed, the digest of what
//! it reads); a step whose key is in the cache is not run.

use std::path::PathBuf;
use std::time::{Instant, SystemTime};

use berth_image::{BuiltLayer, Digest};
use berth_spec::dockerfile::{
    Add, Command, CommandLine, Dockerfile, Instruction, SecurityMode, Stage,
};
use sha2::{Digest as _, Sha256};

use crate::builder::Shared;
use crate::cache::{Entry, Key};
use crate::context::{SourceRoot, clean_rel};
use crate::copy::{self, Attrs};
use crate::error::{BuildError, Result, StepAt};
use crate::fsop::OverlayView;
use crate::imageconfig::ImageState;
use crate::inline_cache::CacheRecord;
use crate::layer;
use crate::network::StepNetwork;
use crate::request::{Event, StepReport, StepStatus};
use crate::run::{self, RunSpec};

#[path = "stage_exec.rs"]
mod exec;
#[path = "stage_key.rs"]
mod key;
#[path = "stage_link.rs"]
mod link;
#[path = "stage_sources.rs"]
mod sources;

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
        // A named context of the stage's name replaces the whole stage.
        if let Some(name) = &self.stage.name
            && let Some(named) = self.shared.named.get(name)
        {
            let at = self.at(None);
            match named.clone() {
                crate::named::Named::Image(reference) => {
                    self.start_from_image(&reference, &at)?;
                    let step = self.step_name(1, &format!("FROM {reference}"));
                    self.report(step, StepStatus::Metadata);
                }
                crate::named::Named::Dir(root) => {
                    self.start_from_folder(name, &root, &at)?;
                    let step = self.step_name(1, &format!("FROM {}", root.root.display()));
                    self.report(step, StepStatus::Executed);
                }
            }
            return Ok(StageOut {
                state: self.state,
                key: self.key,
            });
        }
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
        match self.source_of(&base) {
            _ if base == "scratch" => {
                self.state = ImageState::scratch();
                self.key = Key::base("scratch");
            }
            sources::FromSource::Stage(dep) => {
                let out = shared.board.wait(dep).map_err(|e| BuildError::Step {
                    at: at.clone(),
                    message: format!("stage {base} failed: {e}"),
                })?;
                self.state = out.state;
                self.state.cmd_set = false;
                self.key = out.key;
            }
            sources::FromSource::Image => self.start_from_image(&base, &at)?,
            sources::FromSource::Named(crate::named::Named::Image(reference)) => {
                let reference = reference.clone();
                self.start_from_image(&reference, &at)?;
            }
            sources::FromSource::Named(crate::named::Named::Dir(root)) => {
                let root = root.clone();
                self.start_from_folder(&base, &root, &at)?;
            }
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
            if let sources::FromSource::Stage(i) = self.source_of(reference) {
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
        // A linked layer is looked up by its own key, which has no parent
        // in it; the chain goes on from the parent's key, so the steps
        // after it still change with the base.
        let link = match self.link_owner(&instruction) {
            Ok(l) => l,
            Err(message) => {
                let e = step_err(message);
                shared.progress.event(Event::Failed {
                    vertex,
                    elapsed: started.elapsed(),
                    error: e.to_string(),
                });
                return Err(e);
            }
        };
        let (key, chain) = match &link {
            Some(owner) => {
                let key = Key::linked(&self.describe_link(&instruction, *owner), &inputs);
                let chain = Key::step(&self.key, "link", key.0.as_bytes());
                (key, chain)
            }
            None => {
                let key = Key::step(&self.key, &what, &inputs);
                (key.clone(), key)
            }
        };
        // After a miss the chain's keys are new, but a linked layer's is
        // not: it is looked up whatever ran before it.
        let lookup = if link.is_some() {
            !shared.request.no_cache
        } else {
            self.cache_ok
        };
        if lookup && let Some(entry) = shared.cache.get(&key) {
            shared.progress.event(Event::Cached { vertex });
            self.apply_workdir(&instruction);
            self.record(chain, &key, entry.layer, entry.created, &history_text);
            self.report(name, StepStatus::Cached);
            return Ok(());
        }
        self.cache_ok = false;
        let result = self.execute(&instruction, &at, vertex, started, link);
        let Done::Layer(layer, snapshot) = match result {
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
            .put(&key, &Entry::new(layer.clone(), snapshot, created.clone()))?;
        self.apply_workdir(&instruction);
        self.record(chain, &key, layer, created, &history_text);
        shared.progress.event(Event::Done {
            vertex,
            elapsed: started.elapsed(),
        });
        self.report(name, StepStatus::Executed);
        Ok(())
    }

    /// A filesystem step's result: `chain` continues the stage's keys,
    /// `cache_key` is the one its entry is stored under (the same but for
    /// a linked layer), recorded for the inline cache.
    fn record(
        &mut self,
        chain: Key,
        cache_key: &Key,
        layer: Option<BuiltLayer>,
        created: String,
        history: &str,
    ) {
        self.key = chain;
        let empty = layer.is_none();
        let index = layer.map(|l| {
            self.state.layers.push(l);
            self.state.layers.len() - 1
        });
        self.state.cache_records.push(CacheRecord {
            key: cache_key.0.clone(),
            layer: index,
            created: created.clone(),
        });
        self.state.created = created;
        self.state.push_history(history, empty);
    }

    fn apply_workdir(&mut self, instruction: &Instruction) {
        if let Instruction::Workdir(w) = instruction {
            let dir = resolve_workdir(&self.state.workdir(), w);
            self.state.set("WorkingDir", serde_json::json!(dir));
        }
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
