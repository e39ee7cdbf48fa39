//! What every registry verb shares: the insecure-registry list and the
//! docker config folder, and the transfer progress display.
//!
//! Insecure registries (plain http) are loopback ones plus those named by
//! `--insecure-registry`, `BERTH_INSECURE_REGISTRIES` (comma-separated)
//! and the `insecure-registries` array of `/etc/berth/registries.json`.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context;
use berth_image::Digest;
use berth_image::registry::{
    DockerConfig, INSECURE_ENV, Insecure, Progress, ProgressEvent, REGISTRIES_CONFIG, Registry,
};

#[derive(Debug, Clone, Default, clap::Args)]
pub struct RegistryOpts {
    /// Reach this registry (host[:port] or IPv4 CIDR) over plain http;
    /// loopback registries always are. Repeatable.
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure_registry: Vec<String>,
}

impl RegistryOpts {
    pub fn registry(&self) -> anyhow::Result<Registry> {
        let env = std::env::var(INSECURE_ENV).ok();
        let insecure = Insecure::from_sources(
            &self.insecure_registry,
            env.as_deref(),
            Some(std::path::Path::new(REGISTRIES_CONFIG)),
        )
        .context("cannot read the insecure registry settings")?;
        Ok(Registry::new(insecure, DockerConfig::from_env()))
    }
}

/// Which verb a display speaks for: their words differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Pull,
    Push,
}

#[derive(Debug, Clone)]
enum LayerState {
    Waiting,
    Moving { done: u64, size: u64 },
    Finished(String),
}

/// Per-layer lines as docker prints them: redrawn in place on a terminal
/// (a bar per layer), one line per state change otherwise.
pub struct Display {
    verb: Verb,
    tty: bool,
    quiet: bool,
    state: Mutex<DisplayState>,
}

struct DisplayState {
    order: Vec<Digest>,
    layers: BTreeMap<Digest, LayerState>,
    drawn: usize,
    last_draw: Option<Instant>,
}

impl Display {
    pub fn new(verb: Verb, quiet: bool) -> Self {
        Display {
            verb,
            tty: std::io::stdout().is_terminal(),
            quiet,
            state: Mutex::new(DisplayState {
                order: Vec::new(),
                layers: BTreeMap::new(),
                drawn: 0,
                last_draw: None,
            }),
        }
    }

    /// Redraws the last time, so the final states show.
    pub fn finish(&self) {
        if self.quiet || !self.tty {
            return;
        }
        if let Ok(mut state) = self.state.lock() {
            draw(&mut state);
        }
    }

    fn line(&self, digest: &Digest, text: &str) {
        println!("{}: {text}", digest.short());
    }
}

impl Progress for Display {
    fn event(&self, event: ProgressEvent) {
        if self.quiet {
            return;
        }
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let (digest, new, plain): (Digest, LayerState, Option<String>) = match event {
            ProgressEvent::Exists { digest } => {
                let word = match self.verb {
                    Verb::Pull => "Already exists",
                    Verb::Push => "Layer already exists",
                };
                (digest, LayerState::Finished(word.into()), Some(word.into()))
            }
            ProgressEvent::Started {
                digest,
                size,
                offset,
            } => {
                let word = match (self.verb, offset) {
                    (Verb::Pull, 0) => "Pulling fs layer",
                    (Verb::Pull, _) => "Resuming download",
                    (Verb::Push, _) => "Preparing",
                };
                (
                    digest,
                    LayerState::Moving { done: offset, size },
                    Some(word.into()),
                )
            }
            ProgressEvent::Bytes { digest, done, size } => {
                (digest, LayerState::Moving { done, size }, None)
            }
            ProgressEvent::Done { digest } => {
                let word = match self.verb {
                    Verb::Pull => "Pull complete",
                    Verb::Push => "Pushed",
                };
                (digest, LayerState::Finished(word.into()), Some(word.into()))
            }
            ProgressEvent::Mounted { digest, from } => {
                let word = format!("Mounted from {from}");
                (digest, LayerState::Finished(word.clone()), Some(word))
            }
        };
        if !state.layers.contains_key(&digest) {
            state.order.push(digest.clone());
            state.layers.insert(digest.clone(), LayerState::Waiting);
        }
        if !self.tty {
            if let Some(word) = plain {
                self.line(&digest, &word);
            }
            state.layers.insert(digest, new);
            return;
        }
        let finished = matches!(new, LayerState::Finished(_));
        state.layers.insert(digest, new);
        let due = state
            .last_draw
            .is_none_or(|t| t.elapsed() >= Duration::from_millis(100));
        if finished || due {
            draw(&mut state);
        }
    }
}

fn draw(state: &mut DisplayState) {
    let mut out = std::io::stdout().lock();
    if state.drawn > 0 {
        let _ = write!(out, "\x1b[{}A", state.drawn);
    }
    for digest in &state.order {
        let text = match state.layers.get(digest) {
            Some(LayerState::Waiting) | None => "Waiting".to_owned(),
            Some(LayerState::Finished(word)) => word.clone(),
            Some(LayerState::Moving { done, size }) => bar(*done, *size),
        };
        let _ = writeln!(out, "\x1b[2K{}: {text}", digest.short());
    }
    let _ = out.flush();
    state.drawn = state.order.len();
    state.last_draw = Some(Instant::now());
}

/// `[=====>      ]  1.2MB/2.1MB`, docker's bar.
fn bar(done: u64, size: u64) -> String {
    const WIDTH: u64 = 50;
    let filled = (done.min(size) * WIDTH).checked_div(size).unwrap_or(WIDTH);
    let mut s = String::from("[");
    for i in 0..WIDTH {
        s.push(if i < filled {
            '='
        } else if i == filled {
            '>'
        } else {
            ' '
        });
    }
    s.push(']');
    format!("{s}  {}/{}", human(done), human(size))
}

/// Decimal units, as docker's progress shows sizes.
pub fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.3}GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1}MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.1}kB", b / 1e3)
    } else {
        format!("{bytes}B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_and_sizes_read_like_docker() {
        assert_eq!(human(2_100_000), "2.1MB");
        assert_eq!(human(512), "512B");
        let b = bar(25, 100);
        assert!(b.starts_with("[============>"), "{b}");
        assert!(b.ends_with("25B/100B"), "{b}");
    }
}
