#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, UNIX_EPOCH};

use super::*;

fn at(s: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000 + s)
}

fn shop() -> InvolvedObject {
    InvolvedObject::project("shop")
}

fn web() -> InvolvedObject {
    InvolvedObject::container("shop", Some("web"), "shop-web-1")
}

/// One step of a table: an event in, or a recovery of reasons.
enum Step {
    Warn(&'static str, InvolvedObject, &'static str),
    Note(&'static str, InvolvedObject),
    Recover(&'static [&'static str], InvolvedObject),
}

/// Runs `steps` and returns `(type, reason, object kind, count)` of the
/// ring, oldest first.
fn run(steps: Vec<Step>) -> Vec<(EventType, String, &'static str, u64)> {
    let mut ring = Ring::new(100);
    for (i, step) in steps.into_iter().enumerate() {
        let now = at(i as u64);
        match step {
            Step::Warn(reason, object, message) => {
                ring.record(NewEvent::warning(reason, object, message.into()), now);
            }
            Step::Note(reason, object) => {
                ring.record(NewEvent::normal(reason, object, String::new()), now);
            }
            Step::Recover(reasons, object) => {
                if ring.clear(reasons, &object) {
                    ring.record(NewEvent::normal("Recovered", object, String::new()), now);
                }
            }
        }
    }
    ring.since(&Since::All, None)
        .into_iter()
        .map(|e| (e.kind, e.reason, e.involved_object.kind, e.count))
        .collect()
}

use EventType::{Normal, Warning};
use Step::*;

#[test]
fn dedupe_table() {
    type Row = (EventType, &'static str, &'static str, u64);
    let cases: Vec<(&str, Vec<Step>, Vec<Row>)> = vec![
        (
            "a repeating warning is one event with a count",
            vec![
                Warn("ManifestInvalid", shop(), "line 3"),
                Warn("ManifestInvalid", shop(), "line 3"),
                Warn("ManifestInvalid", shop(), "line 4"),
            ],
            vec![(Warning, "ManifestInvalid", "Project", 3)],
        ),
        (
            "recovery emits one Normal event and clears the suppression",
            vec![
                Warn("ManifestInvalid", shop(), "x"),
                Warn("ManifestInvalid", shop(), "x"),
                Recover(&["ManifestInvalid"], shop()),
                Recover(&["ManifestInvalid"], shop()),
                Warn("ManifestInvalid", shop(), "x"),
            ],
            vec![
                (Warning, "ManifestInvalid", "Project", 2),
                (Normal, "Recovered", "Project", 1),
                (Warning, "ManifestInvalid", "Project", 1),
            ],
        ),
        (
            "a recovery with nothing active says nothing",
            vec![Recover(&["ManifestInvalid"], shop())],
            vec![],
        ),
        (
            "other reasons and other objects are separate keys",
            vec![
                Warn("ContainerRestarted", web(), "a"),
                Warn("ManifestInvalid", shop(), "b"),
                Warn("ContainerRestarted", shop(), "c"),
                Warn("ContainerRestarted", web(), "d"),
            ],
            vec![
                (Warning, "ManifestInvalid", "Project", 1),
                (Warning, "ContainerRestarted", "Project", 1),
                (Warning, "ContainerRestarted", "Container", 2),
            ],
        ),
        (
            "Normal events are never merged",
            vec![
                Note("RevisionApplied", shop()),
                Note("RevisionApplied", shop()),
            ],
            vec![
                (Normal, "RevisionApplied", "Project", 1),
                (Normal, "RevisionApplied", "Project", 1),
            ],
        ),
        (
            "recovering one reason leaves another active",
            vec![
                Warn("HealthGateFailed", shop(), "a"),
                Warn("ReconciliationFailed", shop(), "b"),
                Recover(&["ReconciliationFailed"], shop()),
                Warn("HealthGateFailed", shop(), "a"),
            ],
            vec![
                (Warning, "ReconciliationFailed", "Project", 1),
                (Normal, "Recovered", "Project", 1),
                (Warning, "HealthGateFailed", "Project", 2),
            ],
        ),
    ];
    for (name, steps, want) in cases {
        let got = run(steps);
        let got: Vec<(EventType, &str, &str, u64)> = got
            .iter()
            .map(|(t, r, k, c)| (*t, r.as_str(), *k, *c))
            .collect();
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn a_repeat_moves_the_event_forward_for_since() {
    let mut ring = Ring::new(10);
    let (first, _) = ring.record(NewEvent::warning("Crash", web(), "1".into()), at(0));
    assert_eq!(first, Recorded::New(1));
    ring.record(NewEvent::normal("Other", shop(), String::new()), at(1));
    let (again, e) = ring.record(NewEvent::warning("Crash", web(), "2".into()), at(2));
    assert_eq!(again, Recorded::Repeat { id: 3, count: 2 });
    assert_eq!(e.first_timestamp, rfc3339(at(0)));
    assert_eq!(e.timestamp, rfc3339(at(2)));
    assert_eq!(e.message, "2");
    let after: Vec<u64> = ring
        .since(&Since::Id(2), None)
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(after, [3]);
    let by_time = Since::parse(Some(&rfc3339(at(1)))).unwrap();
    assert_eq!(ring.since(&by_time, None).len(), 2);
    assert!(ring.since(&Since::All, Some("other")).is_empty());
    assert!(Since::parse(Some("yesterday")).is_err());
    assert_eq!(Since::parse(Some("")).unwrap(), Since::All);
}

#[test]
fn the_ring_is_bounded_and_forgets_suppression_of_what_fell_out() {
    let mut ring = Ring::new(2);
    ring.record(NewEvent::warning("Crash", web(), "1".into()), at(0));
    ring.record(NewEvent::normal("A", shop(), String::new()), at(1));
    ring.record(NewEvent::normal("B", shop(), String::new()), at(2));
    assert_eq!(ring.len(), 2);
    assert!(!ring.is_active("Crash", &web()));
    let (r, _) = ring.record(NewEvent::warning("Crash", web(), "2".into()), at(3));
    assert!(matches!(r, Recorded::New(_)));
}

#[tokio::test]
async fn the_log_streams_new_events_only() {
    let log = EventLog::new(10, None);
    let mut rx = log.subscribe();
    log.emit(NewEvent::warning("Crash", web(), "1".into()));
    log.emit(NewEvent::warning("Crash", web(), "2".into()));
    assert!(log.recover(
        &["Crash"],
        NewEvent::normal("Recovered", web(), String::new())
    ));
    assert_eq!(rx.recv().await.unwrap().reason, "Crash");
    assert_eq!(rx.recv().await.unwrap().reason, "Recovered");
    assert!(rx.try_recv().is_err());
}
