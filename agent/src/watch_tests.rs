//! Event filtering, and the live watcher on a temp dir.

use std::path::PathBuf;
use std::time::Instant;

use notify_debouncer_full::notify::event::{CreateKind, DataChange, ModifyKind, RenameMode};
use notify_debouncer_full::notify::{Error, Event};

use super::*;

fn event(kind: EventKind, paths: &[&str]) -> DebouncedEvent {
    let mut e = Event::new(kind);
    for p in paths {
        e = e.add_path(PathBuf::from(p));
    }
    DebouncedEvent::new(e, std::time::Instant::now())
}

const ROOT: &str = "/srv/p";
const WRITE: EventKind = EventKind::Modify(ModifyKind::Data(DataChange::Any));

#[test]
fn editor_temp_files_are_recognised() {
    for name in [
        ".compose.yaml.swp",
        ".compose.yaml.swx",
        "compose.yaml~",
        ".#compose.yaml",
        "#compose.yaml#",
        "4913",
        "compose.yaml.tmp",
        "compose.yaml___jb_tmp___",
    ] {
        assert!(is_editor_temp_file(name), "{name}");
    }
    for name in ["compose.yaml", ".env", "4914", "app.env", "tmp"] {
        assert!(!is_editor_temp_file(name), "{name}");
    }
}

#[test]
fn paths_inside_git_and_skipped_folders_are_noise() {
    let root = Path::new(ROOT);
    let relevant = |p: &str| is_relevant_path(root, Path::new(p));
    assert!(relevant("/srv/p/shop/compose.yaml"));
    assert!(relevant("/srv/p/shop/.env"));
    assert!(relevant("/srv/p/.env"));
    assert!(relevant("/srv/p/newdir"));
    assert!(relevant("/srv/p"));
    assert!(!relevant("/srv/p/.git"));
    assert!(!relevant("/srv/p/.git/objects/ab/cdef"));
    assert!(!relevant("/srv/p/shop/.git/index.lock"));
    assert!(!relevant("/srv/p/web/node_modules/x/compose.yaml"));
    assert!(!relevant("/srv/p/shop/.compose.yaml.swp"));
    assert!(!relevant("/srv/p/shop/4913"));
}

#[test]
fn atomic_rename_onto_a_compose_file_is_relevant() {
    let root = Path::new(ROOT);
    let rename = event(
        EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
        &["/srv/p/shop/compose.yaml.tmp", "/srv/p/shop/compose.yaml"],
    );
    assert_eq!(
        classify(root, Ok(vec![rename])),
        Some(Signal::Changed { events: 1 })
    );
}

#[test]
fn batches_of_noise_send_nothing() {
    let root = Path::new(ROOT);
    let batch = vec![
        event(WRITE, &["/srv/p/.git/HEAD"]),
        event(WRITE, &["/srv/p/shop/.compose.yaml.swp"]),
        event(
            EventKind::Access(AccessKind::Open(AccessMode::Any)),
            &["/srv/p/shop/compose.yaml"],
        ),
        event(
            EventKind::Access(AccessKind::Close(AccessMode::Read)),
            &["/srv/p/shop/compose.yaml"],
        ),
    ];
    assert_eq!(classify(root, Ok(batch)), None);
}

#[test]
fn relevant_events_are_counted() {
    let root = Path::new(ROOT);
    let batch = vec![
        event(WRITE, &["/srv/p/shop/compose.yaml"]),
        event(WRITE, &["/srv/p/.git/HEAD"]),
        event(EventKind::Create(CreateKind::Folder), &["/srv/p/blog"]),
        event(
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            &["/srv/p/shop/.env"],
        ),
    ];
    assert_eq!(
        classify(root, Ok(batch)),
        Some(Signal::Changed { events: 3 })
    );
}

#[test]
fn overflow_and_errors_mean_lost_track() {
    let root = Path::new(ROOT);
    let overflow = DebouncedEvent::new(
        Event::new(EventKind::Other).set_flag(notify_debouncer_full::notify::event::Flag::Rescan),
        std::time::Instant::now(),
    );
    assert_eq!(
        classify(root, Ok(vec![overflow])),
        Some(Signal::Lost {
            reason: "event queue overflow".into()
        })
    );
    let lost = classify(root, Err(vec![Error::generic("inotify broke")]));
    assert!(matches!(lost, Some(Signal::Lost { reason }) if reason.contains("inotify broke")));
}

async fn next_signal(rx: &mut mpsc::Receiver<Signal>, within: Duration) -> Option<Signal> {
    tokio::time::timeout(within, rx.recv()).await.ok().flatten()
}

/// Drains what earlier steps left, so the next step sees only its own.
async fn settle(rx: &mut mpsc::Receiver<Signal>) {
    while next_signal(rx, Duration::from_millis(400)).await.is_some() {}
}

#[tokio::test]
async fn live_watcher_reports_saves_within_a_second_and_ignores_swap_files() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().canonicalize().unwrap();
    let (watcher, mut rx) = Watcher::start(&root, Duration::from_millis(100)).unwrap();

    // A new project folder with a compose file.
    let started = Instant::now();
    std::fs::create_dir(root.join("shop")).unwrap();
    std::fs::write(root.join("shop/compose.yaml"), "services: {}\n").unwrap();
    let signal = next_signal(&mut rx, Duration::from_secs(1)).await;
    assert!(
        matches!(signal, Some(Signal::Changed { .. })),
        "no signal within 1s: {signal:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    settle(&mut rx).await;

    // Swap files and .git churn alone send nothing.
    std::fs::write(root.join("shop/.compose.yaml.swp"), "x").unwrap();
    std::fs::create_dir_all(root.join(".git/objects")).unwrap();
    std::fs::write(root.join(".git/objects/abc"), "x").unwrap();
    std::fs::write(root.join("shop/4913"), "").unwrap();
    std::fs::remove_file(root.join("shop/4913")).unwrap();
    assert_eq!(next_signal(&mut rx, Duration::from_millis(600)).await, None);

    // An atomic-rename save is seen.
    std::fs::write(root.join("shop/compose.yaml.tmp"), "services: {a: {}}\n").unwrap();
    std::fs::rename(
        root.join("shop/compose.yaml.tmp"),
        root.join("shop/compose.yaml"),
    )
    .unwrap();
    let signal = next_signal(&mut rx, Duration::from_secs(1)).await;
    assert!(matches!(signal, Some(Signal::Changed { .. })), "{signal:?}");

    // Dropping the watcher ends the stream.
    drop(watcher);
    settle(&mut rx).await;
    assert_eq!(rx.recv().await, None);
}
