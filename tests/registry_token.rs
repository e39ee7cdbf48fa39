//! End-to-end: `identitytoken` credentials (an OAuth2 refresh token in
//! `config.json`, as `az acr login` and Docker Desktop's SSO leave them)
//! against Debian's docker-registry in `auth: token:` mode, with a token
//! server that answers docker/distribution's refresh_token grant
//! (tests/registry_support/token_server.rs). Push and pull succeed with
//! the right refresh token, and a wrong one fails saying what to do.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod registry_support;
mod runtime_support;

use std::path::Path;
use std::process::Output;

use base64::Engine as _;
use berth_image::testing::{TestImage, docker_save, tar_of};
use registry_support::token_server::{SERVICE, TokenServer};
use registry_support::{TestRegistry, have, text};
use runtime_support::{Root, need_root};

const REFRESH_TOKEN: &str = "refresh-4a7c1e-only-this-one-works";

/// `berth --root R ARGS` with `DOCKER_CONFIG` set to `config`.
fn berth(root: &Root, config: &Path, args: &[&str]) -> Output {
    root.cmd(args)
        .env("DOCKER_CONFIG", config)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

/// A config.json as `az acr login` writes it: a placeholder user with no
/// password in `auth`, and the refresh token in `identitytoken`.
fn write_config(dir: &Path, registry: &str, identity_token: &str) {
    let auth =
        base64::engine::general_purpose::STANDARD.encode("00000000-0000-0000-0000-000000000000:");
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("config.json"),
        serde_json::json!({"auths": {registry: {"auth": auth, "identitytoken": identity_token}}})
            .to_string(),
    )
    .unwrap();
}

#[test]
fn identity_token_credentials_push_and_pull_and_a_wrong_one_is_refused() {
    if !need_root("identity token")
        || !have("openssl", "identity token")
        || !have("docker-registry", "identity token")
    {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let tokens = TokenServer::start(work.path(), REFRESH_TOKEN);
    let Some(reg) = TestRegistry::start_with_auth("identity_token", &tokens.registry_auth()) else {
        return;
    };
    let name = reg.name("team/hello:1");
    let a = Root::new("reg-token-push");
    let archive = a.dir.join("image.tar");
    std::fs::write(
        &archive,
        docker_save(&[TestImage::new(
            vec![tar_of(&[("hello.txt", b"hello through a token\n")])],
            &[&name],
        )]),
    )
    .unwrap();
    let good = work.path().join("good");
    write_config(&good, &reg.host(), REFRESH_TOKEN);
    let out = berth(&a, &good, &["load", "-i", archive.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));

    // The registry really wants a token: without credentials, no push.
    let none = work.path().join("none");
    std::fs::create_dir_all(&none).unwrap();
    let out = berth(&a, &none, &["push", &name]);
    assert!(!out.status.success(), "{}", text(&out));

    let out = berth(&a, &good, &["push", &name]);
    assert!(out.status.success(), "{}", text(&out));
    let b = Root::new("reg-token-pull");
    let out = berth(&b, &good, &["pull", &name]);
    assert!(out.status.success(), "{}", text(&out));
    let out = berth(&b, &good, &["image", "inspect", &name]);
    assert!(
        out.status.success(),
        "the pulled image is there: {}",
        text(&out)
    );

    // A second repository: its push mounts the layers of the first, with
    // a token that may also pull from there.
    let other = reg.name("team/other:1");
    let out = berth(&a, &good, &["tag", &name, &other]);
    assert!(out.status.success(), "{}", text(&out));
    let out = berth(&a, &good, &["push", &other]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Mounted from team/hello"),
        "{}",
        text(&out)
    );

    // What went to the token server: refresh_token grants, as the spec has
    // them, for the repository and the actions of each operation.
    let grants: Vec<_> = tokens
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter(|(m, p, _)| m == "POST" && p == "/token")
        .map(|(_, _, form)| form.clone())
        .collect();
    assert!(!grants.is_empty(), "no token request");
    for form in &grants {
        assert_eq!(form["grant_type"], "refresh_token", "{form:?}");
        assert_eq!(form["client_id"], "berth", "{form:?}");
        assert_eq!(form["service"], SERVICE, "{form:?}");
        assert_eq!(form["refresh_token"], REFRESH_TOKEN, "{form:?}");
    }
    let scopes: Vec<&str> = grants.iter().map(|f| f["scope"].as_str()).collect();
    assert!(
        scopes.contains(&"repository:team/hello:pull,push"),
        "{scopes:?}"
    );
    assert!(scopes.contains(&"repository:team/hello:pull"), "{scopes:?}");
    assert!(
        scopes.contains(&"repository:team/other:pull,push repository:team/hello:pull"),
        "{scopes:?}"
    );

    // A refresh token the server does not know: a clear refusal.
    let bad = work.path().join("bad");
    write_config(&bad, &reg.host(), "refresh-expired-long-ago");
    let c = Root::new("reg-token-bad");
    let out = berth(&c, &bad, &["pull", &name]);
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refused the identity token") && err.contains("log in again"),
        "says what failed and how to fix it: {err}"
    );
    assert!(err.contains("the refresh token is not valid"), "{err}");
}
