//! End-to-end: the container options of a Compose service, through `berth
//! up -d` and the real runtime (issue #4): configs and secrets, ulimits,
//! logging, lifecycle hooks, the image's stop signal, anonymous volumes and
//! copy-up (engine_isolation.rs has capabilities, read-only root, sysctls,
//! devices).
//!
//! Root only; each test has its own `--root` and project folder, and the
//! `Root` guard removes every container (processes, cgroups, mounts) even
//! when an assertion fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod features_support;
mod runtime_support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use features_support::{Project, failed};
use runtime_support::{need_root, ok, text};

#[test]
fn secrets_and_configs_are_owned_copies_and_edits_recreate() {
    if !need_root("secrets_and_configs_are_owned_copies_and_edits_recreate") {
        return;
    }
    let p = Project::new("files", "");
    let token = p.dir.join("token.txt");
    std::fs::write(&token, "s3cret-1\n").unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o640)).unwrap();
    std::fs::write(p.dir.join(".env"), "SITE_NAME=from-dotenv\n").unwrap();
    p.write(
        r#"
name: files
services:
  app:
    image: featimg
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    secrets:
      - source: token
        uid: "1000"
        mode: 0400
    configs:
      - source: site
        target: /etc/site.conf
      - inline
configs:
  site:
    environment: SITE_NAME
  inline:
    content: |
      listen 8080
secrets:
  token:
    file: ./token.txt
"#,
    );
    ok(p.up());
    let c = "files-app-1";
    assert_eq!(
        p.sh(c, "stat -c '%a %u %g' /run/secrets/token"),
        "400 1000 0\n"
    );
    assert_eq!(p.sh(c, "cat /run/secrets/token"), "s3cret-1\n");
    assert_eq!(p.sh(c, "cat /etc/site.conf"), "from-dotenv");
    assert_eq!(p.sh(c, "stat -c '%a %u' /etc/site.conf"), "444 0\n");
    assert_eq!(p.sh(c, "cat /inline"), "listen 8080\n");
    // Read-only, whatever the mode says.
    let (code, out) = p.try_sh(c, "echo x > /etc/site.conf");
    assert_ne!(code, 0, "{out}");
    // The source was copied, never changed.
    let meta = std::fs::metadata(&token).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o640);
    assert_eq!(meta.uid(), 0);
    // The inline content is not written into config.json.
    let config = std::fs::read_to_string(p.container_dir(c).join("config.json")).unwrap();
    assert!(!config.contains("listen 8080") && !config.contains("from-dotenv"));

    // Editing the secret's file recreates the container with the new value.
    assert_eq!(
        ok(p.root.run(&["up", "--dry-run", "-f", &p.file()])),
        "nothing to do\n"
    );
    std::fs::write(&token, "s3cret-2\n").unwrap();
    let plan = ok(p.root.run(&["up", "--dry-run", "-f", &p.file()]));
    assert!(
        plan.contains("Recreate files-app-1") && plan.contains("secrets"),
        "{plan}"
    );
    ok(p.up());
    assert_eq!(p.sh(c, "cat /run/secrets/token"), "s3cret-2\n");
    // And so does a new value of the variable.
    std::fs::write(p.dir.join(".env"), "SITE_NAME=changed\n").unwrap();
    ok(p.up());
    assert_eq!(p.sh(c, "cat /etc/site.conf"), "changed");

    // An unset variable fails the create, naming it.
    std::fs::write(p.dir.join(".env"), "").unwrap();
    let out = failed(p.up());
    assert!(
        out.contains("\"SITE_NAME\" required by config files_site is not set"),
        "{out}"
    );
    ok(p.down(&[]));
    assert!(p.root.ids().is_empty());

    // A source that cannot be read fails the create, naming it, and
    // leaves no container folder (with half-made copies) behind.
    std::fs::create_dir_all(p.dir.join("a-folder")).unwrap();
    p.write(
        r#"
name: files
services:
  app:
    image: featimg
    command: ["true"]
    secrets: [bad]
secrets:
  bad:
    file: ./a-folder
"#,
    );
    let out = failed(p.up());
    assert!(out.contains("a-folder"), "{out}");
    assert!(p.root.ids().is_empty(), "{:?}", p.root.ids());
}

