//! `berth agent`'s main loop: bind the API, start the watcher, scan, and
//! rescan on every file signal and every `--resync-interval`, until SIGINT or
//! SIGTERM. Each scan hands what changed to the reconcile workers
//! ([`crate::reconcile`]): changed projects get a `fswatch` trigger, gone
//! ones a `deletion`, and every resync triggers every project (drift
//! repair) and sweeps for projects no folder declares any more.
//!
//! Order matters at start: the listener is bound first (so a bad `--listen`
//! fails fast and `/readyz` can say "not yet"), the watcher starts before
//! the first scan (so no edit slips between the two), and readiness is
//! declared only after that scan.
//!
//! With `--git` there is no watcher: the git syncer ([`crate::gitsync`])
//! checks commits out into `dir` and bumps a watch channel, and each bump
//! is a rescan whose changed projects get a `git` trigger. The first scan
//! waits for a checkout, and scans share a lock with the checkout.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, watch};
use tracing::Instrument;

use crate::api::{self, AppState, Auth};
use crate::listen::{Bound, ListenAddr};
use crate::metrics::Metrics;
use crate::projects::scan::scan;
use crate::reconcile::{self, Host, Reconcilers, Shared};
use crate::state::{Absent, SharedStore, Store};
use crate::watch::{Signal, Watcher};

/// Everything `berth agent` was asked to do.
pub struct Config {
    /// Canonical, so event paths and project dirs compare as prefixes.
    pub dir: PathBuf,
    pub listen: ListenAddr,
    pub resync_interval: Duration,
    pub debounce: Duration,
    /// The environment handed to the loader for interpolation.
    pub environment: BTreeMap<String, String>,
    pub reconcile: reconcile::Options,
    /// The machine the workers act on.
    pub host: Arc<dyn Host>,
    pub auth: Auth,
    /// Where suspensions are kept (under the state root).
    pub suspensions: Option<PathBuf>,
    /// `--git`: the repository `dir` is checked out from. Then there is
    /// no file watcher: a new commit triggers the rescan.
    pub source: Option<crate::gitsync::SourceConfig>,
}

/// What one rescan was started by, for logs.
#[derive(Debug, Clone, Copy)]
enum Trigger {
    Initial,
    Watch,
    Lost,
    Resync,
    /// A new commit was checked out.
    Git,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::Initial => "initial",
            Trigger::Watch => "fswatch",
            Trigger::Lost => "watch-lost",
            Trigger::Resync => "resync",
            Trigger::Git => "git",
        }
    }
}

impl Trigger {
    fn reconcile_trigger(self) -> reconcile::Trigger {
        match self {
            Trigger::Initial => reconcile::Trigger::Initial,
            Trigger::Watch | Trigger::Lost => reconcile::Trigger::FsWatch,
            Trigger::Resync => reconcile::Trigger::Resync,
            Trigger::Git => reconcile::Trigger::Git,
        }
    }
}

struct Ctx {
    root: PathBuf,
    environment: Arc<BTreeMap<String, String>>,
    store: SharedStore,
    metrics: Arc<Metrics>,
    reconcilers: Option<Arc<Reconcilers>>,
    /// Git mode: held by every scan and by the checkout, so a scan never
    /// reads a half-updated tree.
    tree: Option<Arc<tokio::sync::Mutex<()>>>,
}

/// What one rescan changed, for the reconcile workers.
#[derive(Debug, Default)]
struct Changes {
    /// Keys whose revision changed, that appeared, or whose name conflict
    /// started or ended.
    changed: Vec<String>,
    /// Keys whose folder went away (now deleting).
    deleting: Vec<String>,
    /// A project's name changed: the sweep should look for its old one.
    renamed: bool,
}

