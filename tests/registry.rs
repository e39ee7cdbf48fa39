//! End-to-end: `berth push`, `pull`, `login` against Debian's
//! docker-registry on 127.0.0.1 (one per test), and interop with skopeo
//! and umoci. Root only (images are run); each test has its own state
//! roots and registry, removed on drop.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod registry_support;
mod runtime_support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use berth_image::Digest;
use berth_image::testing::{TestImage, busybox_rootfs_tar, docker_save, oci_archive, tar_of};
use registry_support::{TestRegistry, have, skopeo, text, write_layout};
use runtime_support::{Root, need_root};
use serde_json::{Value, json};

fn busybox_layer() -> Vec<u8> {
    let mut tar = Vec::new();
    busybox_rootfs_tar(Path::new("/bin/busybox"), &mut tar).unwrap();
    tar
}

/// A two-layer image: busybox, then `/hello.txt` holding `hello`.
fn hello_image(tag: &str) -> TestImage {
    TestImage::new(
        vec![
            busybox_layer(),
            tar_of(&[("hello.txt", b"hello from the registry\n")]),
        ],
        &[tag],
    )
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "berth failed: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn load(root: &Root, images: &[TestImage]) {
    let archive = root.dir.join("images.tar");
    std::fs::write(&archive, docker_save(images)).unwrap();
    ok(root.run(&["load", "-i", archive.to_str().unwrap()]));
}

fn inspect(root: &Root, image: &str) -> Value {
    let out = ok(root.run(&["image", "inspect", image]));
    let v: Value = serde_json::from_str(&out).unwrap();
    v[0].clone()
}

/// The `Digest: sha256:...` line of `berth pull`.
fn digest_line(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("Digest: "))
        .unwrap_or_else(|| panic!("no Digest line in {out}"))
        .to_owned()
}

/// `berth run --rm IMAGE cat FILE`'s output.
fn cat(root: &Root, image: &str, file: &str) -> String {
    ok(root.run(&["run", "--rm", image, "cat", file]))
}

