//! The conformance suites against the fakes. The real adapters (runtime,
//! image store, net, wired in the agent) run the same functions.

use berth_reconcilers::conformance::{self, Fixture};
use berth_reconcilers::fakes::{FakeClock, FakeHost};

fn fixture(host: &FakeHost) -> Fixture<'_> {
    host.add_image(
        "busybox:latest",
        "sha256:0000000000000000000000000000000000000000000000000000000000000001",
    );
    host.publish(
        "alpine:3",
        "sha256:0000000000000000000000000000000000000000000000000000000000000002",
    );
    Fixture {
        backends: host.backends(),
        project: "conformance".into(),
        image: "busybox:latest".into(),
        command: vec!["sleep".into(), "3600".into()],
        missing_image: "nothere:1".into(),
        pullable: "alpine:3".into(),
        not_in_registry: "ghost:1".into(),
    }
}

#[test]
fn fake_container_runtime_conforms() {
    let host = FakeHost::new(FakeClock::default());
    conformance::container_runtime(&fixture(&host)).unwrap();
}

#[test]
fn fake_image_source_conforms() {
    let host = FakeHost::new(FakeClock::default());
    conformance::image_source(&fixture(&host)).unwrap();
}

#[test]
fn fake_volume_store_conforms() {
    let host = FakeHost::new(FakeClock::default());
    conformance::volume_store(&fixture(&host)).unwrap();
}

#[test]
fn fake_network_store_conforms() {
    let host = FakeHost::new(FakeClock::default());
    conformance::network_store(&fixture(&host)).unwrap();
}

#[test]
fn the_suites_clean_up_after_themselves() {
    let host = FakeHost::new(FakeClock::default());
    conformance::all(&fixture(&host)).unwrap();
    assert!(host.container_states().is_empty());
    assert!(host.volume_names().is_empty());
    assert!(host.network_names().is_empty());
}

/// A broken implementation is reported with the suite and the step that
/// failed (here a start that errs).
#[test]
fn a_violation_names_the_rule() {
    use berth_reconcilers::ErrorKind;
    use berth_reconcilers::fakes::Op;
    let host = FakeHost::new(FakeClock::default());
    let f = fixture(&host);
    host.fail_next(Op::Start, ErrorKind::Internal);
    let v = conformance::container_runtime(&f).unwrap_err();
    assert_eq!(v.suite, "ContainerRuntime");
    assert!(
        v.message.starts_with("start: internal: injected failure"),
        "{}",
        v.message
    );
}
