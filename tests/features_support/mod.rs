//! The busybox-based image and project helpers shared by the container
//! option tests (engine_features.rs, engine_isolation.rs).

#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Output;

use berth_image::testing::{TestImage, busybox_rootfs_tar, docker_save, tar_of};

use serde_json::json;

use crate::runtime_support::{Root, ok, private_netns, text};

/// `featimg`: busybox plus a user `app` (1000) and groups `audio` (29)
/// and `app` (1000), a seeded `/var/lib/app` declared as a `VOLUME`, and
/// `StopSignal` SIGUSR1.
pub fn feature_image() -> TestImage {
    let mut base = Vec::new();
    busybox_rootfs_tar(Path::new("/bin/busybox"), &mut base).unwrap();
    let extra = tar_of(&[
        (
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\napp:x:1000:1000:app:/home/app:/bin/sh\n",
        ),
        (
            "etc/group",
            b"root:x:0:\nnobody:x:65534:\naudio:x:29:\napp:x:1000:\n",
        ),
        ("var/lib/app/seed.txt", b"seeded by the image\n"),
    ]);
    let mut image = TestImage::new(vec![base, extra], &["featimg"]);
    image.config["config"]["Volumes"] = json!({"/var/lib/app": {}});
    image.config["config"]["StopSignal"] = json!("SIGUSR1");
    image
}

/// A state root with `featimg` loaded and a project folder.
pub struct Project {
    pub root: Root,
    pub dir: PathBuf,
}

impl Project {
    pub fn new(label: &str, compose: &str) -> Self {
        // Its networks' bridges, veths and nftables rules are made in the
        // test thread's own network namespace, never on the host.
        private_netns();
        let root = Root::new(label);
        let archive = root.dir.join("images.tar");
        std::fs::write(&archive, docker_save(&[feature_image()])).unwrap();
        ok(root.run(&["load", "-i", archive.to_str().unwrap()]));
        let dir = root.dir.join("project");
        std::fs::create_dir_all(&dir).unwrap();
        let p = Project { root, dir };
        p.write(compose);
        p
    }

    pub fn write(&self, compose: &str) {
        std::fs::write(self.dir.join("compose.yaml"), compose).unwrap();
    }

    pub fn file(&self) -> String {
        self.dir.join("compose.yaml").display().to_string()
    }

    pub fn up(&self) -> Output {
        self.root.run(&["up", "-d", "-f", &self.file()])
    }

    pub fn down(&self, flags: &[&str]) -> Output {
        let file = self.file();
        let mut args = vec!["down", "-f", file.as_str()];
        args.extend(flags);
        self.root.run(&args)
    }

    /// `sh -c script` in the container; stdout, after checking it succeeded.
    pub fn sh(&self, container: &str, script: &str) -> String {
        ok(self.root.run(&["exec", container, "sh", "-c", script]))
    }

    /// The exit code and output of `sh -c script` in the container.
    pub fn try_sh(&self, container: &str, script: &str) -> (i32, String) {
        let out = self.root.run(&["exec", container, "sh", "-c", script]);
        (
            out.status.code().unwrap_or(-1),
            format!("{}{}", text(&out.stdout), text(&out.stderr)),
        )
    }

    pub fn id(&self, container: &str) -> String {
        self.root.inspect(container)["Id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub fn container_dir(&self, container: &str) -> PathBuf {
        self.root.dir.join("containers").join(self.id(container))
    }

    pub fn volumes(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.root.dir.join("volumes"))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

/// The output of a command expected to fail.
pub fn failed(out: Output) -> String {
    assert!(
        !out.status.success(),
        "berth succeeded:\nstdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    format!("{}{}", text(&out.stdout), text(&out.stderr))
}