#[test]
fn push_then_pull_into_a_fresh_store_runs_with_the_same_digests() {
    if !need_root("registry push/pull") {
        return;
    }
    let Some(reg) = TestRegistry::start("push_then_pull", None) else {
        return;
    };
    let a = Root::new("reg-push");
    let name = reg.name("hello:1");
    load(&a, &[hello_image(&name)]);
    let pushed = ok(a.run(&["push", &name]));
    assert!(
        pushed.contains("The push refers to repository ["),
        "{pushed}"
    );
    assert_eq!(
        pushed.matches(": Pushed").count(),
        2,
        "two layers: {pushed}"
    );
    let push_digest = pushed
        .lines()
        .find_map(|l| l.strip_prefix("1: digest: "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no digest line: {pushed}"))
        .to_owned();
    // A second push moves nothing.
    let again = ok(a.run(&["push", &name]));
    assert_eq!(again.matches("Layer already exists").count(), 2, "{again}");
    assert!(again.contains(&push_digest), "{again}");

    // Another repository of the same registry: its blobs are mounted.
    let copy = reg.name("hello-copy:1");
    ok(a.run(&["tag", &name, &copy]));
    let mounted = ok(a.run(&["push", &copy]));
    assert_eq!(
        mounted.matches(": Mounted from hello").count(),
        2,
        "{mounted}"
    );
    assert!(mounted.contains(&push_digest), "same manifest: {mounted}");
    // skopeo reads what berth pushed, with the same digest.
    let raw = skopeo(&["inspect", "--tls-verify=false", &format!("docker://{name}")]);
    let info: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(info["Digest"], push_digest);

    let b = Root::new("reg-pull");
    let pulled = ok(b.run(&["pull", &name]));
    assert_eq!(digest_line(&pulled), push_digest, "{pulled}");
    assert!(
        pulled.contains(&format!("Status: Downloaded newer image for {name}")),
        "{pulled}"
    );
    assert_eq!(pulled.matches("Pull complete").count(), 2, "{pulled}");
    assert_eq!(
        inspect(&b, &name)["Id"],
        inspect(&a, &name)["Id"],
        "the image ID survives the trip"
    );
    assert_eq!(
        inspect(&b, &name)["RepoDigests"],
        json!([format!("{}@{push_digest}", reg.name("hello"))])
    );
    assert_eq!(cat(&b, &name, "/hello.txt"), "hello from the registry\n");
    let again = ok(b.run(&["pull", &name]));
    assert!(
        again.contains(&format!("Status: Image is up to date for {name}")),
        "{again}"
    );
    // Layers in the store are not fetched again, under another name.
    let shared = ok(b.run(&["pull", &copy]));
    assert_eq!(shared.matches("Already exists").count(), 2, "{shared}");
    // -q: the name only.
    assert_eq!(ok(b.run(&["pull", "-q", &name])).trim(), format!("{name}"));
    // By digest.
    let by_digest = format!("{}@{push_digest}", reg.name("hello"));
    let c = Root::new("reg-pull-digest");
    let out = ok(c.run(&["pull", &by_digest]));
    assert_eq!(digest_line(&out), push_digest);
    assert_eq!(
        cat(&c, &by_digest, "/hello.txt"),
        "hello from the registry\n"
    );
}

#[test]
fn a_corrupted_blob_is_refused_and_nothing_is_stored() {
    if !need_root("registry corruption") {
        return;
    }
    let Some(reg) = TestRegistry::start("corrupted_blob", None) else {
        return;
    };
    let a = Root::new("reg-corrupt-push");
    let name = reg.name("hello:1");
    load(&a, &[hello_image(&name)]);
    ok(a.run(&["push", &name]));
    // Flip bytes of the top layer in the registry's storage, size kept.
    let manifest: Value = serde_json::from_str(&skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{name}"),
    ]))
    .unwrap();
    let layer = manifest["layers"][1]["digest"].as_str().unwrap().to_owned();
    let file = reg.blob_file(&layer);
    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    bytes[mid + 1] ^= 0xff;
    std::fs::write(&file, &bytes).unwrap();

    let b = Root::new("reg-corrupt-pull");
    let out = b.run(&["pull", &name]);
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&layer) && err.contains("corrupt"),
        "the error names the blob and says why: {err}"
    );
    assert!(
        !b.dir
            .join("content/blobs/sha256")
            .join(&layer[7..])
            .exists(),
        "the bad blob is not in the store"
    );
    assert!(
        !b.dir.join("tmp/partial").join(&layer[7..]).exists(),
        "nor is a partial file of it"
    );
    let images = ok(b.run(&["images", "-q"]));
    assert!(images.trim().is_empty(), "no image was tagged: {images}");
}

