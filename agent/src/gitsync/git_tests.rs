//! `git.rs` without a remote: ls-remote parsing, error classes, the
//! credentials' environment, stale locks.

use super::*;

#[test]
fn branches_win_over_tags_and_tags_are_peeled() {
    let out = "1111111111111111111111111111111111111111\trefs/tags/main\n\
               2222222222222222222222222222222222222222\trefs/heads/main\n\
               3333333333333333333333333333333333333333\trefs/tags/v1\n\
               4444444444444444444444444444444444444444\trefs/tags/v1^{}\n";
    let name = GitRef::Name("main".into()).remote_refs();
    assert_eq!(
        pick_ref(out, &name),
        Some(("refs/heads/main".into(), "2".repeat(40)))
    );
    let tag = GitRef::Name("v1".into()).remote_refs();
    assert_eq!(
        pick_ref(out, &tag),
        Some(("refs/tags/v1".into(), "4".repeat(40)))
    );
    assert_eq!(pick_ref(out, &GitRef::Name("x".into()).remote_refs()), None);
}

#[test]
fn errors_are_classified_from_stderr() {
    assert_eq!(
        classify("fatal: Authentication failed for 'https://h/r'"),
        ErrorKind::Authentication
    );
    assert_eq!(
        classify("git@h: Permission denied (publickey)."),
        ErrorKind::Authentication
    );
    assert_eq!(
        classify("fatal: couldn't find remote ref refs/heads/nope"),
        ErrorKind::RefNotFound
    );
    assert_eq!(
        classify("fatal: '/x' does not appear to be a git repository"),
        ErrorKind::Unreachable
    );
}

#[test]
fn stderr_is_summarised_on_one_line() {
    let s = summary(
        "fatal: '/x' does not appear to be a git repository\nfatal: Could not read from remote repository.\n\nPlease make sure you have the correct access rights\nand the repository exists.\n",
    );
    assert_eq!(
        s,
        "fatal: '/x' does not appear to be a git repository; fatal: Could not read from remote repository."
    );
}

#[test]
fn stale_locks_are_cleared_and_nothing_else() {
    let tmp = tempfile::tempdir().unwrap();
    let git = tmp.path().join(".git");
    for dir in ["refs/berth", "objects/pack"] {
        std::fs::create_dir_all(git.join(dir)).unwrap();
    }
    for file in [
        "index.lock",
        "shallow.lock",
        "HEAD",
        "refs/berth/fetched.lock",
        "refs/berth/fetched",
        "objects/pack/x.lock",
    ] {
        std::fs::write(git.join(file), "").unwrap();
    }
    Repo::new(tmp.path(), &Auth::default(), Duration::from_secs(1)).clear_stale_locks();
    for gone in ["index.lock", "shallow.lock", "refs/berth/fetched.lock"] {
        assert!(!git.join(gone).exists(), "{gone} left");
    }
    for kept in ["HEAD", "refs/berth/fetched", "objects/pack/x.lock"] {
        assert!(git.join(kept).exists(), "{kept} removed");
    }
}

#[test]
fn credentials_travel_in_the_environment_only() {
    let auth = Auth {
        https: Some(Credentials {
            username: "bot".into(),
            password: "tok".into(),
        }),
        ssh_key: Some(PathBuf::from("/keys/it's")),
        known_hosts: Some(PathBuf::from("/keys/hosts")),
    };
    let env = auth.environment();
    let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(get("GIT_CONFIG_KEY_0").as_deref(), Some("http.extraHeader"));
    // base64("bot:tok")
    assert_eq!(
        get("GIT_CONFIG_VALUE_0").as_deref(),
        Some("Authorization: Basic Ym90OnRvaw==")
    );
    assert_eq!(
        get("GIT_SSH_COMMAND").as_deref(),
        Some(
            "ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes \
             -i '/keys/it'\\''s' -o UserKnownHostsFile='/keys/hosts'"
        )
    );
}
