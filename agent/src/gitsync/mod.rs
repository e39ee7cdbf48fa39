//! Git sync: `berth agent --git URL` follows a branch, tag or commit of a
//! repository of Compose projects.
//!
//! Data flow. The syncer (one tokio task, [`start`]) keeps a checkout
//! under `<root>/agent/git/<hash of the URL>/`. Every `--git-interval`
//! (and on `POST /api/v1/source/refresh`) it asks the remote which commit
//! the ref names (`git ls-remote`: one round trip when nothing changed);
//! on a new commit it fetches it (one commit deep) and, holding the tree
//! lock, forces the worktree to it. The folder `<checkout>/<--git-path>`
//! is the `--dir` the supervisor scans, as for a plain folder: the
//! revision digests tell which projects changed, only those are
//! reconciled, a project folder gone from the commit is torn down after
//! the grace period, and a broken compose file keeps its project's last
//! good model running. The folder never moves between commits, so
//! relative bind mounts keep their host paths and nothing is recreated
//! for a path change.
//!
//! The tree lock is held by the checkout and by every scan, so a scan
//! never reads a half-updated tree; the scan tags each project with the
//! revision checked out (`main@sha1:...`). After a checkout the syncer
//! bumps a watch channel and the supervisor rescans at once (no file
//! watcher in git mode: the repository is the only input).
//!
//! Failures (unreachable remote, refused credentials, a missing ref or
//! `--git-path`, a failed checkout) leave the checkout and what runs as
//! they are, are retried with backoff (2 s doubling, capped at the
//! interval), and show in the source status (`SourceReady` False with the
//! reason), in `berth_source_fetches_total{result="failure"}` and
//! `berth_source_consecutive_failures`, and as a deduplicated
//! `SourceFetchFailed` event (recovered by `SourceFetchSucceeded`).
//! Local edits to tracked files of the checkout are discarded at the next
//! poll (`LocalChangesDiscarded`); untracked files are left alone.

pub mod git;
pub mod spec;
pub mod status;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, oneshot, watch};

use crate::metrics::Metrics;
use crate::reconcile::events_log::{EventLog, InvolvedObject, NewEvent, reason};
use crate::state::SharedStore;
use git::{ErrorKind, GitError, Repo};
use spec::GitRef;
use status::SourceStatus;

/// What `berth agent --git ...` asks for, checked.
#[derive(Debug, Clone)]
pub struct SourceConfig {
    /// Without credentials (they are in `auth`).
    pub url: String,
    pub reference: GitRef,
    /// `--git-path`, normalized (`""`: the root).
    pub path: String,
    pub interval: Duration,
    /// The longest one git call may take.
    pub timeout: Duration,
    /// `--git-webhook-secret-file`: the secret of forges' push webhooks.
    pub webhook_secret: Option<String>,
    /// The worktree: `<root>/agent/git/<hash>`.
    pub checkout: PathBuf,
    pub auth: git::Auth,
}

impl SourceConfig {
    /// The folder the supervisor scans.
    pub fn dir(&self) -> PathBuf {
        if self.path.is_empty() {
            self.checkout.clone()
        } else {
            self.checkout.join(&self.path)
        }
    }

    /// The status entry this source starts with.
    pub fn status(&self, now: SystemTime) -> SourceStatus {
        SourceStatus::new(
            self.url.clone(),
            self.reference.display(),
            self.path.clone(),
            self.interval,
            self.checkout.clone(),
            now,
        )
    }
}

/// The answer to a refresh.
#[derive(Debug, Clone)]
pub struct SyncReport {
    /// The revision checked out after the sync.
    pub revision: Option<String>,
    /// The revision before, when this sync checked out a new one.
    pub previous: Option<String>,
    pub changed: bool,
    /// Why the sync failed.
    pub error: Option<String>,
}

/// The API's handle on the syncer.
pub struct Control {
    refresh: mpsc::Sender<Option<oneshot::Sender<SyncReport>>>,
    /// `--git-webhook-secret-file`: what a forge's push webhook proves it
    /// knows (`api::webhook`).
    webhook_secret: Option<String>,
}

impl Control {
    /// A handle on `refresh` (the syncer's request channel), for tests of
    /// the API without a syncer.
    #[cfg(test)]
    pub fn new(
        refresh: mpsc::Sender<Option<oneshot::Sender<SyncReport>>>,
        webhook_secret: Option<String>,
    ) -> Self {
        Self {
            refresh,
            webhook_secret,
        }
    }

    pub fn webhook_secret(&self) -> Option<&str> {
        self.webhook_secret.as_deref()
    }

    /// Asks for a sync now; the receiver gets its report. `None` when the
    /// syncer is gone (the agent is stopping).
    pub fn refresh(&self) -> Option<oneshot::Receiver<SyncReport>> {
        let (tx, rx) = oneshot::channel();
        match self.refresh.try_send(Some(tx)) {
            Ok(()) => Some(rx),
            // Full: syncs are already asked for; this one waits for the
            // next like them.
            Err(mpsc::error::TrySendError::Full(Some(tx))) => {
                let sender = self.refresh.clone();
                tokio::spawn(async move { sender.send(Some(tx)).await });
                Some(rx)
            }
            Err(_) => None,
        }
    }
}