#[test]
fn an_index_with_several_platforms_gives_the_hosts_image() {
    if !need_root("registry platforms") || !have("skopeo", "registry platforms") {
        return;
    }
    let Some(reg) = TestRegistry::start("platform_index", None) else {
        return;
    };
    let host = berth_image::platform::host_arch();
    let other = if host == "arm64" { "amd64" } else { "arm64" };
    let mut blobs = Vec::new();
    let mut entries = Vec::new();
    for arch in [other, host] {
        let mut image = TestImage::new(
            vec![busybox_layer(), tar_of(&[("arch.txt", arch.as_bytes())])],
            &[],
        );
        image.config["architecture"] = json!(arch);
        let config = image.config_bytes();
        let mut layers = Vec::new();
        for l in &image.layers {
            layers.push(json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": Digest::of(l).to_string(), "size": l.len()}));
            blobs.push(l.clone());
        }
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": Digest::of(&config).to_string(), "size": config.len()},
            "layers": layers,
        }))
        .unwrap();
        entries.push(json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": Digest::of(&manifest).to_string(), "size": manifest.len(), "platform": {"os": "linux", "architecture": arch}}));
        blobs.push(config);
        blobs.push(manifest);
    }
    let index = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries})).unwrap();
    blobs.push(index.clone());
    let layout = tempfile::tempdir().unwrap();
    write_layout(
        layout.path(),
        &blobs,
        &json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json", "digest": Digest::of(&index).to_string(), "size": index.len(), "annotations": {"org.opencontainers.image.ref.name": "multi"}}]}),
    );
    let name = reg.name("multi:1");
    skopeo(&[
        "copy",
        "--all",
        "--dest-tls-verify=false",
        &format!("oci:{}:multi", layout.path().display()),
        &format!("docker://{name}"),
    ]);
    let pushed_index = std::process::Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{name}"))
        .output()
        .unwrap()
        .stdout;
    assert!(String::from_utf8_lossy(&pushed_index).contains(other));
    let root = Root::new("reg-platform");
    let out = ok(root.run(&["pull", &name]));
    assert_eq!(
        digest_line(&out),
        Digest::of(&pushed_index).to_string(),
        "Digest: is the index's, as docker prints it"
    );
    assert_eq!(cat(&root, &name, "/arch.txt"), host);
    assert_eq!(inspect(&root, &name)["Architecture"], host);
    // --platform picks another entry.
    let other_root = Root::new("reg-platform-other");
    ok(other_root.run(&["pull", "--platform", &format!("linux/{other}"), &name]));
    assert_eq!(inspect(&other_root, &name)["Architecture"], other);
    let none = other_root.run(&["pull", "--platform", "linux/s390x", &name]);
    assert!(!none.status.success());
    assert!(
        String::from_utf8_lossy(&none.stderr).contains("linux/s390x"),
        "{}",
        text(&none)
    );
}

#[test]
fn zstd_layers_pull_and_run() {
    if !need_root("registry zstd") || !have("skopeo", "registry zstd") {
        return;
    }
    let Some(reg) = TestRegistry::start("zstd", None) else {
        return;
    };
    let a = Root::new("reg-zstd-push");
    let name = reg.name("hello:1");
    load(&a, &[hello_image(&name)]);
    ok(a.run(&["push", &name]));
    let zname = reg.name("hello-zstd:1");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        "--dest-compress-format",
        "zstd",
        "-f",
        "oci",
        &format!("docker://{name}"),
        &format!("docker://{zname}"),
    ]);
    let raw = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{zname}"),
    ]);
    assert!(raw.contains("tar+zstd"), "skopeo wrote zstd layers: {raw}");
    let b = Root::new("reg-zstd-pull");
    ok(b.run(&["pull", &zname]));
    assert_eq!(cat(&b, &zname, "/hello.txt"), "hello from the registry\n");
}

#[test]
fn an_interrupted_download_resumes_with_a_range_request() {
    if !need_root("registry resume") {
        return;
    }
    let Some(reg) = TestRegistry::start("resume", None) else {
        return;
    };
    let a = Root::new("reg-resume-push");
    let name = reg.name("hello:1");
    load(&a, &[hello_image(&name)]);
    ok(a.run(&["push", &name]));
    let manifest: Value = serde_json::from_str(&skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{name}"),
    ]))
    .unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap().to_owned();
    let whole = std::fs::read(reg.blob_file(&layer)).unwrap();
    // What a pull killed half-way leaves behind.
    let b = Root::new("reg-resume-pull");
    let partial = b.dir.join("tmp/partial");
    std::fs::create_dir_all(&partial).unwrap();
    std::fs::write(partial.join(&layer[7..]), &whole[..whole.len() / 2]).unwrap();
    let out = b.run(&["--log-level", "berth_image=debug", "pull", &name]);
    assert!(out.status.success(), "{}", text(&out));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("resuming blob download"),
        "the rest came by a Range request: {log}"
    );
    assert_eq!(
        std::fs::read(b.dir.join("content/blobs/sha256").join(&layer[7..])).unwrap(),
        whole
    );
    assert!(!partial.join(&layer[7..]).exists());
    assert_eq!(cat(&b, &name, "/hello.txt"), "hello from the registry\n");
}

