//! Git sync over ssh, as far as a machine without an ssh server allows:
//! the agent's `ssh` is a stand-in on its PATH that records its arguments
//! and runs the remote command (`git-upload-pack '/path'`) locally, as
//! sshd would on the far end. What is checked is berth's side: an
//! `ssh://` URL goes through ssh, with `--git-ssh-key` as the identity,
//! `--git-known-hosts` as the only known hosts, host keys checked and no
//! prompt; commits are followed. Root only; SKIPPED without `git`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod agent_support;
mod git_support;
mod runtime_support;

use std::os::unix::fs::PermissionsExt;

use agent_support::{Agent, TempDir};
use git_support::{Remote, detail, have_git, source, until};
use runtime_support::{Root, need_root, private_netns};

#[test]
fn ssh_remotes_go_through_ssh_with_the_key_and_known_hosts() {
    if !need_root("ssh_remotes_go_through_ssh_with_the_key_and_known_hosts")
        || !have_git("ssh_remotes_go_through_ssh_with_the_key_and_known_hosts")
    {
        return;
    }
    private_netns();
    let root = Root::new("git-ssh");
    let remote = Remote::new("git-ssh");
    remote.write("empty/compose.yaml", "name: empty\nservices: {}\n");
    let c1 = remote.commit("one");

    let fake = TempDir::new("fake-ssh");
    let log = fake.path().join("ssh.log");
    let key = fake.write("keys/id_ed25519", "not a real key\n");
    let hosts = fake.write("keys/known_hosts", "fakehost ssh-ed25519 AAAA\n");
    let ssh = fake.write(
        "bin/ssh",
        &format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\nfor last; do :; done\nexec sh -c \"$last\"\n",
            log.display()
        ),
    );
    std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        fake.path().join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let url = format!("ssh://git@fakehost{}", remote.bare().display());
    let (root_dir, key_arg, hosts_arg) = (
        root.dir.display().to_string(),
        key.display().to_string(),
        hosts.display().to_string(),
    );
    let agent = Agent::start_args_env(
        &[
            "--git",
            &url,
            "--git-ssh-key",
            &key_arg,
            "--git-known-hosts",
            &hosts_arg,
            "--git-interval",
            "1s",
            "--listen",
            "127.0.0.1:0",
            "--root",
            &root_dir,
            "--resync-interval",
            "1h",
        ],
        &[("PATH", &path)],
    );
    until(&agent, "the project over ssh", || {
        detail(&agent, "empty").map(drop)
    });
    let src = source(&agent);
    assert_eq!(src["revision"], format!("main@sha1:{c1}"));
    // The user names the account, not a secret: it stays.
    assert_eq!(src["url"], url.as_str());

    let calls = std::fs::read_to_string(&log).unwrap();
    let first = calls.lines().next().unwrap();
    for part in [
        "-o BatchMode=yes",
        "-o StrictHostKeyChecking=yes",
        "-o IdentitiesOnly=yes",
        &format!("-i {key_arg}"),
        &format!("-o UserKnownHostsFile={hosts_arg}"),
        "git@fakehost",
        "git-upload-pack",
    ] {
        assert!(
            first.contains(part),
            "{part:?} not in ssh's arguments: {first}"
        );
    }

    // Polling over ssh follows the next commit.
    remote.write("more/compose.yaml", "name: more\nservices: {}\n");
    let c2 = remote.commit("two");
    until(&agent, "commit 2 over ssh", || {
        (source(&agent)["revision"] == format!("main@sha1:{c2}").as_str()).then_some(())
    });
    until(&agent, "the new project", || {
        detail(&agent, "more").map(drop)
    });
}