#[test]
fn ulimits_are_set_and_clamped_to_the_host_with_a_warning() {
    if !need_root("ulimits_are_set_and_clamped_to_the_host_with_a_warning") {
        return;
    }
    let p = Project::new(
        "ulimits",
        r#"
name: lim
services:
  set:
    image: featimg
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    ulimits:
      nofile: {soft: 1024, hard: 2048}
      core: 0
      nproc: 512
  clamped:
    image: featimg
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    ulimits:
      nofile: 4000000000
"#,
    );
    let out = p.up();
    let stderr = text(&out.stderr);
    ok(out);
    assert!(
        stderr.contains("service clamped: ulimit nofile above the host's maximum"),
        "{stderr}"
    );
    assert!(!stderr.contains("service set:"), "{stderr}");
    // pid 1's own limits, and an exec'd process's.
    let limits = p.sh("lim-set-1", "cat /proc/1/limits");
    let row = |name: &str| {
        limits
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name}: {limits}"))
            .split_whitespace()
            .rev()
            .skip(1)
            .take(2)
            .collect::<Vec<_>>()
    };
    assert_eq!(row("Max open files"), ["2048", "1024"]);
    assert_eq!(row("Max core file size"), ["0", "0"]);
    assert_eq!(row("Max processes"), ["512", "512"]);
    assert_eq!(p.sh("lim-set-1", "ulimit -n; ulimit -Hn"), "1024\n2048\n");
    // The host's maximum: fs.nr_open for a root that holds
    // CAP_SYS_RESOURCE, else berth's own hard limit.
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let effective = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
        .unwrap();
    let max = if effective & (1 << 24) != 0 {
        std::fs::read_to_string("/proc/sys/fs/nr_open")
            .unwrap()
            .trim()
            .to_owned()
    } else {
        let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
        let row = limits
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .unwrap()
            .to_owned();
        row.split_whitespace().nth(4).unwrap().to_owned()
    };
    assert_eq!(
        p.sh("lim-clamped-1", "ulimit -n; ulimit -Hn"),
        format!("{max}\n{max}\n")
    );
    ok(p.down(&[]));
}

#[test]
fn logging_drivers_rotate_or_keep_nothing() {
    if !need_root("logging_drivers_rotate_or_keep_nothing") {
        return;
    }
    let p = Project::new(
        "logs",
        r#"
name: lg
services:
  rotated:
    image: featimg
    command: ["sh", "-c", "i=0; while [ $$i -lt 200 ]; do echo line $$i; i=$$((i+1)); done; sleep 3600"]
    stop_grace_period: 1s
    logging:
      driver: json-file
      options:
        max-size: 1k
        max-file: "2"
  silent:
    image: featimg
    command: ["sh", "-c", "echo nobody reads this; sleep 3600"]
    stop_grace_period: 1s
    logging:
      driver: none
"#,
    );
    ok(p.up());
    let rotated = p.container_dir("lg-rotated-1");
    p.root.wait_for("lg-rotated-1", "the log to rotate", |_| {
        rotated.join("container.log.1").exists()
    });
    assert!(!rotated.join("container.log.2").exists(), "max-file 2");
    for f in ["container.log", "container.log.1"] {
        let size = std::fs::metadata(rotated.join(f)).unwrap().len();
        assert!(size <= 1024, "{f}: {size} bytes");
    }
    let silent = p.container_dir("lg-silent-1");
    assert!(!silent.join("container.log").exists());
    let out = failed(p.root.run(&["logs", "lg-silent-1"]));
    assert!(
        out.contains("configured logging driver does not support reading"),
        "{out}"
    );
    ok(p.down(&[]));

    p.write(
        r#"
name: lg
services:
  app:
    image: featimg
    command: ["true"]
    logging:
      driver: syslog
"#,
    );
    let out = failed(p.up());
    assert!(
        out.contains("logging driver \"syslog\" is not supported"),
        "{out}"
    );
}

