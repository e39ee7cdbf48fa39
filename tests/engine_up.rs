//! End-to-end: `berth up` on a temp project through the real adapters.
//! Root only (the image store's snapshots and containers need it); each
//! test has its own `--root`, cleaned up on drop.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod runtime_support;

use std::path::{Path, PathBuf};
use std::process::Output;

use berth_image::testing::busybox_rootfs_tar;
use runtime_support::{Root, need_root, ok, private_netns, text};

const COMPOSE: &str = r#"
name: proj
services:
  web:
    image: busybox
    command: ["sleep", "3600"]
    depends_on: [db]
    stop_grace_period: 1s
  db:
    image: busybox
    command: ["sleep", "3600"]
    stop_grace_period: 1s
"#;

/// A state root with busybox imported, and a project folder holding
/// `compose.yaml`.
fn setup(label: &str) -> (Root, PathBuf) {
    private_netns();
    let root = Root::new(label);
    let mut tar = Vec::new();
    busybox_rootfs_tar(Path::new("/bin/busybox"), &mut tar).unwrap();
    let path = root.dir.join("busybox.tar");
    std::fs::write(&path, tar).unwrap();
    ok(root.run(&["image", "import", path.to_str().unwrap(), "busybox"]));
    let project = root.dir.join("project");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(project.join("compose.yaml"), COMPOSE).unwrap();
    (root, project)
}

fn up(root: &Root, project: &Path, flags: &[&str]) -> Output {
    let file = project.join("compose.yaml");
    let mut args = vec!["up", "-f", file.to_str().unwrap()];
    args.extend(flags);
    root.run(&args)
}

#[test]
fn dry_run_plans_both_containers_in_dependency_order() {
    if !need_root("dry_run_plans_both_containers_in_dependency_order") {
        return;
    }
    let (root, project) = setup("up-dry");
    let out = ok(up(&root, &project, &["--dry-run"]));
    let lines: Vec<&str> = out.lines().collect();
    let containers: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.contains("CreateContainer"))
        .collect();
    assert_eq!(
        containers,
        [
            "1 CreateContainer proj-db-1 [ContainerMissing: replica 1 has no container]",
            "2 CreateContainer proj-web-1 [ContainerMissing: replica 1 has no container]",
        ],
        "{out}"
    );
    // The image is in the store: nothing to pull. The implicit default
    // network is the only other action.
    assert_eq!(
        lines[0],
        "0 CreateNetwork proj_default [ResourceMissing: network proj_default does not exist]"
    );
    assert_eq!(lines.len(), 3, "{out}");
    // A dry run changes nothing.
    assert!(root.ids().is_empty());
    assert!(!root.dir.join("networks").exists());
}

#[test]
fn dry_run_without_the_image_plans_a_pull() {
    if !need_root("dry_run_without_the_image_plans_a_pull") {
        return;
    }
    let (root, project) = setup("up-pull");
    ok(root.run(&["rmi", "busybox"]));
    let out = ok(up(&root, &project, &["--dry-run"]));
    assert!(
        out.lines()
            .any(|l| l == "0 PullImage busybox [ImageMissing: busybox is not present]"),
        "{out}"
    );
}

/// `up -d` creates and starts both containers, reporting each step as
/// Compose's progress lines on stderr (stdout stays empty); a second
/// `up -d` only reports them running; `down` removes them and the
/// recorded default network.
#[test]
fn up_detached_converges_and_down_removes() {
    if !need_root("up_detached_converges_and_down_removes") {
        return;
    }
    let (root, project) = setup("up-d");
    let out = up(&root, &project, &["-d"]);
    assert_eq!(ok(out.clone()), "");
    assert_eq!(
        text(&out.stderr).lines().collect::<Vec<_>>(),
        [
            " Network proj_default Creating",
            " Network proj_default Created",
            " Container proj-db-1 Creating",
            " Container proj-db-1 Created",
            " Container proj-db-1 Starting",
            " Container proj-db-1 Started",
            " Container proj-web-1 Creating",
            " Container proj-web-1 Created",
            " Container proj-web-1 Starting",
            " Container proj-web-1 Started",
        ],
    );
    let started = |name: &str| {
        let v = root.inspect(name);
        assert_eq!(v["State"]["Running"], true, "{name}: {v:#}");
        v["State"]["StartedAt"].as_str().unwrap().to_owned()
    };
    let before = (started("proj-db-1"), started("proj-web-1"));
    let again = up(&root, &project, &["-d"]);
    assert_eq!(ok(again.clone()), "", "a second up -d changes nothing");
    assert_eq!(
        text(&again.stderr).lines().collect::<Vec<_>>(),
        [
            " Container proj-db-1 Running",
            " Container proj-web-1 Running"
        ]
    );
    assert_eq!(ok(up(&root, &project, &["--dry-run"])), "nothing to do\n");
    assert_eq!(before, (started("proj-db-1"), started("proj-web-1")));
    assert_eq!(root.ids().len(), 2);

    let file = project.join("compose.yaml");
    let out = root.run(&["down", "-f", file.to_str().unwrap()]);
    assert_eq!(ok(out.clone()), "");
    assert_eq!(
        text(&out.stderr).lines().collect::<Vec<_>>(),
        [
            " Container proj-web-1 Stopping",
            " Container proj-web-1 Stopped",
            " Container proj-web-1 Removing",
            " Container proj-web-1 Removed",
            " Container proj-db-1 Stopping",
            " Container proj-db-1 Stopped",
            " Container proj-db-1 Removing",
            " Container proj-db-1 Removed",
            " Network proj_default Removing",
            " Network proj_default Removed",
        ],
    );
    assert!(root.ids().is_empty(), "left: {:?}", root.ids());
    let left: Vec<_> = std::fs::read_dir(root.dir.join("networks"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