pub async fn run(config: Config) -> anyhow::Result<()> {
    let suspended = config
        .suspensions
        .as_deref()
        .map(reconcile::load_suspended)
        .unwrap_or_default();
    let mut initial = Store::with_suspended(suspended);
    if let Some(source) = &config.source {
        initial.set_source(source.status(SystemTime::now()));
    }
    let store: SharedStore = Arc::new(tokio::sync::RwLock::new(initial));
    let metrics = Arc::new(if config.source.is_some() {
        Metrics::with_source()
    } else {
        Metrics::new()
    });
    let bound = Bound::bind(&config.listen).await?;
    let shutdown = shutdown_signal();
    let addr = bound.local_addr();
    // On stdout, for scripts and tests that pass port 0 and need the port.
    println!("listening on {addr}");
    tracing::info!(listen = %addr, dir = %config.dir.display(), "agent started");

    // Keep the watcher in scope until the server stops: dropping it would
    // silently end all file events. In git mode the checkout changes
    // only by the syncer's hand, which triggers its own rescan.
    let watched = match config.source {
        // A channel with no sender: the loop sees it closed.
        Some(_) => Ok((None, mpsc::channel(1).1)),
        None => Watcher::start(&config.dir, config.debounce).map(|(w, s)| (Some(w), s)),
    };
    let (watcher, signals) = match watched {
        Ok(watching) => watching,
        Err(err) => {
            tracing::error!(
                dir = %config.dir.display(),
                error = %format!("{err:#}"),
                resync_interval = ?config.resync_interval,
                "cannot watch the directory; changes will only be seen at each resync"
            );
            // A channel with no sender: the loop sees it closed and relies
            // on the resync timer alone.
            (None, mpsc::channel(1).1)
        }
    };
    let reconcilers = Reconcilers::new(Shared {
        store: store.clone(),
        metrics: metrics.clone(),
        host: config.host.clone(),
        options: config.reconcile.clone(),
        suspensions: config.suspensions.clone(),
        events: Arc::new(reconcile::events_log::EventLog::new(
            reconcile::events_log::DEFAULT_CAPACITY,
            Some(metrics.clone()),
        )),
        revisions: Arc::default(),
    });
    let tree = config
        .source
        .as_ref()
        .map(|_| Arc::new(tokio::sync::Mutex::new(())));
    let source = config
        .source
        .clone()
        .zip(tree.clone())
        .map(|(source, tree)| {
            crate::gitsync::start(
                source,
                store.clone(),
                metrics.clone(),
                reconcilers.events().clone(),
                tree,
            )
        });
    let ctx = Arc::new(Ctx {
        root: config.dir.clone(),
        environment: Arc::new(config.environment.clone()),
        store: store.clone(),
        metrics: metrics.clone(),
        reconcilers: Some(reconcilers.clone()),
        tree,
    });
    // Kept until the end, like the file watcher.
    let container_events = config.host.containers_dir().and_then(|dir| {
        reconcilers
            .watch_containers(&dir)
            .inspect_err(|err| {
                tracing::warn!(
                    dir = %dir.display(),
                    error = %format!("{err:#}"),
                    "cannot watch containers; exits and hand-made changes will be seen at each resync"
                );
            })
            .ok()
    });
    let checked_out = source.as_ref().map(|s| s.checked_out.clone());
    let sync = tokio::spawn(sync_loop(ctx, signals, config.resync_interval, checked_out));

    let app = api::router(AppState {
        store,
        metrics,
        control: Some(reconcilers.clone()),
        auth: Arc::new(config.auth),
        source: source.as_ref().map(|s| s.control.clone()),
    });
    let served = bound.serve(app, shutdown).await;
    sync.abort();
    if let Some(source) = source {
        source.task.abort();
    }
    reconcilers.shutdown();
    drop(container_events);
    drop(watcher);
    tracing::info!("agent stopped");
    served
}

/// Scans once, declares readiness, then rescans on every signal and tick,
/// and in git mode after every checkout. In git mode the first scan waits
/// for a checkout (a previous run's, or the first fetch): an empty folder
/// would read as "every project deleted".
async fn sync_loop(
    ctx: Arc<Ctx>,
    mut signals: mpsc::Receiver<Signal>,
    resync: Duration,
    mut checked_out: Option<watch::Receiver<Option<String>>>,
) {
    if let Some(rx) = checked_out.as_mut() {
        tracing::info!("waiting for a checkout of the git source before the first scan");
        if rx.wait_for(Option::is_some).await.is_err() {
            tracing::error!("the git syncer stopped before anything was checked out");
            return;
        }
    }
    let changes = rescan(&ctx, Trigger::Initial).await;
    let projects = {
        let mut store = ctx.store.write().await;
        store.mark_ready();
        store.projects().count()
    };
    tracing::info!(projects, "initial scan done");
    dispatch(&ctx, Trigger::Initial, changes).await;

    let mut ticker = tokio::time::interval(resync);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await; // the first tick is immediate; the scan just ran
    let mut watching = true;
    loop {
        let trigger = tokio::select! {
            signal = signals.recv(), if watching => match signal {
                Some(first) => {
                    // Coalesce whatever else is already queued into this scan.
                    let mut batch = vec![first];
                    while let Ok(more) = signals.try_recv() {
                        batch.push(more);
                    }
                    note_signals(&ctx, &batch)
                }
                None => {
                    watching = false;
                    continue;
                }
            },
            _ = ticker.tick() => Trigger::Resync,
            changed = async {
                match checked_out.as_mut() {
                    Some(rx) => rx.changed().await,
                    None => std::future::pending().await,
                }
            }, if checked_out.is_some() => match changed {
                Ok(()) => Trigger::Git,
                Err(_) => {
                    tracing::error!("the git syncer stopped; only resyncs rescan from now on");
                    checked_out = None;
                    continue;
                }
            },
        };
        let changes = rescan(&ctx, trigger).await;
        dispatch(&ctx, trigger, changes).await;
    }
}