/// What the syncer shares with the supervisor.
pub struct Handles {
    pub control: Arc<Control>,
    /// The revision checked out; `None` until there is one. Bumped after
    /// every checkout (the supervisor rescans).
    pub checked_out: watch::Receiver<Option<String>>,
    pub task: tokio::task::JoinHandle<()>,
}

/// Starts the syncer. The store must already hold the source's status
/// (`Store::set_source`).
pub fn start(
    config: SourceConfig,
    store: SharedStore,
    metrics: Arc<Metrics>,
    events: Arc<EventLog>,
    tree: Arc<tokio::sync::Mutex<()>>,
) -> Handles {
    let (refresh, requests) = mpsc::channel(8);
    let (tx, checked_out) = watch::channel(None);
    let repo = Repo::new(&config.checkout, &config.auth, config.timeout);
    let webhook_secret = config.webhook_secret.clone();
    let syncer = Syncer {
        config,
        repo,
        store,
        metrics,
        events,
        tree,
        checked_out: tx,
        timed_out: std::sync::atomic::AtomicBool::new(false),
    };
    let span = tracing::info_span!("gitsync", url = %syncer.config.url);
    let task = tokio::spawn(tracing::Instrument::instrument(syncer.run(requests), span));
    Handles {
        control: Arc::new(Control {
            refresh,
            webhook_secret,
        }),
        checked_out,
        task,
    }
}

struct Syncer {
    config: SourceConfig,
    repo: Repo,
    store: SharedStore,
    metrics: Arc<Metrics>,
    events: Arc<EventLog>,
    tree: Arc<tokio::sync::Mutex<()>>,
    checked_out: watch::Sender<Option<String>>,
    /// The last git call ran out of time and was killed: its locks are
    /// cleared before the next sync.
    timed_out: std::sync::atomic::AtomicBool,
}

/// What one sync did when it worked.
struct Synced {
    commit: String,
    changed: bool,
    previous: Option<String>,
}

