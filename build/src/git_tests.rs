#![allow(clippy::unwrap_used)]
use super::*;

#[test]
fn what_counts_as_a_git_url() {
    for yes in [
        "git://h/r",
        "ssh://git@h/r.git",
        "git@github.com:org/repo.git",
        "github.com/org/repo",
        "https://h/org/repo.git",
        "https://h/org/repo.git#main:sub",
        "http://127.0.0.1:9/r.git?branch=x",
    ] {
        assert!(is_git_url(yes), "{yes}");
    }
    for no in [
        "https://h/file.tar.gz",
        "https://h/repo.git/file",
        "./repo.git",
        "data",
        "C:/x",
        "docker-image://busybox",
    ] {
        assert!(!is_git_url(no), "{no}");
    }
}

#[test]
fn shown_remote_hides_user_info() {
    for (url, shown) in [
        (
            "https://user:tok3n@h.io/o/r.git#main",
            "https://***@h.io/o/r.git",
        ),
        (
            "https://tok3n@h.io:8443/o/r.git",
            "https://***@h.io:8443/o/r.git",
        ),
        ("https://h.io/o/r.git", "https://h.io/o/r.git"),
        ("https://h.io/o/r@v1.git", "https://h.io/o/r@v1.git"),
        ("git@h.io:o/r.git", "git@h.io:o/r.git"),
        ("ssh://git@h.io/o/r.git", "ssh://***@h.io/o/r.git"),
    ] {
        assert_eq!(GitRef::parse(url).unwrap().shown_remote(), shown, "{url}");
    }
}

#[test]
fn fragments_and_queries() {
    let g = GitRef::parse("https://h/o/r.git#v1:docs/site").unwrap();
    assert_eq!(g.remote, "https://h/o/r.git");
    assert_eq!(g.reference.as_deref(), Some("v1"));
    assert_eq!(g.subdir.as_deref(), Some("docs/site"));
    let g = GitRef::parse("git@h:o/r.git#:sub").unwrap();
    assert_eq!((g.reference, g.subdir.as_deref()), (None, Some("sub")));
    let g = GitRef::parse("https://h/r.git?branch=dev&subdir=app&keep-git-dir").unwrap();
    assert_eq!(g.reference.as_deref(), Some("refs/heads/dev"));
    assert_eq!(g.subdir.as_deref(), Some("app"));
    assert_eq!(g.keep_git_dir, Some(true));
    let g = GitRef::parse("https://h/r.git?tag=v2&checksum=abcdef0").unwrap();
    assert_eq!(g.reference.as_deref(), Some("refs/tags/v2"));
    assert_eq!(g.checksum.as_deref(), Some("abcdef0"));
    let g =
        GitRef::parse("https://h/r.git?commit=0123456789012345678901234567890123456789").unwrap();
    assert_eq!(g.reference, g.checksum);
    assert_eq!(
        GitRef::parse("github.com/o/r").unwrap().remote,
        "https://github.com/o/r"
    );
    for (bad, says) in [
        (
            "https://h/r.git?tag=a&branch=b",
            "branch conflicts with tag",
        ),
        ("https://h/r.git#x?ref=y", ""),
        ("https://h/r.git?ref=a&ref=b", "multiple values"),
        ("https://h/r.git?depth=1", "unexpected query"),
        ("https://h/r.git?subdir=", "no value"),
        ("https://h/r.git?keep-git-dir=maybe", "invalid keep-git-dir"),
    ] {
        match GitRef::parse(bad) {
            Err(e) => assert!(e.contains(says), "{bad}: {e}"),
            // `#x?ref=y`: the query is part of the fragment, as in a URL.
            Ok(g) => assert_eq!(g.reference.as_deref(), Some("x?ref=y"), "{bad}"),
        }
    }
}

#[test]
fn ls_remote_listing_picks_branch_tag_or_head() {
    let listing = "aaaa\tHEAD\naaaa\trefs/heads/main\nbbbb\trefs/heads/dev\ncccc\trefs/tags/v1\ndddd\trefs/tags/v1^{}\neeee\trefs/tags/light\n";
    assert_eq!(pick(listing, None).unwrap().commit, "aaaa");
    let dev = pick(listing, Some("dev")).unwrap();
    assert_eq!(
        (dev.commit.as_str(), dev.fetch.as_str()),
        ("bbbb", "refs/heads/dev")
    );
    let v1 = pick(listing, Some("v1")).unwrap();
    assert_eq!(v1.commit, "dddd", "annotated tags are peeled");
    assert_eq!(v1.tag_object.as_deref(), Some("cccc"));
    assert_eq!(
        pick(listing, Some("refs/tags/light")).unwrap().commit,
        "eeee"
    );
    assert!(pick(listing, Some("nope")).is_none());
}