/// Hands a scan's changes to the workers: at start and at each resync
/// every project is reconciled (level-triggered drift repair); after file
/// events only what changed. Deletions always get their own trigger.
async fn dispatch(ctx: &Ctx, trigger: Trigger, changes: Changes) {
    let Some(reconcilers) = &ctx.reconcilers else {
        return;
    };
    let keys = match trigger {
        Trigger::Initial | Trigger::Resync => ctx.store.read().await.keys(),
        Trigger::Watch | Trigger::Lost | Trigger::Git => {
            let mut keys = changes.changed;
            // A file event may be inside a build context, which a
            // project's revision does not cover: projects that build
            // check their images again (a no-op plan when nothing they
            // are built from changed).
            let store = ctx.store.read().await;
            for p in store.projects() {
                let builds = p
                    .model()
                    .is_some_and(|m| m.services.values().any(|s| s.build.is_some()));
                if builds && !keys.contains(&p.key) {
                    keys.push(p.key.clone());
                }
            }
            keys
        }
    };
    for key in &changes.deleting {
        reconcilers.trigger(key, reconcile::Trigger::Deletion);
    }
    for key in keys.iter().filter(|k| !changes.deleting.contains(k)) {
        reconcilers.trigger(key, trigger.reconcile_trigger());
    }
    let sweep = matches!(trigger, Trigger::Initial | Trigger::Resync)
        || changes.renamed
        || !changes.deleting.is_empty();
    if sweep {
        reconcilers.sweep();
    }
}

fn note_signals(ctx: &Ctx, batch: &[Signal]) -> Trigger {
    let mut trigger = Trigger::Watch;
    for signal in batch {
        match signal {
            Signal::Changed { events } => ctx.metrics.watch_events(*events as u64),
            Signal::Lost { reason } => {
                tracing::warn!(%reason, "file watcher lost track; rescanning everything");
                trigger = Trigger::Lost;
            }
        }
    }
    trigger
}

/// Discovers and reloads what changed, off the async threads, then applies
/// the results to the store in one write.
async fn rescan(ctx: &Ctx, trigger: Trigger) -> Changes {
    let span = tracing::debug_span!("rescan", trigger = trigger.as_str());
    async {
        let mut changes = Changes::default();
        // Held until the store has the scan's results, so the revision
        // checked out and the files read agree.
        let _tree = match &ctx.tree {
            Some(tree) => Some(tree.lock().await),
            None => None,
        };
        let known = ctx.store.read().await.known();
        let root = ctx.root.clone();
        let environment = ctx.environment.clone();
        let report =
            match tokio::task::spawn_blocking(move || scan(&root, &known, &environment)).await {
                Ok(report) => report,
                Err(err) => {
                    tracing::error!(error = %err, "scan task failed");
                    return changes;
                }
            };
        let now = SystemTime::now();
        let mut store = ctx.store.write().await;
        let conflicted_before = conflicted(&store);
        for result in report.loaded {
            let key = result.source.key.clone();
            let first_error = result
                .outcome
                .as_ref()
                .err()
                .and_then(|d| d.0.first())
                .map(ToString::to_string);
            let error_count = result
                .outcome
                .as_ref()
                .err()
                .map(|d| d.0.len())
                .unwrap_or(0);
            let load_ms = result.duration.as_millis() as u64;
            let name_before = store.get(&key).map(|p| p.name.clone());
            let applied = store.apply_load(result, now);
            ctx.metrics.load(&applied);
            if applied.generation_changed {
                changes.changed.push(key.clone());
            }
            changes.renamed |= name_before.is_some_and(|n| n != applied.name);
            let project = store.get(&key);
            let generation = project.map(|p| p.generation).unwrap_or(0);
            let services = project
                .and_then(|p| p.model())
                .map(|m| m.services.len())
                .unwrap_or(0);
            match first_error {
                // Logged here, where the failure is handled, and nowhere else.
                Some(first_error) => tracing::warn!(
                    project = %key,
                    name = %applied.name,
                    generation,
                    errors = error_count,
                    %first_error,
                    kept_last_good = services > 0,
                    load_ms,
                    "project spec invalid"
                ),
                None => tracing::info!(
                    project = %key,
                    name = %applied.name,
                    generation,
                    services,
                    created = applied.created,
                    load_ms,
                    "project loaded"
                ),
            }
        }
        for absent in store.mark_absent(&report.present, now) {
            match absent {
                Absent::Forgotten { key, name } => {
                    tracing::info!(project = %key, %name, "project removed (it never loaded: nothing to tear down)");
                }
                Absent::Returned { key } => {
                    tracing::info!(project = %key, "project folder is back; not tearing it down");
                    changes.changed.push(key);
                }
                Absent::Deleting { key, name } => {
                    tracing::warn!(project = %key, %name, "project folder gone; it will be torn down after the grace period unless it comes back");
                    changes.deleting.push(key);
                }
            }
        }
        store.tag_source_revision(&report.present);
        store.settle(now);
        // A conflict that starts or ends changes what the project's worker
        // may do, without any change of its own files.
        for key in conflicted_before.symmetric_difference(&conflicted(&store)) {
            changes.changed.push(key.clone());
        }
        ctx.metrics.observe(&store);
        changes
    }
    .instrument(span)
    .await
}