impl Syncer {
    async fn run(self, mut requests: mpsc::Receiver<Option<oneshot::Sender<SyncReport>>>) {
        self.resume().await;
        let mut waiters: Vec<oneshot::Sender<SyncReport>> = Vec::new();
        loop {
            let report = self.sync_once().await;
            for w in waiters.drain(..) {
                let _ = w.send(report.clone());
            }
            let failures = {
                let store = self.store.read().await;
                store.source().map_or(0, |s| s.consecutive_failures)
            };
            let delay = spec::retry_delay(failures, self.config.interval);
            {
                let mut store = self.store.write().await;
                if let Some(s) = store.source_mut() {
                    s.next_fetch_at = Some(SystemTime::now() + delay);
                }
            }
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                request = requests.recv() => match request {
                    None => break,
                    Some(waiter) => {
                        waiters.extend(waiter);
                        // Every request already queued is answered by
                        // the same sync.
                        while let Ok(more) = requests.try_recv() {
                            waiters.extend(more);
                        }
                        tracing::info!("refresh requested");
                    }
                },
            }
        }
    }

    /// At start: the repository exists, a checkout a previous run left is
    /// served at once (even if the remote is down now), repaired first
    /// (an agent killed mid-checkout, or edits by hand).
    async fn resume(&self) {
        if let Err(e) = self.repo.prepare().await {
            self.fail(&e).await;
            return;
        }
        let Some(head) = self.repo.head().await else {
            return;
        };
        let _tree = self.tree.lock().await;
        if self.repo.is_dirty().await.unwrap_or(true)
            && let Err(e) = self.repo.checkout(&head).await
        {
            self.fail(&e).await;
            return;
        }
        let revision = self.config.reference.revision(&head);
        let info = self.repo.commit_info(&head).await.ok();
        tracing::info!(%revision, "serving the checkout left by the previous run until the first fetch");
        self.publish(&revision, &head, info).await;
    }

    async fn sync_once(&self) -> SyncReport {
        use std::sync::atomic::Ordering;
        if self.timed_out.swap(false, Ordering::Relaxed) {
            let _tree = self.tree.lock().await;
            self.repo.clear_stale_locks();
        }
        let started = Instant::now();
        let result = self.fetch_and_checkout().await;
        if let Err(e) = &result
            && e.kind == ErrorKind::Timeout
        {
            self.timed_out.store(true, Ordering::Relaxed);
        }
        let elapsed = started.elapsed();
        let now = SystemTime::now();
        match result {
            Ok(synced) => {
                self.metrics.source_fetch("success", elapsed);
                let revision = {
                    let mut store = self.store.write().await;
                    let source = store.source_mut();
                    let revision = source.as_ref().and_then(|s| s.revision.clone());
                    if let Some(s) = source {
                        s.succeeded(synced.commit.clone(), now);
                        self.metrics.observe_source(s, now);
                    }
                    revision
                };
                self.events.recover(
                    &[reason::SOURCE_FETCH_FAILED],
                    NewEvent::normal(
                        reason::SOURCE_FETCH_SUCCEEDED,
                        InvolvedObject::source(),
                        format!(
                            "{} is reachable again; serving {}",
                            self.config.url,
                            revision.as_deref().unwrap_or("?")
                        ),
                    ),
                );
                tracing::debug!(
                    commit = %synced.commit,
                    changed = synced.changed,
                    elapsed_ms = elapsed.as_millis() as u64,
                    "fetched"
                );
                SyncReport {
                    revision,
                    previous: synced.previous,
                    changed: synced.changed,
                    error: None,
                }
            }
            Err(e) => {
                self.metrics.source_fetch("failure", elapsed);
                self.fail(&e).await;
                let revision = {
                    let store = self.store.read().await;
                    store.source().and_then(|s| s.revision.clone())
                };
                SyncReport {
                    revision,
                    previous: None,
                    changed: false,
                    error: Some(e.message),
                }
            }
        }
    }

    /// Records a failure: status, metrics, a (deduplicated) event, the
    /// log.
    async fn fail(&self, e: &GitError) {
        let now = SystemTime::now();
        let (failures, serving) = {
            let mut store = self.store.write().await;
            match store.source_mut() {
                Some(s) => {
                    s.failed(e.kind.reason(), e.message.clone(), now);
                    self.metrics.observe_source(s, now);
                    (s.consecutive_failures, s.revision.clone())
                }
                None => (0, None),
            }
        };
        tracing::warn!(
            reason = e.kind.reason(),
            error = %e.message,
            failures,
            serving = serving.as_deref().unwrap_or("nothing"),
            "git sync failed; what runs is kept"
        );
        self.events.emit(NewEvent::warning(
            reason::SOURCE_FETCH_FAILED,
            InvolvedObject::source(),
            format!(
                "{}: {}; what runs is kept{}",
                e.kind.reason(),
                e.message,
                serving.map(|r| format!(" ({r})")).unwrap_or_default()
            ),
        ));
    }

    async fn fetch_and_checkout(&self) -> Result<Synced, GitError> {
        let config = &self.config;
        let (full_ref, remote) = self.repo.resolve(&config.url, &config.reference).await?;
        let head = self.repo.head().await;
        let dirty = match &head {
            Some(_) => self.repo.is_dirty().await?,
            None => false,
        };
        if head.as_deref() == Some(remote.as_str()) && !dirty {
            return Ok(Synced {
                commit: remote,
                changed: false,
                previous: None,
            });
        }
        let commit = if head.as_deref() == Some(remote.as_str()) {
            // Only local edits to undo: the commit is here already.
            remote
        } else {
            let commit_ref = matches!(config.reference, GitRef::Commit(_));
            self.repo.fetch(&config.url, &full_ref, commit_ref).await?
        };
        if !self.repo.has_folder(&commit, &config.path).await? {
            return Err(GitError {
                kind: ErrorKind::PathNotFound,
                message: format!(
                    "--git-path {:?} is not a folder at commit {commit}",
                    config.path
                ),
            });
        }
        let info = self.repo.commit_info(&commit).await.ok();
        let previous = self.checked_out.borrow().clone();
        {
            let _tree = self.tree.lock().await;
            self.repo.checkout(&commit).await?;
            let revision = config.reference.revision(&commit);
            if head.as_deref() == Some(commit.as_str()) {
                tracing::warn!(%revision, "local changes in the checkout discarded");
                self.events.emit(
                    NewEvent::warning(
                        reason::LOCAL_CHANGES_DISCARDED,
                        InvolvedObject::source(),
                        format!(
                            "tracked files in {} differed from {revision}; they were reset (edit the repository, not the checkout)",
                            self.repo.dir().display()
                        ),
                    )
                    .revision(revision.clone()),
                );
            } else {
                let subject = info.as_ref().map(|i| i.subject.clone()).unwrap_or_default();
                tracing::info!(%revision, previous = previous.as_deref().unwrap_or("none"), %subject, "new revision checked out");
                self.events.emit(
                    NewEvent::normal(
                        reason::NEW_REVISION,
                        InvolvedObject::source(),
                        format!(
                            "checked out {revision} ({subject}){}",
                            previous
                                .as_deref()
                                .map(|p| format!(", was {p}"))
                                .unwrap_or_default()
                        ),
                    )
                    .revision(revision.clone()),
                );
            }
            self.publish(&revision, &commit, info).await;
        }
        Ok(Synced {
            changed: head.as_deref() != Some(commit.as_str()),
            commit,
            previous,
        })
    }

    /// The worktree holds `commit`: the store says so, and the
    /// supervisor is told to rescan. Called with the tree lock held.
    async fn publish(&self, revision: &str, commit: &str, info: Option<git::CommitInfo>) {
        {
            let mut store = self.store.write().await;
            if let Some(s) = store.source_mut() {
                s.checked_out(
                    revision.to_owned(),
                    commit.to_owned(),
                    info.map(|i| (i.time, i.subject)),
                );
                self.metrics.observe_source(s, SystemTime::now());
            }
        }
        self.checked_out.send_replace(Some(revision.to_owned()));
    }
}
