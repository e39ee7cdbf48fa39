//! End-to-end: `RUN --mount=type=ssh` with a real `ssh-agent`. The RUN
//! steps talk to the agent with the host's own `ssh-add` (copied into the
//! image with the libraries `ldd` names), so the key the agent holds is
//! listed from inside the build: through a forwarded socket
//! (`--ssh default` from `SSH_AUTH_SOCK`) and through berth's private
//! agent for key files (`--ssh ID=KEYFILE`). Also: the socket's
//! uid/mode, a mount left out when no agent is given, `required` failing
//! by name, nothing left in the image. berth runs in a network namespace
//! of the test's own (RUN steps join berth's default bridge, made there).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod build_support;
mod runtime_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use build_support::{BUSYBOX_STAGE, build, context, sh};
use runtime_support::text;

fn have_openssh(test: &str) -> bool {
    let ok = ["ssh-agent", "ssh-add", "ssh-keygen", "ldd"]
        .iter()
        .all(|t| {
            Command::new("sh")
                .arg("-c")
                .arg(format!("command -v {t}"))
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
    if !ok {
        println!(
            "SKIPPED: {test} needs ssh-agent, ssh-add, ssh-keygen (apt-get install openssh-client) and ldd"
        );
    }
    ok
}

struct Agent {
    child: Child,
    socket: PathBuf,
}

impl Agent {
    fn start(dir: &Path, key: &Path) -> Agent {
        let socket = dir.join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !socket.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "ssh-agent made no socket"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let st = Command::new("ssh-add")
            .arg(key)
            .env("SSH_AUTH_SOCK", &socket)
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success());
        Agent { child, socket }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A new ed25519 key at `dir/name`; its fingerprint line's hash.
fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let key = dir.join(name);
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(st.success());
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(&key)
        .output()
        .unwrap();
    let fingerprint = text(&out.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_owned();
    (key, fingerprint)
}

/// `ssh-add` and every library it loads, under `ctx/sshadd/` at their
/// absolute paths (so `COPY sshadd/ /` installs them).
fn copy_ssh_add(ctx: &Path) {
    let out = Command::new("ldd")
        .arg("/usr/bin/ssh-add")
        .output()
        .unwrap();
    let mut files = vec![PathBuf::from("/usr/bin/ssh-add")];
    for line in text(&out.stdout).lines() {
        let path = match line.split_once("=>") {
            Some((_, right)) => right.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(p) = path.filter(|p| p.starts_with('/')) {
            files.push(PathBuf::from(p));
        }
    }
    for f in files {
        let dest = ctx.join("sshadd").join(f.strip_prefix("/").unwrap());
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&f, &dest).unwrap();
    }
}

#[test]
fn ssh_mounts_reach_the_agent() {
    if !build_support::need_root_and_net("ssh_mounts_reach_the_agent")
        || !have_openssh("ssh_mounts_reach_the_agent")
    {
        return;
    }
    let root = build_support::root("build-ssh");
    let keys = root.dir.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let (agent_key, agent_fp) = keygen(&keys, "in-agent");
    let (file_key, file_fp) = keygen(&keys, "from-file");
    let agent = Agent::start(&keys, &agent_key);
    let dockerfile = format!(
        "{BUSYBOX_STAGE}\
COPY sshadd/ /
RUN --mount=type=ssh test -S \"$SSH_AUTH_SOCK\" && echo \"sock=$SSH_AUTH_SOCK\" && ssh-add -l
RUN --mount=type=ssh,id=keys,target=/agent.sock,uid=1000,gid=2000,mode=0660 echo \"owner=$(stat -c '%u:%g %a' /agent.sock)\" && SSH_AUTH_SOCK=/agent.sock ssh-add -l
RUN --mount=type=ssh,id=absent test ! -e /run/buildkit/ssh_agent.0 && test -z \"$SSH_AUTH_SOCK\" && echo absent-left-out
"
    );
    let ctx = context(&root, "ctx", &[("Dockerfile", &dockerfile)]);
    copy_ssh_add(&ctx);
    let keys_arg = format!("keys={}", file_key.display());
    let out = root
        .cmd(&["build", "-t", "s:1", "--ssh", "default", "--ssh", &keys_arg])
        .arg(&ctx)
        .env("SSH_AUTH_SOCK", &agent.socket)
        .output()
        .unwrap();
    let progress = text(&out.stderr);
    assert!(out.status.success(), "{progress}");
    for want in [
        "sock=/run/buildkit/ssh_agent.0",
        &agent_fp,
        "in-agent (ED25519)",
        "owner=1000:2000 660",
        &file_fp,
        "absent-left-out",
    ] {
        assert!(progress.contains(want), "{want} missing in:\n{progress}");
    }
    // The private agent of key files ended with the build.
    let pattern = format!("ssh-agent -a {}/build/tmp/", root.dir.display());
    let left = Command::new("pgrep")
        .arg("-f")
        .arg(&pattern)
        .output()
        .unwrap();
    assert_eq!(text(&left.stdout), "", "private ssh-agent left running");
    assert_eq!(
        sh(
            &root,
            "s:1",
            "test -e /run/buildkit || test -e /agent.sock || echo clean"
        ),
        "clean\n"
    );

    // `required` without an agent fails the step by name.
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("{BUSYBOX_STAGE}RUN --mount=type=ssh,required=true true\n"),
    )
    .unwrap();
    let err = text(&build(&root, &ctx, &[]).stderr);
    assert!(
        err.contains("ssh agent \"default\" is required but was not forwarded"),
        "{err}"
    );
    // `--ssh default` with no agent in the environment is refused.
    let out = root
        .cmd(&["build", "--ssh", "default"])
        .arg(&ctx)
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("SSH_AUTH_SOCK is not set"),
        "{}",
        text(&out.stderr)
    );
}
