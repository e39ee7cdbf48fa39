use std::path::PathBuf;

use berth_build::{BuildNetwork, DockerfileSource, Entitlements, ExtraHost, SecretSource};
use berth_reconcilers::ErrorKind;
use berth_reconcilers::container::BuildRequest;
use berth_runtime::Rlimit;
use berth_spec::compose::model::{BuildConfig, FileRef, SecretConfig, Ulimit};

use super::{base_images, translate};

fn request(build: BuildConfig) -> BuildRequest {
    BuildRequest {
        service: "web".into(),
        reference: "shop-web".into(),
        build: BuildConfig {
            context: Some("/src/web".into()),
            ..build
        },
        secrets: Default::default(),
        service_images: Default::default(),
    }
}

fn no_remote(url: &str, _: &berth_build::BuildRequest) -> Result<PathBuf, String> {
    Err(format!("{url} cannot be reached from a unit test"))
}

fn no_env(_: &str) -> Option<String> {
    None
}

#[test]
fn context_dockerfile_target_labels_and_tags() {
    let mut b = BuildConfig {
        dockerfile: Some("docker/Dockerfile.prod".into()),
        target: Some("runtime".into()),
        tags: vec!["registry.local/web:1".into(), "shop-web".into()],
        no_cache: true,
        shm_size: Some(berth_spec::compose::model::ByteSize(64 << 20)),
        ..BuildConfig::default()
    };
    b.labels.insert("team".into(), "shop".into());
    let r = translate(&request(b), &no_env, &no_remote).unwrap();
    assert_eq!(r.context, PathBuf::from("/src/web"));
    assert_eq!(
        r.dockerfile,
        Some(DockerfileSource::Path(PathBuf::from(
            "/src/web/docker/Dockerfile.prod"
        )))
    );
    assert_eq!(r.target.as_deref(), Some("runtime"));
    assert_eq!(r.labels.get("team").map(String::as_str), Some("shop"));
    // The service's reference first, the extra tags after, no duplicate.
    assert_eq!(r.tags, vec!["shop-web", "registry.local/web:1"]);
    assert!(r.no_cache);
    assert_eq!(r.shm_size, Some(64 << 20));
    // Unset: the default bridge, as with docker compose.
    assert_eq!(r.network, BuildNetwork::Default);
    assert!(r.extra_hosts.is_empty() && r.ulimits.is_empty());
    assert_eq!(r.entitlements, Entitlements::default());
}

#[test]
fn absolute_dockerfile_and_inline() {
    let b = BuildConfig {
        dockerfile: Some("/elsewhere/Dockerfile".into()),
        ..BuildConfig::default()
    };
    let r = translate(&request(b), &no_env, &no_remote).unwrap();
    assert_eq!(
        r.dockerfile,
        Some(DockerfileSource::Path("/elsewhere/Dockerfile".into()))
    );
    let b = BuildConfig {
        dockerfile_inline: Some("FROM busybox\n".into()),
        ..BuildConfig::default()
    };
    let r = translate(&request(b), &no_env, &no_remote).unwrap();
    assert_eq!(
        r.dockerfile,
        Some(DockerfileSource::Inline("FROM busybox\n".into()))
    );
}

#[test]
fn args_without_value_come_from_the_environment_or_are_left_out() {
    let mut b = BuildConfig::default();
    b.args.insert("GIVEN".into(), Some("1".into()));
    b.args.insert("FROM_ENV".into(), None);
    b.args.insert("UNSET".into(), None);
    let env = |k: &str| (k == "FROM_ENV").then(|| "from-env".to_string());
    let r = translate(&request(b), &env, &no_remote).unwrap();
    assert_eq!(r.build_args.get("GIVEN").map(String::as_str), Some("1"));
    assert_eq!(
        r.build_args.get("FROM_ENV").map(String::as_str),
        Some("from-env")
    );
    assert!(!r.build_args.contains_key("UNSET"));
}

