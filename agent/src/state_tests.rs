//! State transitions: generations, last-good-model retention, conditions
//! and name conflicts.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth_spec::compose::Loaded;
use berth_spec::compose::model::{Project, Service};
use berth_spec::diag::{Diagnostic, Diagnostics};

use super::*;
use crate::projects::ProjectSource;

pub(crate) fn t(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
}

// `..Default::default()` is needless today but keeps this compiling
// as the model's Service gains fields.
#[allow(clippy::needless_update)]
pub(crate) fn project(name: &str, services: &[(&str, Option<&str>)]) -> Project {
    let mut p = Project {
        name: name.into(),
        ..Default::default()
    };
    for (svc, image) in services {
        p.services.insert(
            (*svc).into(),
            Service {
                image: image.map(str::to_owned),
                ..Default::default()
            },
        );
    }
    p
}

pub(crate) fn source(key: &str) -> ProjectSource {
    let dir = Path::new("/srv/projects").join(key);
    ProjectSource {
        key: key.into(),
        files: vec![dir.join("compose.yaml")],
        dir,
    }
}

pub(crate) fn ok(key: &str, revision: &str, project: Project) -> LoadResult {
    let src = source(key);
    LoadResult {
        tracked: src.files.clone(),
        outcome: Ok(Loaded {
            project,
            inputs: src.files.clone(),
            warnings: vec![Diagnostic::warning("`version` is obsolete").key("version")],
            environment: Default::default(),
        }),
        source: src,
        revision: revision.into(),
        duration: Duration::from_millis(1),
    }
}

pub(crate) fn failed(key: &str, revision: &str) -> LoadResult {
    let src = source(key);
    let err = Diagnostic::error("mapping values are not allowed here")
        .in_file(src.files[0].clone())
        .line_col(3, 9)
        .key("services.web");
    LoadResult {
        tracked: src.files.clone(),
        outcome: Err(Diagnostics(vec![err])),
        source: src,
        revision: revision.into(),
        duration: Duration::from_millis(1),
    }
}

#[test]
fn first_good_load_is_generation_one_and_pending_until_reconciled() {
    let mut store = Store::default();
    assert!(!store.is_ready());
    let applied = store.apply_load(ok("shop", "r1", project("shop", &[("web", None)])), t(0));
    store.settle(t(0));
    assert_eq!(
        applied,
        Applied {
            key: "shop".into(),
            name: "shop".into(),
            ok: true,
            created: true,
            generation_changed: true
        }
    );
    let p = store.get("shop").unwrap();
    assert_eq!(p.generation, 1);
    assert_eq!(p.revision, "r1");
    assert_eq!(p.phase(), Phase::Pending);
    assert_eq!(p.warnings().len(), 1);
    assert_eq!(p.errors().count(), 0);
    assert_eq!(p.created_at, t(0));
    assert_eq!(p.last_loaded_at, t(0));
    assert!(p.spec_valid.status.is_true());
    assert_eq!(p.spec_valid.reason, reason::LOADED);
    assert_eq!(p.spec_valid.last_transition_time, t(0));
    assert_eq!(p.spec_valid.observed_generation, 1);
}

#[test]
fn same_revision_keeps_generation() {
    let mut store = Store::default();
    store.apply_load(ok("shop", "r1", project("shop", &[])), t(0));
    let applied = store.apply_load(ok("shop", "r1", project("shop", &[])), t(5));
    store.settle(t(5));
    assert!(!applied.generation_changed);
    assert!(!applied.created);
    let p = store.get("shop").unwrap();
    assert_eq!(p.generation, 1);
    assert_eq!(p.last_loaded_at, t(5));
}

