//! The directory watcher: notify's debounced events, filtered, turned into
//! "rescan" signals on a tokio channel.
//!
//! The debouncer's handler runs on notify's own thread, so it only sends
//! into a bounded channel and never blocks: when the channel is full a rescan
//! is already queued, and one rescan covers any number of events (scans are
//! level-triggered, see [`crate::projects::scan`]).
//!
//! Lifecycle: [`Watcher::start`] returns the watcher and the receiver. The
//! watcher must be kept alive as long as events are wanted: dropping the
//! debouncer silently stops all events.

use std::path::{Component, Path};
use std::time::Duration;

use notify_debouncer_full::notify::event::{AccessKind, AccessMode};
use notify_debouncer_full::notify::{EventKind, RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, DebouncedEvent, Debouncer, RecommendedCache};
use tokio::sync::mpsc;

use crate::projects::discover::is_skipped_dir;

/// Why a rescan is wanted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// Relevant file events (how many, after filtering).
    Changed { events: usize },
    /// The watcher lost track (queue overflow, an error): events may have
    /// been missed, so everything must be compared.
    Lost { reason: String },
}

/// Keeps the debouncer alive.
pub struct Watcher {
    _debouncer: Debouncer<RecommendedWatcher, RecommendedCache>,
}

/// Pending signals. Small on purpose: one queued signal already means "scan
/// again", so more would add nothing.
const CHANNEL_CAPACITY: usize = 8;

impl Watcher {
    /// Watches `root` recursively, debouncing events for `debounce`.
    pub fn start(
        root: &Path,
        debounce: Duration,
    ) -> anyhow::Result<(Self, mpsc::Receiver<Signal>)> {
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        let filter_root = root.to_path_buf();
        let handler = move |result: DebounceEventResult| {
            if let Some(signal) = classify(&filter_root, result) {
                // Full: a signal is already pending, which covers this one.
                // Closed: the agent is shutting down.
                let _ = tx.try_send(signal);
            }
        };
        let mut debouncer = notify_debouncer_full::new_debouncer(debounce, None, handler)?;
        debouncer.watch(root, RecursiveMode::Recursive)?;
        Ok((
            Self {
                _debouncer: debouncer,
            },
            rx,
        ))
    }
}

/// Turns one debounced batch into a signal, or nothing when every event in
/// it is noise.
fn classify(root: &Path, result: DebounceEventResult) -> Option<Signal> {
    match result {
        Ok(events) => {
            if events.iter().any(|e| e.need_rescan()) {
                return Some(Signal::Lost {
                    reason: "event queue overflow".to_owned(),
                });
            }
            let events = events.iter().filter(|e| is_relevant(root, e)).count();
            (events > 0).then_some(Signal::Changed { events })
        }
        Err(errors) => Some(Signal::Lost {
            reason: errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        }),
    }
}

fn is_relevant(root: &Path, event: &DebouncedEvent) -> bool {
    let kind_matters = match event.kind {
        // Reads and opens change nothing; a close after writing does.
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    };
    // A rename lists both names: `mv compose.yaml.tmp compose.yaml` is
    // relevant through its target even though its source is a temp file.
    kind_matters && event.paths.iter().any(|p| is_relevant_path(root, p))
}

/// False for paths whose changes never matter: anything inside `.git` or
/// another skipped folder, and editors' temporary and backup files.
pub fn is_relevant_path(root: &Path, path: &Path) -> bool {
    let rel = path.strip_prefix(root).unwrap_or(path);
    let names: Vec<&str> = rel
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => n.to_str(),
            _ => None,
        })
        .collect();
    let Some((last, parents)) = names.split_last() else {
        // The root itself (created, removed, attributes): rescan.
        return true;
    };
    if parents.iter().any(|dir| is_skipped_dir(dir)) {
        return false;
    }
    // `.env` is a hidden file that matters; `.git` is a hidden folder that
    // does not.
    *last != ".git" && !is_editor_temp_file(last)
}

/// Swap, backup, lock and scratch files that editors write beside the real
/// one: vim (`.x.swp`, `x~`, `4913`), emacs (`.#x`, `#x#`), JetBrains
/// (`x___jb_tmp___`), and the `*.tmp` of atomic-save tools.
pub fn is_editor_temp_file(name: &str) -> bool {
    const SUFFIXES: [&str; 7] = [
        ".swp",
        ".swo",
        ".swx",
        "~",
        ".tmp",
        "___jb_tmp___",
        "___jb_old___",
    ];
    name == "4913"
        || name.starts_with(".#")
        || (name.starts_with('#') && name.ends_with('#'))
        || SUFFIXES.iter().any(|s| name.ends_with(s))
}

#[cfg(test)]
#[path = "watch_tests.rs"]
mod tests;
