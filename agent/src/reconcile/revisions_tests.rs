#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;

use super::*;

fn revision(number: u64, state: RevisionState, applied_at: Option<&str>) -> Revision {
    let model = Project {
        name: "shop".into(),
        ..Project::default()
    };
    Revision {
        number,
        created_at: "2026-01-01T00:00:00.000Z".into(),
        updated_at: "2026-01-01T00:00:00.000Z".into(),
        last_applied_at: applied_at.map(str::to_owned),
        state,
        message: String::new(),
        rolled_back_to: None,
        reconciliations: 1,
        duration_ms: None,
        source: Source {
            digest: format!("sha256:{number}"),
            dir: "/srv/shop".into(),
            files: vec![],
            commit: None,
            revision: None,
        },
        file_digests: BTreeMap::from([("/srv/shop/app.conf".to_owned(), "sha256:a".to_owned())]),
        config_hashes: BTreeMap::new(),
        actions: vec![],
        model,
    }
}

#[test]
fn revisions_are_bounded_and_survive_a_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = RevisionStore::open(tmp.path(), "shop", 3).unwrap();
    assert_eq!(store.next_number(), 1);
    for n in 1..=5 {
        let at = format!("2026-01-01T00:00:0{n}.000Z");
        store
            .insert(revision(n, RevisionState::Applied, Some(&at)))
            .unwrap();
    }
    let numbers: Vec<u64> = store.list().map(|r| r.number).collect();
    assert_eq!(numbers, [5, 4, 3]);
    let dir = tmp.path().join("shop/revisions");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(files, ["3.json", "4.json", "5.json"]);
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert_eq!(
        std::fs::metadata(dir.join("5.json"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );

    let again = RevisionStore::open(tmp.path(), "shop", 3).unwrap();
    assert_eq!(again.get(4), store.get(4));
    assert_eq!(again.next_number(), 6);
    assert_eq!(again.in_place().unwrap().number, 5);
}

#[test]
fn the_revision_in_place_is_never_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = RevisionStore::open(tmp.path(), "shop", 2).unwrap();
    store
        .insert(revision(
            1,
            RevisionState::Applied,
            Some("2026-01-01T00:00:01.000Z"),
        ))
        .unwrap();
    store
        .insert(revision(2, RevisionState::RolledBack, None))
        .unwrap();
    store
        .insert(revision(3, RevisionState::RolledBack, None))
        .unwrap();
    let numbers: Vec<u64> = store.list().map(|r| r.number).collect();
    assert_eq!(numbers, [3, 1], "1 runs: kept, 2 dropped");
}

#[test]
fn a_rollback_puts_an_older_revision_in_place() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = RevisionStore::open(tmp.path(), "shop", 10).unwrap();
    store
        .insert(revision(
            1,
            RevisionState::Applied,
            Some("2026-01-01T00:00:01.000Z"),
        ))
        .unwrap();
    store
        .insert(revision(
            2,
            RevisionState::Applied,
            Some("2026-01-01T00:00:02.000Z"),
        ))
        .unwrap();
    assert_eq!(store.in_place().unwrap().number, 2);
    assert_eq!(store.previous_good(2).unwrap().number, 1);
    store
        .update(1, |r| {
            r.last_applied_at = Some("2026-01-01T00:00:03.000Z".into());
        })
        .unwrap();
    assert_eq!(store.in_place().unwrap().number, 1);
    assert!(store.update(9, |_| {}).unwrap().is_none());
}

#[test]
fn unreadable_and_stray_files_are_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shop/revisions");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("1.json"), "{not json").unwrap();
    std::fs::write(dir.join(".2.json.tmp.77"), "{}").unwrap();
    let mut store = RevisionStore::open(tmp.path(), "shop", 10).unwrap();
    assert_eq!(store.list().count(), 0);
    store
        .insert(revision(1, RevisionState::Progressing, None))
        .unwrap();
    let read = RevisionStore::open(tmp.path(), "shop", 10).unwrap();
    assert_eq!(read.get(1).unwrap().state, RevisionState::Progressing);
    assert!(RevisionStore::open(tmp.path(), "../x", 10).is_err());
}

#[test]
fn changed_config_files_are_named() {
    let r = revision(1, RevisionState::Applied, None);
    let same = BTreeMap::from([("/srv/shop/app.conf".to_owned(), "sha256:a".to_owned())]);
    assert!(r.changed_files(&same).is_empty());
    let edited = BTreeMap::from([("/srv/shop/app.conf".to_owned(), "sha256:b".to_owned())]);
    assert_eq!(r.changed_files(&edited), ["/srv/shop/app.conf"]);
    assert_eq!(r.changed_files(&BTreeMap::new()), ["/srv/shop/app.conf"]);
}

#[test]
fn a_model_round_trips_through_the_record() {
    let tmp = tempfile::tempdir().unwrap();
    let model = crate::reconcile::testing::model(
        "shop",
        "services:\n  web:\n    image: busybox\n    environment: [A=1]\n    healthcheck:\n      test: [CMD, 'true']\n      interval: 2s\n",
    );
    let mut r = revision(1, RevisionState::Applied, None);
    r.model = model.clone();
    let mut store = RevisionStore::open(tmp.path(), "shop", 10).unwrap();
    store.insert(r).unwrap();
    let read = RevisionStore::open(tmp.path(), "shop", 10).unwrap();
    assert_eq!(read.get(1).unwrap().model, model);
}

#[test]
fn pins_are_saved_and_cleared() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(load_pin(tmp.path(), "shop").is_none());
    let pin = Pin {
        number: 2,
        files_digest: "sha256:f".into(),
        at: "t".into(),
    };
    save_pin(tmp.path(), "shop", Some(&pin)).unwrap();
    assert_eq!(load_pin(tmp.path(), "shop"), Some(pin));
    save_pin(tmp.path(), "shop", None).unwrap();
    assert!(load_pin(tmp.path(), "shop").is_none());
    save_pin(tmp.path(), "shop", None).unwrap();
}

#[test]
fn a_rolled_back_revision_pinned_by_hand_is_in_place() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = RevisionStore::open(tmp.path(), "shop", 10).unwrap();
    store
        .insert(revision(
            1,
            RevisionState::Applied,
            Some("2026-01-01T00:00:01.000Z"),
        ))
        .unwrap();
    store
        .insert(revision(2, RevisionState::RolledBack, None))
        .unwrap();
    assert_eq!(store.in_place().unwrap().number, 1);
    store
        .update(2, |r| {
            r.last_applied_at = Some("2026-01-01T00:00:09.000Z".into());
        })
        .unwrap();
    assert_eq!(store.in_place().unwrap().number, 2);
    assert_eq!(store.previous_good(2).unwrap().number, 1);
}