#[test]
fn secrets_from_file_environment_and_content() {
    let b = BuildConfig {
        secrets: vec![
            FileRef {
                source: "npmrc".into(),
                ..FileRef::default()
            },
            FileRef {
                source: "token".into(),
                target: Some("api_token".into()),
                ..FileRef::default()
            },
        ],
        ..BuildConfig::default()
    };
    let mut r = request(b);
    r.secrets.insert(
        "npmrc".into(),
        SecretConfig {
            file: Some("/src/.npmrc".into()),
            ..SecretConfig::default()
        },
    );
    r.secrets.insert(
        "token".into(),
        SecretConfig {
            environment: Some("TOKEN".into()),
            ..SecretConfig::default()
        },
    );
    let env = |k: &str| (k == "TOKEN").then(|| "s3cret".to_string());
    let out = translate(&r, &env, &no_remote).unwrap();
    assert_eq!(
        out.secrets.get("npmrc"),
        Some(&SecretSource::File("/src/.npmrc".into()))
    );
    assert_eq!(
        out.secrets.get("api_token"),
        Some(&SecretSource::Value(b"s3cret".to_vec()))
    );
    let err = translate(&r, &no_env, &no_remote).unwrap_err();
    assert!(err.to_string().contains("TOKEN"), "{err}");
}

#[test]
fn network_and_platforms() {
    let b = BuildConfig {
        network: Some("host".into()),
        platforms: vec![
            "linux/arm/v7".into(),
            format!("linux/{}", berth_image::platform::host_arch()),
        ],
        ..BuildConfig::default()
    };
    let r = translate(&request(b), &no_env, &no_remote).unwrap();
    assert_eq!(r.network, BuildNetwork::Host);
    assert_eq!(
        r.platform,
        Some(format!("linux/{}", berth_image::platform::host_arch()))
    );
    let b = BuildConfig {
        platforms: vec!["linux/s390x".into()],
        ..BuildConfig::default()
    };
    let err = translate(&request(b), &no_env, &no_remote).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(err.to_string().contains("host platform"), "{err}");
}

#[test]
fn unsupported_keys_are_refused_naming_the_key_and_service() {
    let cases: Vec<(BuildConfig, &str)> = vec![
        (
            BuildConfig {
                network: Some("container:db".into()),
                ..BuildConfig::default()
            },
            "build.network",
        ),
        (
            BuildConfig {
                entitlements: vec!["device".into()],
                ..BuildConfig::default()
            },
            "build.entitlements",
        ),
        (
            BuildConfig {
                context: Some("https://github.com/x/y.git".into()),
                ..BuildConfig::default()
            },
            "build.context",
        ),
        (
            BuildConfig {
                dockerfile: Some("Dockerfile".into()),
                dockerfile_inline: Some("FROM scratch".into()),
                ..BuildConfig::default()
            },
            "build.dockerfile",
        ),
    ];
    for (b, key) in cases {
        let remote = b.context.clone();
        let mut r = request(b);
        if remote.is_some() {
            r.build.context = remote;
        }
        let err = translate(&r, &no_env, &no_remote).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(key), "{key}: {text}");
        assert!(text.contains("\"web\""), "{key}: {text}");
    }
    // An additional context naming no service is refused by name.
    let mut b = BuildConfig::default();
    b.additional_contexts
        .insert("assets".into(), "service:nothere".into());
    let err = translate(&request(b), &no_env, &no_remote).unwrap_err();
    assert!(
        err.to_string()
            .contains("build.additional_contexts.assets: service \"nothere\""),
        "{err}"
    );
}

#[test]
fn cache_from_and_isolation_are_accepted() {
    let b = BuildConfig {
        cache_from: vec!["shop-web:cache".into()],
        cache_to: vec!["type=local,dest=/tmp/c".into()],
        isolation: Some("process".into()),
        ..BuildConfig::default()
    };
    let r = translate(&request(b), &no_env, &no_remote).unwrap();
    assert_eq!(r.cache_from, vec!["shop-web:cache"]);
    // type=local is warned about, not exported.
    assert!(!r.inline_cache);
}

#[test]
fn cache_to_inline_writes_the_inline_cache() {
    let b = BuildConfig {
        cache_to: vec!["type=gha".into(), "type=inline".into()],
        ..BuildConfig::default()
    };
    let r = translate(&request(b), &no_env, &no_remote).unwrap();
    assert!(r.inline_cache);
}

#[test]
fn base_images_are_the_needed_stages_bases_without_scratch_or_stages() {
    let inline = |text: &str, target: Option<&str>| berth_build::BuildRequest {
        context: "/nonexistent".into(),
        dockerfile: Some(DockerfileSource::Inline(text.into())),
        target: target.map(str::to_owned),
        build_args: [("VERSION".to_owned(), "1.36".to_owned())].into(),
        ..berth_build::BuildRequest::default()
    };
    let text = "ARG VERSION=1.0\nFROM busybox:${VERSION} AS base\nFROM scratch AS empty\nFROM base AS dev\nFROM alpine:3 AS tools\nFROM base\nCOPY --from=empty / /\n";
    assert_eq!(
        base_images(&inline(text, None)).unwrap(),
        vec!["busybox:1.36".to_owned()]
    );
    assert_eq!(
        base_images(&inline(text, Some("tools"))).unwrap(),
        vec!["alpine:3".to_owned()]
    );
}

