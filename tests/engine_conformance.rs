//! The reconciler's shared conformance suites against the agent's real
//! adapters (`berth_agent::engine`): containers on the runtime, volumes as
//! folders, images from the store. Root only; each test has its own state
//! root, whose containers and folder are removed on drop.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod runtime_support;

use std::collections::BTreeMap;
use std::path::Path;

use berth_agent::engine::Engine;
use berth_image::testing::busybox_rootfs_tar;
use berth_reconcilers::conformance::{self, Fixture};
use berth_reconcilers::container::{BuildRequest, NetworkSpec, labels};
use berth_reconcilers::{ErrorKind, ImageSource, NetworkStore};
use berth_runtime::Runtime;
use runtime_support::{Root, need_root, private_netns, text};

/// A state root with busybox imported as `busybox:latest`; returns the
/// image ID `image import` printed.
fn root_with_busybox(label: &str) -> (Root, String) {
    let root = Root::new(label);
    let mut tar = Vec::new();
    busybox_rootfs_tar(Path::new("/bin/busybox"), &mut tar).unwrap();
    let path = root.dir.join("busybox.tar");
    std::fs::write(&path, tar).unwrap();
    let out = root.run(&["image", "import", path.to_str().unwrap(), "busybox"]);
    assert!(out.status.success(), "import: {}", text(&out.stderr));
    (root, text(&out.stdout).trim().to_owned())
}

fn engine(root: &Root) -> Engine {
    let runtime = Runtime::new(&root.dir, "/sys/fs/cgroup", berth_e2e::berth_bin());
    Engine::open(&root.dir, runtime).unwrap()
}

fn fixture<'a>(engine: &'a Engine, project: &str) -> Fixture<'a> {
    Fixture {
        backends: engine.backends(),
        project: project.into(),
        image: "busybox".into(),
        command: vec!["sleep".into(), "3600".into()],
        missing_image: "nothere:1".into(),
        // Pulls are not implemented: the image suite is not run against
        // the real store (see `images_resolve_locally_and_refuse_pulls`).
        pullable: String::new(),
        not_in_registry: String::new(),
    }
}

#[test]
fn real_container_runtime_conforms() {
    if !need_root("real_container_runtime_conforms") {
        return;
    }
    let (root, _) = root_with_busybox("conf-ctr");
    let engine = engine(&root);
    conformance::container_runtime(&fixture(&engine, "confrt")).unwrap();
    assert!(root.ids().is_empty(), "left behind: {:?}", root.ids());
}

#[test]
fn real_volume_store_conforms() {
    if !need_root("real_volume_store_conforms") {
        return;
    }
    let (root, _) = root_with_busybox("conf-vol");
    let engine = engine(&root);
    conformance::volume_store(&fixture(&engine, "confvol")).unwrap();
    assert!(root.ids().is_empty(), "left behind: {:?}", root.ids());
    let volumes = std::fs::read_dir(root.dir.join("volumes")).unwrap().count();
    assert_eq!(volumes, 0);
}

#[test]
fn images_resolve_locally_and_refuse_pulls() {
    if !need_root("images_resolve_locally_and_refuse_pulls") {
        return;
    }
    let (root, id) = root_with_busybox("conf-img");
    let engine = engine(&root);
    assert_eq!(
        engine.images.resolve("busybox").unwrap().as_deref(),
        Some(id.as_str())
    );
    assert_eq!(
        engine
            .images
            .resolve("docker.io/library/busybox:latest")
            .unwrap(),
        Some(id.clone())
    );
    assert_eq!(engine.images.resolve("nothere:1").unwrap(), None);
    // No registry answers for docker.io here (no network in tests): a
    // pull fails as unavailable (retryable), naming the image.
    let err = engine.images.pull("alpine:3").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.message.contains("pull alpine:3"), "{err}");
    // A build runs berth's builder: a context without a Dockerfile is the
    // project's error, named with its service.
    let empty = tempfile::tempdir().unwrap();
    let build = BuildRequest {
        service: "web".into(),
        reference: "proj-web".into(),
        build: serde_json::from_value(
            serde_json::json!({"context": empty.path().to_str().unwrap()}),
        )
        .unwrap(),
        secrets: BTreeMap::new(),
        service_images: BTreeMap::new(),
    };
    let err = engine.images.build(&build).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    assert!(err.message.contains("service \"web\""), "{err}");
    assert!(err.message.contains("Dockerfile"), "{err}");
}