fn conflicted(store: &Store) -> std::collections::BTreeSet<String> {
    store
        .projects()
        .filter(|p| p.conflict.is_some())
        .map(|p| p.key.clone())
        .collect()
}

/// SIGINT and SIGTERM handlers, installed when this is called: before the
/// agent says it is listening, so a signal sent as soon as it answers is
/// always a clean shutdown (axum polls the shutdown future only later, from
/// a task of its own). If a handler cannot be installed the agent keeps
/// running (it can still be killed), and says so once.
fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let install = |kind: SignalKind, name: &'static str| match signal(kind) {
        Ok(stream) => Some(stream),
        Err(err) => {
            tracing::warn!(error = %err, signal = name, "cannot listen for the signal");
            None
        }
    };
    let interrupt = install(SignalKind::interrupt(), "SIGINT");
    let terminate = install(SignalKind::terminate(), "SIGTERM");
    async move {
        let wait = |stream: Option<tokio::signal::unix::Signal>| async move {
            match stream {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = wait(interrupt) => tracing::info!(signal = "SIGINT", "shutting down"),
            () = wait(terminate) => tracing::info!(signal = "SIGTERM", "shutting down"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(root: &std::path::Path) -> Arc<Ctx> {
        Arc::new(Ctx {
            root: root.canonicalize().unwrap(),
            environment: Arc::new(BTreeMap::new()),
            store: Arc::new(tokio::sync::RwLock::new(Store::default())),
            metrics: Arc::new(Metrics::new()),
            reconcilers: None,
            tree: None,
        })
    }

    async fn wait_until(ctx: &Ctx, what: &str, check: impl Fn(&Store) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        while !check(&*ctx.store.read().await) {
            assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn without_a_watcher_the_periodic_resync_still_sees_changes() {
        let tmp = tempfile::tempdir().unwrap();
        let ctx = ctx(tmp.path());
        // A closed channel: what the loop gets when the watcher could not start.
        let (_, signals) = mpsc::channel(1);
        let task = tokio::spawn(sync_loop(
            ctx.clone(),
            signals,
            Duration::from_millis(100),
            None,
        ));
        wait_until(&ctx, "ready", Store::is_ready).await;
        assert_eq!(ctx.store.read().await.projects().count(), 0);

        std::fs::create_dir(tmp.path().join("shop")).unwrap();
        std::fs::write(tmp.path().join("shop/compose.yaml"), "services: {}\n").unwrap();
        wait_until(&ctx, "shop to appear", |s| s.get("shop").is_some()).await;

        std::fs::write(tmp.path().join("shop/compose.yaml"), "services: {a: {}}\n").unwrap();
        wait_until(&ctx, "generation 2", |s| {
            s.get("shop").is_some_and(|p| p.generation == 2)
        })
        .await;
        task.abort();
    }

    #[tokio::test]
    async fn signals_trigger_a_rescan_and_count_events() {
        let tmp = tempfile::tempdir().unwrap();
        let ctx = ctx(tmp.path());
        let (tx, signals) = mpsc::channel(8);
        // A resync far away: only the signals can cause the rescans here.
        let task = tokio::spawn(sync_loop(
            ctx.clone(),
            signals,
            Duration::from_secs(3600),
            None,
        ));
        wait_until(&ctx, "ready", Store::is_ready).await;

        std::fs::write(tmp.path().join("compose.yaml"), "services: {}\n").unwrap();
        tx.send(Signal::Changed { events: 2 }).await.unwrap();
        wait_until(&ctx, "root project", |s| s.get(".").is_some()).await;
        assert!(
            ctx.metrics
                .render()
                .unwrap()
                .contains("berth_watch_events_total 2\n")
        );

        std::fs::remove_file(tmp.path().join("compose.yaml")).unwrap();
        tx.send(Signal::Lost {
            reason: "event queue overflow".into(),
        })
        .await
        .unwrap();
        // It had a model: marked for teardown (by a worker, absent here).
        wait_until(&ctx, "root project deleting", |s| {
            s.get(".").is_some_and(|p| p.deleting_since.is_some())
        })
        .await;
        task.abort();
    }
}