#[test]
fn hooks_run_in_the_container_and_pre_stop_comes_before_the_image_stop_signal() {
    if !need_root("hooks_run_in_the_container_and_pre_stop_comes_before_the_image_stop_signal") {
        return;
    }
    let p = Project::new("hooks", "");
    let shared = p.root.dir.join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    let shared_s = shared.display().to_string();
    p.write(&format!(
        r#"
name: hk
services:
  app:
    image: featimg
    # The image's StopSignal is SIGUSR1: the trap records which came.
    command: ["sh", "-c", "trap 'echo got-usr1 >> /shared/order; exit 0' USR1; trap 'echo got-term >> /shared/order; exit 0' TERM; while :; do sleep 0.1; done"]
    stop_grace_period: 5s
    volumes:
      - {shared_s}:/shared
    post_start:
      - command: ["sh", "-c", "echo post-start-ran; echo started > /tmp/marker"]
      - command: ["sh", "-c", "echo \"hook $$(id -u) $$HOOK_VAR $$(pwd)\""]
        user: nobody
        working_dir: /var
        environment:
          HOOK_VAR: from-hook
    pre_stop:
      - command: ["sh", "-c", "echo pre-stop >> /shared/order"]
"#
    ));
    ok(p.up());
    let c = "hk-app-1";
    assert_eq!(p.sh(c, "cat /tmp/marker"), "started\n");
    let logs = ok(p.root.run(&["logs", c]));
    assert!(logs.contains("post-start-ran\n"), "{logs}");
    assert!(logs.contains("hook 65534 from-hook /var\n"), "{logs}");
    ok(p.down(&[]));
    assert_eq!(
        std::fs::read_to_string(shared.join("order")).unwrap(),
        "pre-stop\ngot-usr1\n"
    );

    // A failing post_start fails the start, with its status.
    p.write(
        r#"
name: hk
services:
  app:
    image: featimg
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    post_start:
      - command: ["sh", "-c", "echo about to fail; exit 3"]
"#,
    );
    let out = failed(p.up());
    assert!(
        out.contains("post_start hook 1") && out.contains("exited with status 3"),
        "{out}"
    );
    let logs = ok(p.root.run(&["logs", "hk-app-1"]));
    assert!(logs.contains("about to fail"), "{logs}");
    ok(p.down(&[]));

    // A pre_stop that overruns the grace period is killed and the stop
    // goes on.
    p.write(
        r#"
name: hk
services:
  app:
    image: featimg
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    stop_signal: SIGKILL
    pre_stop:
      - command: ["sleep", "600"]
"#,
    );
    ok(p.up());
    let out = p.down(&[]);
    let stderr = text(&out.stderr);
    ok(out);
    assert!(
        stderr.contains("pre_stop hook 1") && stderr.contains("timed out"),
        "{stderr}"
    );
    assert!(p.root.ids().is_empty());
}

#[test]
fn anonymous_volumes_survive_recreate_and_new_volumes_get_the_images_files() {
    if !need_root("anonymous_volumes_survive_recreate_and_new_volumes_get_the_images_files") {
        return;
    }
    let compose = |value: &str| {
        format!(
            r#"
name: av
services:
  app:
    image: featimg
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    environment:
      VERSION: "{value}"
    volumes:
      - /data
      - etc:/etc
      - type: volume
        source: bare
        target: /opt/etc
        volume:
          nocopy: true
volumes:
  etc: {{}}
  bare: {{}}
"#
        )
    };
    let p = Project::new("anon", &compose("1"));
    ok(p.up());
    let c = "av-app-1";
    // The image's VOLUME got an anonymous volume, seeded from the image.
    assert_eq!(
        p.sh(c, "cat /var/lib/app/seed.txt"),
        "seeded by the image\n"
    );
    // A new named volume over /etc starts with the image's /etc.
    assert!(p.sh(c, "cat /etc/passwd").contains("app:x:1000"));
    let etc_data = p.root.dir.join("volumes/av_etc/_data");
    assert!(etc_data.join("group").exists());
    // nocopy: nothing copied.
    assert_eq!(p.sh(c, "ls -A /opt/etc | wc -l"), "0\n");
    p.sh(
        c,
        "echo kept > /data/file; echo mine > /var/lib/app/seed.txt",
    );
    // Two anonymous volumes (/data, /var/lib/app) and the two named ones.
    let before = p.volumes();
    assert_eq!(before.len(), 4, "{before:?}");

    // A config change recreates the container; its anonymous volumes go
    // to the new one.
    let old_id = p.id(c);
    p.write(&compose("2"));
    ok(p.up());
    assert_ne!(p.id(c), old_id, "the config change did not recreate {c}");
    assert_eq!(p.sh(c, "echo $VERSION"), "2\n");
    assert_eq!(p.sh(c, "cat /data/file"), "kept\n");
    assert_eq!(p.sh(c, "cat /var/lib/app/seed.txt"), "mine\n");
    assert_eq!(p.volumes(), before);

    // `down` keeps every volume, `down -v` removes them all.
    ok(p.down(&[]));
    assert_eq!(p.volumes(), before);
    ok(p.up());
    assert_eq!(p.sh(c, "cat /data/file"), "kept\n");
    ok(p.down(&["-v"]));
    assert!(p.volumes().is_empty(), "{:?}", p.volumes());
}