fn network(name: &str, key: &str) -> NetworkSpec {
    NetworkSpec {
        name: name.into(),
        driver: None,
        driver_opts: BTreeMap::new(),
        internal: false,
        enable_ipv6: false,
        subnets: Vec::new(),
        labels: BTreeMap::from([
            (labels::PROJECT.to_string(), "proj".to_string()),
            (labels::NETWORK.to_string(), key.to_string()),
        ]),
    }
}

/// Real bridge networks pass the shared network suite (a running
/// container keeps its network), in a private network namespace.
#[test]
fn real_networks_conform() {
    if !need_root("real_networks_conform") {
        return;
    }
    private_netns();
    let (root, _) = root_with_busybox("conf-net");
    let engine = engine(&root);
    conformance::network_store(&fixture(&engine, "confnet")).unwrap();
}

/// Options a network can take, and the ones berth refuses by name.
#[test]
fn network_options_are_honoured_or_refused() {
    if !need_root("network_options_are_honoured_or_refused") {
        return;
    }
    private_netns();
    let (root, _) = root_with_busybox("conf-netopts");
    let engine = engine(&root);
    let nets = &engine.networks;
    let mut spec = network("proj_back", "back");
    spec.internal = true;
    spec.subnets.push(berth_reconcilers::container::Subnet {
        subnet: Some("10.123.0.0/24".into()),
        gateway: Some("10.123.0.254".into()),
        ip_range: None,
    });
    spec.driver_opts
        .insert("com.docker.network.bridge.name".into(), "br-back".into());
    spec.driver_opts
        .insert("com.docker.network.driver.mtu".into(), "1400".into());
    nets.create(&spec).unwrap();
    assert_eq!(
        nets.create(&spec).unwrap_err().kind(),
        ErrorKind::AlreadyExists
    );
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root.dir.join("networks/proj_back/network.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(state["bridge"], "br-back");
    assert_eq!(state["subnet"], "10.123.0.0/24");
    assert_eq!(state["gateway"], "10.123.0.254");
    assert_eq!(state["internal"], true);
    assert_eq!(state["mtu"], 1400);
    let link = std::process::Command::new("ip")
        .args(["-o", "link", "show", "br-back"])
        .output()
        .unwrap();
    assert!(
        text(&link.stdout).contains("mtu 1400"),
        "{}",
        text(&link.stdout)
    );
    // An overlapping subnet is refused, naming the other network.
    let mut clash = network("proj_other", "other");
    clash.subnets = spec.subnets.clone();
    let err = nets.create(&clash).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition);
    assert!(err.message.contains("overlaps 10.123.0.0/24"), "{err}");
    // IPv6: an IPv6 subnet needs enable_ipv6; with it and no subnet, a
    // unique local /64.
    let mut v6 = network("proj_v6", "v6");
    v6.subnets.push(berth_reconcilers::container::Subnet {
        subnet: Some("fd00:12::/64".into()),
        gateway: None,
        ip_range: None,
    });
    let err = nets.create(&v6).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(err.message.contains("needs enable_ipv6: true"), "{err}");
    v6.subnets.clear();
    v6.enable_ipv6 = true;
    nets.create(&v6).unwrap();
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root.dir.join("networks/proj_v6/network.json")).unwrap(),
    )
    .unwrap();
    let subnet6 = state["subnet6"].as_str().unwrap();
    assert!(
        subnet6.starts_with("fd") && subnet6.ends_with("::/64"),
        "{state:#}"
    );
    nets.remove("proj_v6").unwrap();
    let mut overlay = network("proj_ov", "ov");
    overlay.driver = Some("overlay".into());
    let err = nets.create(&overlay).unwrap_err();
    assert!(
        err.message.contains("driver overlay is not supported"),
        "{err}"
    );
    nets.remove("proj_back").unwrap();
    assert_eq!(
        nets.remove("proj_back").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert!(nets.list().unwrap().is_empty());
    let gone = std::process::Command::new("ip")
        .args(["link", "show", "br-back"])
        .output()
        .unwrap();
    assert!(
        !gone.status.success(),
        "the bridge is removed with the network"
    );
}