#[test]
fn tokens_become_an_authorization_header_for_http_only() {
    let mut secrets = BTreeMap::new();
    secrets.insert(
        "GIT_AUTH_TOKEN".into(),
        SecretSource::Value(b"tok".to_vec()),
    );
    secrets.insert(
        "GIT_AUTH_TOKEN.other.example".into(),
        SecretSource::Value(b"x".to_vec()),
    );
    let auth = GitAuth::from_secrets(&secrets);
    let https = GitRef::parse("https://git.example/r.git").unwrap();
    // base64("x-access-token:tok")
    assert_eq!(
        auth.config_env(&https),
        [
            ("GIT_CONFIG_COUNT", "1".to_owned()),
            ("GIT_CONFIG_KEY_0", "http.extraHeader".to_owned()),
            (
                "GIT_CONFIG_VALUE_0",
                "Authorization: basic eC1hY2Nlc3MtdG9rZW46dG9r".to_owned()
            )
        ]
    );
    let ssh = GitRef::parse("git@git.example:r.git").unwrap();
    assert!(auth.config_env(&ssh).is_empty());
}

fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
        .args(["-c", "init.defaultBranch=main"])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn resolves_and_checks_out_a_local_repository() {
    if Command::new("git").arg("--version").output().is_err() {
        println!("SKIPPED: resolves_and_checks_out_a_local_repository needs git");
        return;
    }
    let repo = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    git(repo.path(), &["init", "-q"]);
    std::fs::create_dir_all(repo.path().join("sub")).unwrap();
    std::fs::write(repo.path().join("sub/f.txt"), "v1").unwrap();
    git(repo.path(), &["add", "-A"]);
    git(repo.path(), &["commit", "-q", "-m", "one"]);
    let first = git(repo.path(), &["rev-parse", "HEAD"]);
    // A path remote: what `git` fetches from (URLs are parsed elsewhere).
    let gitref = GitRef {
        remote: repo.path().display().to_string(),
        reference: Some("main".into()),
        subdir: Some("sub".into()),
        ..GitRef::default()
    };
    let sources = GitSources::new(state.path(), GitAuth::default());
    let resolved = sources.resolve(&gitref, None).unwrap();
    assert_eq!(resolved.commit, first);
    assert_eq!(resolved.fetch, "refs/heads/main");
    let checkout = sources.checkout(&gitref, &resolved, false).unwrap();
    assert!(!checkout.join(".git").exists());
    let sub = GitSources::subdir(&checkout, &gitref, &resolved).unwrap();
    assert_eq!(std::fs::read_to_string(sub.join("f.txt")).unwrap(), "v1");
    let kept = sources.checkout(&gitref, &resolved, true).unwrap();
    assert!(kept.join(".git").is_dir());
    // The same commit is not fetched again.
    assert_eq!(
        sources.checkout(&gitref, &resolved, false).unwrap(),
        checkout
    );
    // --checksum: a prefix of the commit passes, another commit fails.
    assert!(sources.resolve(&gitref, Some(&first[..12])).is_ok());
    let err = sources.resolve(&gitref, Some("0000000")).unwrap_err();
    assert!(
        err.contains("does not match") && err.contains(&first),
        "{err}"
    );
    // The branch moves: a new build (new GitSources) sees the new commit.
    std::fs::write(repo.path().join("sub/f.txt"), "v2").unwrap();
    git(repo.path(), &["commit", "-q", "-am", "two"]);
    let second = git(repo.path(), &["rev-parse", "HEAD"]);
    let next = GitSources::new(state.path(), GitAuth::default());
    let moved = next.resolve(&gitref, None).unwrap();
    assert_eq!(moved.commit, second);
    let checkout = next.checkout(&gitref, &moved, false).unwrap();
    assert_eq!(
        std::fs::read_to_string(checkout.join("sub/f.txt")).unwrap(),
        "v2"
    );
    // The first commit, by hash, is still there to fetch.
    let pinned = GitRef {
        reference: Some(first.clone()),
        ..gitref.clone()
    };
    let old = next.resolve(&pinned, None).unwrap();
    let checkout = next.checkout(&pinned, &old, false).unwrap();
    assert_eq!(
        std::fs::read_to_string(checkout.join("sub/f.txt")).unwrap(),
        "v1"
    );
    let missing = GitRef {
        subdir: Some("nope".into()),
        ..gitref
    };
    let err = GitSources::subdir(&checkout, &missing, &old).unwrap_err();
    assert!(err.contains("subdir \"nope\""), "{err}");
}