#[test]
fn login_is_needed_to_push_to_a_registry_with_htpasswd() {
    if !need_root("registry auth") {
        return;
    }
    let Some(reg) = TestRegistry::start("auth", Some(("alice", "s3cret"))) else {
        return;
    };
    let docker_config = tempfile::tempdir().unwrap();
    let berth = |root: &Root, args: &[&str], stdin: Option<&str>| -> Output {
        let mut cmd = root.cmd(args);
        cmd.env("DOCKER_CONFIG", docker_config.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        if let Some(input) = stdin {
            std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
        }
        drop(child.stdin.take());
        child.wait_with_output().unwrap()
    };
    let a = Root::new("reg-auth");
    let name = reg.name("private:1");
    load(&a, &[hello_image(&name)]);
    let anonymous = berth(&a, &["push", &name], None);
    assert!(!anonymous.status.success(), "{}", text(&anonymous));
    let err = String::from_utf8_lossy(&anonymous.stderr);
    assert!(err.contains("berth login"), "says how to fix it: {err}");

    let wrong = berth(
        &a,
        &["login", "-u", "alice", "--password-stdin", &reg.host()],
        Some("nope\n"),
    );
    assert!(!wrong.status.success(), "{}", text(&wrong));
    assert!(!docker_config.path().join("config.json").exists());

    let login = berth(
        &a,
        &["login", "-u", "alice", "--password-stdin", &reg.host()],
        Some("s3cret\n"),
    );
    assert!(login.status.success(), "{}", text(&login));
    assert!(String::from_utf8_lossy(&login.stdout).contains("Login Succeeded"));
    let config_path = docker_config.path().join("config.json");
    let config: Value = serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
    assert_eq!(config["auths"][reg.host()]["auth"], "YWxpY2U6czNjcmV0");
    assert_eq!(
        std::fs::metadata(&config_path)
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let pushed = berth(&a, &["push", &name], None);
    assert!(pushed.status.success(), "{}", text(&pushed));

    let b = Root::new("reg-auth-pull");
    let pulled = berth(&b, &["pull", &name], None);
    assert!(pulled.status.success(), "{}", text(&pulled));

    let logout = berth(&a, &["logout", &reg.host()], None);
    assert!(logout.status.success(), "{}", text(&logout));
    let c = Root::new("reg-auth-anon");
    let anonymous_pull = berth(&c, &["pull", &name], None);
    assert!(
        !anonymous_pull.status.success(),
        "{}",
        text(&anonymous_pull)
    );
}

#[test]
fn skopeo_and_umoci_read_what_berth_pushed() {
    if !need_root("registry interop")
        || !have("skopeo", "registry interop")
        || !have("umoci", "registry interop")
    {
        return;
    }
    let Some(reg) = TestRegistry::start("interop_out", None) else {
        return;
    };
    let a = Root::new("reg-interop-out");
    // Imported: one uncompressed layer, gzipped for the push.
    let rootfs = a.dir.join("rootfs.tar");
    let mut layer = busybox_layer();
    // tar_of's entries after busybox's: append hello.txt as a new layer
    // would; a one-layer image is what `import` makes.
    layer.truncate(layer.len() - 1024);
    layer.extend(tar_of(&[("hello.txt", b"from berth\n")]));
    std::fs::write(&rootfs, &layer).unwrap();
    let name = reg.name("imported:1");
    ok(a.run(&["image", "import", rootfs.to_str().unwrap(), &name]));
    ok(a.run(&["push", &name]));
    let work = tempfile::tempdir().unwrap();
    let oci = work.path().join("oci");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{name}"),
        &format!("oci:{}:imported", oci.display()),
    ]);
    let bundle = work.path().join("bundle");
    let out = Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:imported", oci.display()))
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(out.status.success(), "umoci unpack: {}", text(&out));
    assert_eq!(
        std::fs::read_to_string(bundle.join("rootfs/hello.txt")).unwrap(),
        "from berth\n"
    );
    assert!(bundle.join("rootfs/bin/busybox").is_file());
}

