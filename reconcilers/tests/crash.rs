//! "SIGKILL at every point", with fakes: execute a plan, let the agent
//! "die" after k mutating calls for every k, then restart it (re-observe,
//! re-plan, execute) and check that the machine ends exactly where an
//! uninterrupted run ends: same containers, same configs, no duplicates,
//! nothing leaked, and a final plan that is empty.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeMap;

use berth_reconcilers::ContainerRuntime;
use berth_reconcilers::fakes::FakeHost;
use berth_reconcilers::observed::ContainerState;
use berth_spec::compose::model::Project;
use support::*;

const BEFORE: &str = r#"
services:
  db:
    image: postgres:16
    volumes: [data:/var/lib/postgresql/data]
    environment: {V: "1"}
    restart: always
  api:
    image: nginx:1.25
    depends_on:
      db: {condition: service_started, restart: true}
  web:
    image: nginx:1.25
    deploy: {replicas: 3}
    depends_on: [api]
  cache:
    image: busybox
    command: [sleep, infinity]
volumes:
  data: {}
"#;

/// Everything changes at once: db's config (api restarts with it), web
/// scales down, cache is gone (orphan), a one-shot and a new network
/// appear, and nginx's digest moved.
const AFTER: &str = r#"
services:
  db:
    image: postgres:16
    volumes: [data:/var/lib/postgresql/data]
    environment: {V: "2"}
    restart: always
  migrate:
    image: busybox
    command: [echo, done]
    depends_on: [db]
  api:
    image: nginx:1.25
    networks: [default, back]
    depends_on:
      db: {condition: service_started, restart: true}
      migrate: {condition: service_completed_successfully}
  web:
    image: nginx:1.25
    deploy: {replicas: 1}
    depends_on: [api]
volumes:
  data: {}
networks:
  back: {}
"#;

/// What identifies the end state: each container's state, config hash and
/// image digest; the volumes and networks.
type Snapshot = (
    BTreeMap<String, (ContainerState, String, String)>,
    Vec<String>,
    Vec<String>,
);

fn snapshot(host: &FakeHost) -> Snapshot {
    let containers = host
        .list("shop")
        .unwrap()
        .into_iter()
        .map(|c| {
            let hash = c.config_hash().unwrap_or_default().to_string();
            let digest = c.image_digest().unwrap_or_default().to_string();
            (c.name, (c.state, hash, digest))
        })
        .collect();
    (containers, host.volume_names(), host.network_names())
}

/// A host in the state `setup` leaves, with `migrate` exiting 0 on start.
fn prepared(setup: Option<&Project>) -> FakeHost {
    let host = host();
    host.crash_loop("migrate", 0);
    if let Some(p) = setup {
        up(&host, p);
        host.publish("nginx:1.25", NGINX_2);
        host.add_image("nginx:1.25", NGINX_2);
    }
    host.clear_calls();
    host
}

fn crash_everywhere(setup: Option<&Project>, target: &Project) {
    // The uninterrupted run: how many mutating calls, and where it ends.
    let reference = prepared(setup);
    let rounds = up(&reference, target);
    assert_eq!(rounds.len(), 1, "{rounds:#?}");
    let calls = reference.calls().len();
    let expected = snapshot(&reference);
    assert!(calls > 10, "{calls}");
    for k in 0..=calls {
        let host = prepared(setup);
        host.crash_after(k);
        let report = exec(&host, &plan_up(&host, target));
        assert_eq!(report.succeeded(), k == calls, "k={k}");
        host.recover();
        up(&host, target);
        let got = snapshot(&host);
        assert_eq!(got, expected, "k={k}: {:#?}", host.calls());
        // No two containers claim one replica.
        let mut replicas: Vec<(String, String)> = host
            .list("shop")
            .unwrap()
            .iter()
            .map(|c| (c.service().unwrap().into(), c.number().unwrap().to_string()))
            .collect();
        let n = replicas.len();
        replicas.sort();
        replicas.dedup();
        assert_eq!(replicas.len(), n, "k={k}");
        assert_converged(&host, target, &opts(&host));
    }
}

#[test]
fn a_first_deploy_survives_a_crash_at_every_call() {
    crash_everywhere(None, &project(AFTER));
}

#[test]
fn an_update_survives_a_crash_at_every_call() {
    let before = project(BEFORE);
    let after = project(AFTER);
    crash_everywhere(Some(&before), &after);
    // And the uninterrupted update plans what the rules say.
    let host = prepared(Some(&before));
    assert_eq!(
        plan_up(&host, &after).lines(),
        [
            "0 RemoveContainer shop-cache-1 [Orphaned: service \"cache\" is no longer declared]",
            "0 Recreate shop-db-1 [ConfigChanged: environment changed]",
            "0 CreateNetwork shop_back [ResourceMissing: network shop_back does not exist]",
            "0 RemoveContainer shop-web-3 [ScaledDown: service wants 1 replica(s)]",
            "0 RemoveContainer shop-web-2 [ScaledDown: service wants 1 replica(s)]",
            "1 CreateContainer shop-migrate-1 [ContainerMissing: replica 1 has no container]",
            "2 Recreate shop-api-1 [ConfigChanged: networks changed; ImageDigestChanged: nginx:1.25 is now sha256:121212121212, the container runs sha256:111111111111]",
            "3 Recreate shop-web-1 [ImageDigestChanged: nginx:1.25 is now sha256:121212121212, the container runs sha256:111111111111]",
        ]
    );
}