#[test]
fn failed_load_keeps_the_last_good_model_and_shows_the_error() {
    let mut store = Store::default();
    store.apply_load(
        ok("shop", "r1", project("shop", &[("web", Some("nginx"))])),
        t(0),
    );
    store.settle(t(0));
    let applied = store.apply_load(failed("shop", "r2"), t(10));
    store.settle(t(10));
    assert!(!applied.ok);
    assert!(applied.generation_changed);
    // The name stays the last good one, so lookups keep working.
    assert_eq!(applied.name, "shop");

    let p = store.get("shop").unwrap();
    assert_eq!(p.generation, 2);
    assert_eq!(p.revision, "r2");
    assert_eq!(p.phase(), Phase::Failed);
    let errors: Vec<_> = p.errors().map(|d| d.to_string()).collect();
    assert_eq!(
        errors,
        vec![
            "/srv/projects/shop/compose.yaml:3:9: services.web: mapping values are not allowed here"
        ]
    );
    let good = p.last_good.as_ref().unwrap();
    assert_eq!(good.revision, "r1");
    assert_eq!(good.generation, 1);
    assert_eq!(
        good.project.services.keys().collect::<Vec<_>>(),
        vec!["web"]
    );
    assert_eq!(p.warnings().len(), 1, "the good model's warnings stay");
    assert!(!p.spec_valid.status.is_true());
    assert_eq!(p.spec_valid.reason, reason::VALIDATION_FAILED);
    assert_eq!(p.spec_valid.message, errors[0]);
    assert_eq!(p.spec_valid.last_transition_time, t(10));
    assert_eq!(p.spec_valid.observed_generation, 2);

    // Fixing it replaces the model and clears the errors.
    store.apply_load(ok("shop", "r3", project("shop", &[("api", None)])), t(20));
    store.settle(t(20));
    let p = store.get("shop").unwrap();
    assert_eq!(p.generation, 3);
    assert_eq!(p.phase(), Phase::Pending);
    assert_eq!(p.errors().count(), 0);
    assert_eq!(
        p.model().unwrap().services.keys().collect::<Vec<_>>(),
        vec!["api"]
    );
    assert!(p.spec_valid.status.is_true());
    assert_eq!(p.spec_valid.last_transition_time, t(20));
}

#[test]
fn transition_time_moves_only_when_status_flips() {
    let mut store = Store::default();
    store.apply_load(failed("shop", "r1"), t(0));
    store.settle(t(0));
    assert_eq!(
        store.get("shop").unwrap().spec_valid.last_transition_time,
        t(0)
    );
    // Still broken, differently: same status, same transition time.
    store.apply_load(failed("shop", "r2"), t(30));
    store.settle(t(30));
    let p = store.get("shop").unwrap();
    assert!(!p.spec_valid.status.is_true());
    assert_eq!(p.spec_valid.last_transition_time, t(0));
    assert_eq!(p.spec_valid.observed_generation, 2);
}

#[test]
fn never_loaded_project_uses_the_folder_name_and_has_no_model() {
    let mut store = Store::default();
    let applied = store.apply_load(failed("apps/My_Blog", "r1"), t(0));
    store.settle(t(0));
    assert_eq!(applied.name, "my_blog");
    let p = store.get("apps/My_Blog").unwrap();
    assert!(p.model().is_none());
    assert!(p.warnings().is_empty());
    assert_eq!(p.phase(), Phase::Failed);
    assert_eq!(p.generation, 1);
}

#[test]
fn duplicate_names_conflict_on_both_and_clear_when_fixed() {
    let mut store = Store::default();
    store.apply_load(ok("a", "r1", project("same", &[])), t(0));
    store.apply_load(ok("b", "r1", project("same", &[])), t(0));
    store.apply_load(ok("c", "r1", project("other", &[])), t(0));
    store.settle(t(0));
    for (key, other) in [("a", "b"), ("b", "a")] {
        let p = store.get(key).unwrap();
        assert_eq!(p.phase(), Phase::Failed);
        let conflict = p.conflict.as_ref().unwrap();
        assert_eq!(
            conflict.message,
            format!("project name \"same\" is also used by {other}")
        );
        assert_eq!(
            conflict.file,
            PathBuf::from(format!("/srv/projects/{key}/compose.yaml"))
        );
        assert_eq!(p.spec_valid.reason, reason::NAME_CONFLICT);
        assert!(p.load_errors.is_empty());
    }
    assert_eq!(store.get("c").unwrap().phase(), Phase::Pending);
    assert!(matches!(store.find_by_name("same"), Lookup::Ambiguous(keys) if keys == ["a", "b"]));
    assert!(matches!(store.find_by_name("other"), Lookup::Found(p) if p.key == "c"));
    assert!(matches!(store.find_by_name("nope"), Lookup::NotFound));

    store.apply_load(ok("b", "r2", project("renamed", &[])), t(9));
    store.settle(t(9));
    assert_eq!(store.get("a").unwrap().phase(), Phase::Pending);
    assert_eq!(store.get("b").unwrap().phase(), Phase::Pending);
    assert_eq!(
        store.get("a").unwrap().spec_valid.last_transition_time,
        t(9)
    );
}