#[test]
fn an_image_skopeo_copied_in_pulls_and_runs() {
    if !need_root("registry interop in") || !have("skopeo", "registry interop in") {
        return;
    }
    let Some(reg) = TestRegistry::start("interop_in", None) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("image.tar");
    std::fs::write(
        &archive,
        oci_archive(&[hello_image("skopeo.test/hello:1")], true, false),
    )
    .unwrap();
    let name = reg.name("from-skopeo:1");
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("oci-archive:{}", archive.display()),
        &format!("docker://{name}"),
    ]);
    let root = Root::new("reg-interop-in");
    ok(root.run(&["pull", &name]));
    assert_eq!(cat(&root, &name, "/hello.txt"), "hello from the registry\n");
}

mod compose_support;

#[test]
fn compose_up_pulls_a_missing_image_and_never_refuses_clearly() {
    if !need_root("registry compose") {
        return;
    }
    // The project's network namespace first: the registry must listen in
    // the same one as the berth processes.
    let p = compose_support::Project::new("reg-compose", "services: {}\n");
    let Some(reg) = TestRegistry::start("compose_pull", None) else {
        return;
    };
    let name = reg.name("hello:1");
    let pusher = Root::new("reg-compose-push");
    load(&pusher, &[hello_image(&name)]);
    ok(pusher.run(&["push", &name]));

    p.write(&format!(
        "name: regproj\nservices:\n  never:\n    image: {}\n    pull_policy: never\n    command: [\"cat\", \"/hello.txt\"]\n",
        reg.name("other:1")
    ));
    let out = p.run(&["compose", "up", "-d"]);
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("never") && err.contains(&reg.name("other:1")),
        "the error names the service and the image: {err}"
    );

    p.write(&format!(
        "name: regproj\nservices:\n  app:\n    image: {name}\n    command: [\"sh\", \"-c\", \"cat /hello.txt; sleep 30\"]\n"
    ));
    let out = p.run(&["compose", "up", "-d", "--remove-orphans"]);
    assert!(out.status.success(), "{}", text(&out));
    let images = ok(p.root.run(&["images", "-q"]));
    assert!(!images.trim().is_empty(), "{images}");
    let mut logs = String::new();
    for _ in 0..100 {
        logs = p.ok(&["logs", "app"]);
        if logs.contains("hello from the registry") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(logs.contains("hello from the registry"), "{logs}");
    // `compose pull`: the image is there and current.
    let out = p.run(&["compose", "pull"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("app Pulled (up to date)"),
        "{}",
        text(&out)
    );
    // pull_policy daily: pulled once; the next up within the day does not
    // go to the registry (stopped, it would fail otherwise).
    p.write(&format!(
        "name: regproj\nservices:\n  app:\n    image: {name}\n    pull_policy: daily\n    command: [\"sh\", \"-c\", \"cat /hello.txt; sleep 30\"]\n"
    ));
    drop(reg);
    let out = p.run(&["compose", "up", "-d"]);
    assert!(
        out.status.success(),
        "a daily image pulled minutes ago is not pulled again: {}",
        text(&out)
    );
    // always: pulls at every up, so with the registry gone it fails.
    p.write(&format!(
        "name: regproj\nservices:\n  app:\n    image: {name}\n    pull_policy: always\n    command: [\"sh\", \"-c\", \"cat /hello.txt; sleep 30\"]\n"
    ));
    let out = p.run(&["compose", "up", "-d"]);
    assert!(!out.status.success(), "{}", text(&out));
    p.ok(&["down"]);
}

#[test]
fn two_pulls_of_one_image_at_once_both_succeed() {
    if !need_root("registry concurrent pulls") {
        return;
    }
    let Some(reg) = TestRegistry::start("concurrent_pulls", None) else {
        return;
    };
    let a = Root::new("reg-conc-push");
    let name = reg.name("hello:1");
    load(&a, &[hello_image(&name)]);
    ok(a.run(&["push", &name]));
    let b = Root::new("reg-conc-pull");
    let children: Vec<_> = (0..3)
        .map(|_| {
            b.cmd(&["pull", "-q", &name])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
    }
    assert_eq!(cat(&b, &name, "/hello.txt"), "hello from the registry\n");
    let partial = b.dir.join("tmp/partial");
    let left = std::fs::read_dir(&partial).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "no partial files left");
}
