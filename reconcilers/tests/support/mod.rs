//! Shared helpers: projects loaded from YAML through the real Compose
//! loader, a fake host with the images published, and plan/converge
//! shortcuts that assert on plan lines.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use berth_reconcilers::execute::ExecuteOptions;
use berth_reconcilers::fakes::{FakeClock, FakeHost};
use berth_reconcilers::{Clock, Plan, PlanOptions, Report, converge, execute, observe, plan};
use berth_spec::compose::model::Project;
use berth_spec::compose::{LoadOptions, load};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Loads `yaml` as project `shop`, as `berth up` would.
pub fn project(yaml: &str) -> Project {
    let dir = std::env::temp_dir().join(format!(
        "berth-reconcile-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("compose.yaml");
    std::fs::write(&file, yaml).unwrap();
    let loaded = load(&LoadOptions {
        files: vec![file],
        working_dir: dir.clone(),
        project_name: Some("shop".into()),
        ..LoadOptions::default()
    })
    .unwrap_or_else(|d| panic!("{d:?}"));
    std::fs::remove_dir_all(&dir).ok();
    loaded.project
}

pub const NGINX: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
pub const NGINX_2: &str = "sha256:1212121212121212121212121212121212121212121212121212121212121212";
pub const POSTGRES: &str =
    "sha256:2222222222222222222222222222222222222222222222222222222222222222";
pub const BUSYBOX: &str = "sha256:3333333333333333333333333333333333333333333333333333333333333333";

/// A host whose registry has nginx:1.25, postgres:16 and busybox.
pub fn host() -> FakeHost {
    let host = FakeHost::new(FakeClock::default());
    host.publish("nginx:1.25", NGINX);
    host.publish("postgres:16", POSTGRES);
    host.publish("busybox", BUSYBOX);
    host
}

pub fn opts(host: &FakeHost) -> PlanOptions {
    PlanOptions {
        now: host.clock().now(),
        ..PlanOptions::default()
    }
}

pub fn plan_with(host: &FakeHost, project: &Project, options: &PlanOptions) -> Plan {
    let observed = observe(project, host.backends()).unwrap();
    let mut options = options.clone();
    options.now = host.clock().now();
    plan(project, &observed, &options).unwrap()
}

pub fn plan_up(host: &FakeHost, project: &Project) -> Plan {
    plan_with(host, project, &opts(host))
}

pub fn exec(host: &FakeHost, plan: &Plan) -> Report {
    execute(
        plan,
        host.backends(),
        host.clock(),
        &ExecuteOptions::default(),
    )
}

/// Converges with `options` and returns every round's plan lines.
pub fn converge_with(
    host: &FakeHost,
    project: &Project,
    options: &PlanOptions,
) -> Vec<Vec<String>> {
    let rounds = converge(
        project,
        host.backends(),
        host.clock(),
        options,
        &ExecuteOptions::default(),
        5,
    )
    .unwrap();
    for (plan, report) in &rounds {
        assert!(report.succeeded(), "{:#?}\n{:#?}", plan.lines(), report);
    }
    rounds.iter().map(|(p, _)| p.lines()).collect()
}

pub fn up(host: &FakeHost, project: &Project) -> Vec<Vec<String>> {
    converge_with(host, project, &opts(host))
}

/// STYLE.md convention 7: on the converged state, a plan is empty.
pub fn assert_converged(host: &FakeHost, project: &Project, options: &PlanOptions) {
    let plan = plan_with(host, project, options);
    assert!(
        plan.is_empty(),
        "second plan not empty: {:#?}",
        plan.lines()
    );
}

/// Container ids by name.
pub fn ids(host: &FakeHost, project: &str) -> BTreeMap<String, String> {
    use berth_reconcilers::ContainerRuntime;
    host.list(project)
        .unwrap()
        .into_iter()
        .map(|c| (c.name, c.id))
        .collect()
}

pub fn running(host: &FakeHost) -> Vec<String> {
    host.container_states()
        .into_iter()
        .filter(|(_, s)| *s == berth_reconcilers::observed::ContainerState::Running)
        .map(|(n, _)| n)
        .collect()
}

pub fn tmp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(name)
}

/// db (healthcheck, volume, restart always) and two web replicas
/// waiting for it to be healthy.
pub const SHOP: &str = r#"
services:
  db:
    image: postgres:16
    volumes: [data:/var/lib/postgresql/data]
    healthcheck:
      test: pg_isready
    environment:
      POSTGRES_PASSWORD: secret
    restart: always
  web:
    image: nginx:1.25
    depends_on:
      db:
        condition: service_healthy
    ports: ["8080-8081:80"]
    environment:
      MODE: prod
      LOG: info
    deploy:
      replicas: 2
    restart: unless-stopped
volumes:
  data: {}
"#;

/// db <- api (restart: true) <- front (restart: true); db <- worker.
pub const CHAIN: &str = r#"
services:
  db:
    image: postgres:16
    environment: {V: "1"}
  api:
    image: nginx:1.25
    depends_on:
      db: {condition: service_started, restart: true}
  worker:
    image: busybox
    command: [sleep, infinity]
    depends_on: [db]
  front:
    image: nginx:1.25
    depends_on:
      api: {condition: service_started, restart: true}
"#;