#[test]
fn a_removed_folder_with_a_model_is_marked_deleting_and_one_without_is_forgotten() {
    let mut store = Store::default();
    store.apply_load(ok("a", "r1", project("a", &[])), t(0));
    store.apply_load(ok("b", "r1", project("b", &[])), t(0));
    store.apply_load(failed("c", "r1"), t(0));
    let absent = store.mark_absent(&["b".to_owned()], t(5));
    assert_eq!(absent.len(), 2, "{absent:?}");
    assert!(matches!(&absent[0], Absent::Deleting { key, name } if key == "a" && name == "a"));
    assert!(matches!(&absent[1], Absent::Forgotten { key, .. } if key == "c"));
    let a = store.get("a").unwrap();
    assert_eq!(a.deleting_since, Some(t(5)));
    assert_eq!(a.phase(), Phase::Deleting);
    assert!(store.get("c").is_none());

    // Still gone: marked once, not again.
    assert!(store.mark_absent(&["b".to_owned()], t(9)).is_empty());
    assert_eq!(store.get("a").unwrap().deleting_since, Some(t(5)));

    // Back before its teardown: unmarked.
    let back = store.mark_absent(&["a".to_owned(), "b".to_owned()], t(10));
    assert!(matches!(&back[..], [Absent::Returned { key }] if key == "a"));
    assert_eq!(store.get("a").unwrap().deleting_since, None);

    // A reload clears the mark too.
    store.mark_absent(&["b".to_owned()], t(11));
    store.apply_load(ok("a", "r2", project("a", &[])), t(12));
    assert_eq!(store.get("a").unwrap().deleting_since, None);

    assert!(store.remove("a").is_some());
    let keys: Vec<_> = store.known().into_keys().collect();
    assert_eq!(keys, vec!["b"]);
}

#[test]
fn suspensions_follow_the_folder_across_stores() {
    let mut store = Store::default();
    store.apply_load(ok("a", "r1", project("a", &[])), t(0));
    assert!(store.set_suspended("a", true));
    assert!(!store.set_suspended("nope", true));
    assert_eq!(store.get("a").unwrap().phase(), Phase::Suspended);
    let dirs = store.suspended_dirs().clone();
    assert_eq!(dirs.len(), 1);

    // A new agent with the saved folders: the project starts suspended.
    let mut again = Store::with_suspended(dirs);
    again.apply_load(ok("a", "r1", project("a", &[])), t(0));
    assert!(again.get("a").unwrap().suspended);
    again.set_suspended("a", false);
    assert!(again.suspended_dirs().is_empty());
    assert!(!again.get("a").unwrap().suspended);
}

#[test]
fn phase_counts_include_zeroes() {
    let mut store = Store::default();
    let counts = store.phase_counts();
    assert_eq!(counts.len(), Phase::ALL.len());
    assert!(counts.values().all(|n| *n == 0));
    store.apply_load(ok("a", "r1", project("a", &[])), t(0));
    store.apply_load(failed("b", "r1"), t(0));
    store.settle(t(0));
    let counts = store.phase_counts();
    assert_eq!(counts.get(&Phase::Pending), Some(&1));
    assert_eq!(counts.get(&Phase::Failed), Some(&1));
    assert_eq!(counts.get(&Phase::Ready), Some(&0));
}

#[test]
fn git_revisions_follow_the_files_a_commit_leaves_valid() {
    let mut store = Store::default();
    let status = |revision: &str| {
        let mut s = crate::gitsync::status::SourceStatus::new(
            "file:///r".into(),
            "main".into(),
            String::new(),
            Duration::from_secs(60),
            PathBuf::from("/c"),
            t(0),
        );
        s.checked_out(revision.into(), "c".into(), None);
        s
    };
    let present = vec!["a".to_owned(), "b".to_owned()];
    store.set_source(status("main@sha1:c1"));
    store.apply_load(ok("a", "ra1", project("a", &[])), t(0));
    store.apply_load(ok("b", "rb1", project("b", &[])), t(0));
    store.tag_source_revision(&present);
    // `a` was applied at its files' digest; `b` never was.
    store.get_mut("a").unwrap().reconcile.last_applied_revision = Some("ra1".into());
    store
        .get_mut("a")
        .unwrap()
        .reconcile
        .last_applied_source_revision = Some("main@sha1:c1".into());

    // Commit 2 leaves `a` alone and breaks `b`.
    store.set_source(status("main@sha1:c2"));
    store.apply_load(failed("b", "rb2"), t(1));
    store.tag_source_revision(&present);
    let a = store.get("a").unwrap();
    assert_eq!(a.source_revision.as_deref(), Some("main@sha1:c2"));
    let good = a.last_good.as_ref().unwrap();
    assert_eq!(good.source_revision.as_deref(), Some("main@sha1:c2"));
    // What runs is commit 2's files too.
    assert_eq!(
        a.reconcile.last_applied_source_revision.as_deref(),
        Some("main@sha1:c2")
    );
    let b = store.get("b").unwrap();
    assert_eq!(b.source_revision.as_deref(), Some("main@sha1:c2"));
    // The broken files are commit 2's; the model kept is commit 1's.
    let good = b.last_good.as_ref().unwrap();
    assert_eq!(good.source_revision.as_deref(), Some("main@sha1:c1"));
    assert_eq!(b.reconcile.last_applied_source_revision, None);
}