#[test]
fn ssh_entries_take_the_agent_from_the_environment() {
    let b = BuildConfig {
        ssh: vec![
            berth_spec::compose::model::SshKey {
                id: "default".into(),
                path: None,
            },
            berth_spec::compose::model::SshKey {
                id: "deploy".into(),
                path: Some("/keys/a,/keys/b".into()),
            },
        ],
        ..BuildConfig::default()
    };
    let env = |k: &str| (k == "SSH_AUTH_SOCK").then(|| "/run/agent.sock".to_string());
    let r = translate(&request(b.clone()), &env, &no_remote).unwrap();
    assert_eq!(r.ssh["default"], vec![PathBuf::from("/run/agent.sock")]);
    assert_eq!(
        r.ssh["deploy"],
        vec![PathBuf::from("/keys/a"), PathBuf::from("/keys/b")]
    );
    let err = translate(&request(b), &no_env, &no_remote).unwrap_err();
    assert!(
        err.to_string()
            .contains("build.ssh: default: SSH_AUTH_SOCK"),
        "{err}"
    );
}

#[test]
fn additional_contexts_become_named_contexts() {
    use berth_build::NamedContext;
    let mut b = BuildConfig::default();
    b.additional_contexts
        .insert("src".into(), "/src/shared".into());
    b.additional_contexts
        .insert("base".into(), "docker-image://busybox:1".into());
    b.additional_contexts
        .insert("api".into(), "service:api".into());
    b.additional_contexts
        .insert("lib".into(), "https://git.example/lib.git#v1".into());
    let mut r = request(b);
    r.service_images.insert("api".into(), "shop-api".into());
    let out = translate(&r, &no_env, &no_remote).unwrap();
    assert_eq!(
        out.named_contexts["src"],
        NamedContext::Dir("/src/shared".into())
    );
    assert_eq!(
        out.named_contexts["base"],
        NamedContext::Image("busybox:1".into())
    );
    assert_eq!(
        out.named_contexts["api"],
        NamedContext::Image("shop-api".into())
    );
    assert_eq!(
        out.named_contexts["lib"],
        NamedContext::Git("https://git.example/lib.git#v1".into())
    );
    r.build
        .additional_contexts
        .insert("img".into(), "oci-layout:///x".into());
    let err = translate(&r, &no_env, &no_remote).unwrap_err();
    assert!(
        err.to_string().contains("build.additional_contexts.img"),
        "{err}"
    );
    assert!(err.to_string().contains("OCI layout"), "{err}");
}

#[test]
fn a_git_context_is_checked_out_and_the_dockerfile_is_inside_it() {
    let b = BuildConfig {
        context: Some("https://git.example/app.git#main:web".into()),
        dockerfile: Some("docker/Dockerfile".into()),
        ..BuildConfig::default()
    };
    let mut r = request(b);
    r.build.context = Some("https://git.example/app.git#main:web".into());
    let checkout = |url: &str, _: &berth_build::BuildRequest| {
        assert_eq!(url, "https://git.example/app.git#main:web");
        Ok(PathBuf::from("/state/build/git/checkouts/abc/web"))
    };
    let out = translate(&r, &no_env, &checkout).unwrap();
    assert_eq!(
        out.context,
        PathBuf::from("/state/build/git/checkouts/abc/web")
    );
    assert_eq!(
        out.dockerfile,
        Some(DockerfileSource::Path(
            "/state/build/git/checkouts/abc/web/docker/Dockerfile".into()
        ))
    );
    let err = translate(&r, &no_env, &no_remote).unwrap_err();
    assert!(err.to_string().contains("build.context"), "{err}");
}

/// A `build:` section as the loader decodes it.
fn decode(value: serde_json::Value) -> BuildConfig {
    serde_json::from_value(value).unwrap()
}

