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
use runtime_support::{Root, need_root, text};

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
    let err = engine.images.pull("alpine:3").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(
        err.message.contains("registry pull is not implemented yet"),
        "{err}"
    );
    let build = BuildRequest {
        service: "web".into(),
        reference: "proj-web".into(),
        build: serde_json::from_value(serde_json::json!({"context": "."})).unwrap(),
    };
    assert_eq!(
        engine.images.build(&build).unwrap_err().kind(),
        ErrorKind::Unavailable
    );
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

/// Only a project's implicit default network is recorded; anything else
/// is refused as not implemented rather than faked.
#[test]
fn only_the_default_network_is_recorded() {
    if !need_root("only_the_default_network_is_recorded") {
        return;
    }
    let (root, _) = root_with_busybox("conf-net");
    let engine = engine(&root);
    let nets = &engine.networks;
    let err = nets.create(&network("proj_back", "back")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(
        err.message.contains("networks are not implemented yet"),
        "{err}"
    );
    let default = network("proj_default", "default");
    nets.create(&default).unwrap();
    assert_eq!(
        nets.create(&default).unwrap_err().kind(),
        ErrorKind::AlreadyExists
    );
    let listed = nets.list().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].name.as_str(), &listed[0].labels),
        ("proj_default", &default.labels)
    );
    nets.remove("proj_default").unwrap();
    assert_eq!(
        nets.remove("proj_default").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert!(nets.list().unwrap().is_empty());
}