#[test]
fn extra_hosts_in_every_compose_form() {
    let listed = decode(serde_json::json!({"extra_hosts": [
        "db:10.0.0.9",
        "cache=10.0.0.10",
        "v6:[2001:db8::7]",
        "bare6=::1",
        "gw=host-gateway",
    ]}));
    let r = translate(&request(listed), &no_env, &no_remote).unwrap();
    let host = |n: &str, a: &str| ExtraHost::new(n, a).unwrap();
    assert_eq!(
        r.extra_hosts,
        [
            host("db", "10.0.0.9"),
            host("cache", "10.0.0.10"),
            host("v6", "2001:db8::7"),
            host("bare6", "::1"),
            host("gw", "host-gateway"),
        ]
    );
    let mapped = decode(serde_json::json!({"extra_hosts": {
        "db": "10.0.0.9",
        "multi": ["10.0.0.1", "10.0.0.2"],
    }}));
    let r = translate(&request(mapped), &no_env, &no_remote).unwrap();
    assert_eq!(
        r.extra_hosts,
        [
            host("db", "10.0.0.9"),
            host("multi", "10.0.0.1"),
            host("multi", "10.0.0.2"),
        ]
    );
    for bad in [
        serde_json::json!({"extra_hosts": ["db:nope"]}),
        serde_json::json!({"extra_hosts": {"db": null}}),
    ] {
        let err = translate(&request(decode(bad.clone())), &no_env, &no_remote).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        let msg = err.to_string();
        assert!(
            msg.contains("build.extra_hosts") && msg.contains("for extra host db"),
            "{bad}: {msg}"
        );
    }
}

#[test]
fn privileged_and_entitlements_grant_what_they_name() {
    let r = translate(
        &request(BuildConfig {
            privileged: true,
            ..BuildConfig::default()
        }),
        &no_env,
        &no_remote,
    )
    .unwrap();
    assert_eq!(
        r.entitlements,
        Entitlements {
            security_insecure: true,
            network_host: false
        }
    );
    let r = translate(
        &request(BuildConfig {
            entitlements: vec!["network.host".into(), "security.insecure".into()],
            ..BuildConfig::default()
        }),
        &no_env,
        &no_remote,
    )
    .unwrap();
    assert_eq!(
        r.entitlements,
        Entitlements {
            security_insecure: true,
            network_host: true
        }
    );
    // `berth build --allow a,b`.
    assert_eq!(
        super::entitlements(&["network.host,security.insecure".into()], false).unwrap(),
        r.entitlements
    );
}

#[test]
fn networks_by_name() {
    let net = |n: &str| {
        translate(
            &request(BuildConfig {
                network: Some(n.into()),
                ..BuildConfig::default()
            }),
            &no_env,
            &no_remote,
        )
        .map(|r| r.network)
    };
    assert_eq!(net("default").unwrap(), BuildNetwork::Default);
    assert_eq!(net("none").unwrap(), BuildNetwork::None);
    assert_eq!(net("mynet").unwrap(), BuildNetwork::Named("mynet".into()));
    let err = net("").unwrap_err().to_string();
    assert!(err.contains("build.network"), "{err}");
}

#[test]
fn ulimits_single_and_ranged() {
    let mut b = BuildConfig::default();
    b.ulimits.insert("nproc".into(), Ulimit::Single(512));
    b.ulimits.insert(
        "nofile".into(),
        Ulimit::Range {
            soft: 1024,
            hard: 2048,
        },
    );
    let r = translate(&request(b), &no_env, &no_remote).unwrap();
    let limit = |name: &str, soft, hard| Rlimit {
        name: name.into(),
        soft,
        hard,
    };
    assert_eq!(
        r.ulimits,
        [limit("nproc", 512, 512), limit("nofile", 1024, 2048)]
    );
    let mut bad = BuildConfig::default();
    bad.ulimits.insert(
        "nofile".into(),
        Ulimit::Range {
            soft: 4096,
            hard: 1024,
        },
    );
    let err = translate(&request(bad), &no_env, &no_remote)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("build.ulimits") && err.contains("soft limit"),
        "{err}"
    );
    let mut unknown = BuildConfig::default();
    unknown.ulimits.insert("files".into(), Ulimit::Single(1));
    let err = translate(&request(unknown), &no_env, &no_remote)
        .unwrap_err()
        .to_string();
    assert!(err.contains("invalid ulimit type: files"), "{err}");
}

#[test]
fn ulimits_above_the_host_stay_as_asked() {
    // Above any host's fs.nr_open: the runtime clamps it when it sets it,
    // but the request (and so RUN steps' cache keys) keeps the value
    // written, which does not depend on the host.
    let huge = 1_i64 << 40;
    let mut b = BuildConfig::default();
    b.ulimits.insert(
        "nofile".into(),
        Ulimit::Range {
            soft: huge,
            hard: huge,
        },
    );
    let r = translate(&request(b), &no_env, &no_remote).unwrap();
    assert_eq!(
        r.ulimits,
        [Rlimit {
            name: "nofile".into(),
            soft: huge,
            hard: huge,
        }]
    );
}
