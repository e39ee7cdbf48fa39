//! The shared conformance suites (feature `fakes`): what every
//! implementation of the [`crate::traits`] must do, real or fake
//! (containerd's habit: one suite per interface, so the fakes stay honest).
//!
//! Each suite is a function over a [`Fixture`] that returns the first
//! broken rule as an `Err`, so it runs under any test harness:
//!
//! ```text
//! #[test]
//! fn my_runtime_conforms() {
//!     let fixture = Fixture { /* the real adapters */ };
//!     berth_reconcilers::conformance::all(&fixture).unwrap();
//! }
//! ```
//!
//! The suites create containers, volumes and networks under
//! `fixture.project` and remove what they created, so they can run on a
//! machine with other workloads.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::container::{ContainerSpec, Mount, NetworkAttachment, NetworkSpec, VolumeSpec, labels};
use crate::error::{BackendError, ErrorKind};
use crate::observed::{ContainerState, ObservedContainer};
use crate::restart::RestartPolicy;
use crate::traits::Backends;

/// What the suites run against.
pub struct Fixture<'a> {
    pub backends: Backends<'a>,
    /// A project name no one else uses.
    pub project: String,
    /// An image present locally that runs `command` for a long time.
    pub image: String,
    pub command: Vec<String>,
    /// A reference not present locally.
    pub missing_image: String,
    /// A reference `pull` can fetch, and one it cannot.
    pub pullable: String,
    pub not_in_registry: String,
}

/// A broken rule: which suite, and what happened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{suite}: {message}")]
pub struct Violation {
    pub suite: &'static str,
    pub message: String,
}

type Outcome = Result<(), Violation>;

fn fail(suite: &'static str, message: impl Into<String>) -> Violation {
    Violation {
        suite,
        message: message.into(),
    }
}

fn ensure(suite: &'static str, ok: bool, message: impl FnOnce() -> String) -> Outcome {
    if ok {
        Ok(())
    } else {
        Err(fail(suite, message()))
    }
}

fn expect_kind<T: std::fmt::Debug>(
    suite: &'static str,
    what: &str,
    result: Result<T, BackendError>,
    kind: ErrorKind,
) -> Outcome {
    match result {
        Err(e) if e.kind() == kind => Ok(()),
        other => Err(fail(
            suite,
            format!("{what}: expected {kind:?}, got {other:?}"),
        )),
    }
}

fn ok<T>(suite: &'static str, what: &str, result: Result<T, BackendError>) -> Result<T, Violation> {
    result.map_err(|e| fail(suite, format!("{what}: {e}")))
}

/// Every suite, in order.
pub fn all(f: &Fixture<'_>) -> Outcome {
    container_runtime(f)?;
    image_source(f)?;
    volume_store(f)?;
    network_store(f)
}

/// A minimal spec for replica `number` of service `service`.
pub fn spec(f: &Fixture<'_>, service: &str, number: u32) -> ContainerSpec {
    let labels = BTreeMap::from([
        (labels::PROJECT.to_string(), f.project.clone()),
        (labels::SERVICE.to_string(), service.to_string()),
        (labels::NUMBER.to_string(), number.to_string()),
        (labels::ONEOFF.to_string(), "False".to_string()),
        ("conformance".to_string(), "yes".to_string()),
    ]);
    ContainerSpec {
        name: format!("{}-{service}-{number}", f.project),
        project: f.project.clone(),
        service: service.into(),
        number,
        image: f.image.clone(),
        image_digest: None,
        entrypoint: None,
        command: Some(f.command.clone()),
        env: BTreeMap::new(),
        mounts: Vec::new(),
        files: Vec::new(),
        ports: Vec::new(),
        networks: Vec::new(),
        network_mode: None,
        mac_address: None,
        links: Vec::new(),
        resources: Default::default(),
        ulimits: Vec::new(),
        user: None,
        working_dir: None,
        hostname: None,
        domainname: None,
        read_only: false,
        privileged: false,
        tty: false,
        stdin_open: false,
        cap_add: Vec::new(),
        cap_drop: Vec::new(),
        init: false,
        sysctls: BTreeMap::new(),
        extra_hosts: Vec::new(),
        dns: Vec::new(),
        dns_search: Vec::new(),
        dns_opt: Vec::new(),
        devices: Vec::new(),
        security_opt: Vec::new(),
        group_add: Vec::new(),
        logging: None,
        post_start: Vec::new(),
        pre_stop: Vec::new(),
        stop_signal: None,
        stop_grace_period: Duration::from_secs(2),
        restart: RestartPolicy::default(),
        healthcheck: None,
        labels,
        hash_input: None,
    }
}

fn find(
    f: &Fixture<'_>,
    suite: &'static str,
    name: &str,
) -> Result<Option<ObservedContainer>, Violation> {
    let list = ok(suite, "list", f.backends.runtime.list(&f.project))?;
    Ok(list.into_iter().find(|c| c.name == name))
}

/// The [`crate::traits::ContainerRuntime`] lifecycle.
pub fn container_runtime(f: &Fixture<'_>) -> Outcome {
    const S: &str = "ContainerRuntime";
    let rt = f.backends.runtime;
    let s = spec(f, "conf", 1);
    let id = ok(S, "create", rt.create(&s))?;
    let c = find(f, S, &s.name)?.ok_or_else(|| fail(S, "a created container is listed"))?;
    ensure(S, c.id == id && c.state == ContainerState::Created, || {
        format!("created: id {} state {:?}", c.id, c.state)
    })?;
    ensure(
        S,
        c.labels.get("conformance").map(String::as_str) == Some("yes"),
        || "labels are kept as created".into(),
    )?;
    ensure(
        S,
        c.service() == Some("conf") && c.number() == Some(1),
        || "the service and number labels are read back".into(),
    )?;
    expect_kind(
        S,
        "a second create with the same name",
        rt.create(&s),
        ErrorKind::AlreadyExists,
    )?;
    ok(S, "start", rt.start(&id))?;
    ok(S, "a second start", rt.start(&id))?;
    let c = ok(S, "inspect", rt.inspect(&id))?;
    ensure(S, c.is_running() && c.restart_count == 0, || {
        format!("started: {:?}, restarts {}", c.state, c.restart_count)
    })?;
    expect_kind(
        S,
        "removing a running container",
        rt.remove(&id),
        ErrorKind::FailedPrecondition,
    )?;
    ok(S, "stop", rt.stop(&id, Duration::from_secs(2), None))?;
    ok(
        S,
        "stopping a stopped container",
        rt.stop(&id, Duration::from_secs(2), None),
    )?;
    let c = ok(S, "inspect", rt.inspect(&id))?;
    ensure(
        S,
        matches!(c.state, ContainerState::Exited(_)) && c.manually_stopped,
        || {
            format!(
                "stopped: {:?}, manually_stopped {}",
                c.state, c.manually_stopped
            )
        },
    )?;
    ok(S, "start after stop", rt.start(&id))?;
    let c = ok(S, "inspect", rt.inspect(&id))?;
    ensure(
        S,
        c.is_running() && c.restart_count == 1 && !c.manually_stopped,
        || format!("restarted: {:?}, restarts {}", c.state, c.restart_count),
    )?;
    ok(S, "stop", rt.stop(&id, Duration::from_secs(2), None))?;
    ok(S, "remove", rt.remove(&id))?;
    ensure(S, find(f, S, &s.name)?.is_none(), || {
        "a removed container is not listed".into()
    })?;
    expect_kind(S, "removing it again", rt.remove(&id), ErrorKind::NotFound)?;
    expect_kind(S, "inspecting it", rt.inspect(&id), ErrorKind::NotFound)?;
    expect_kind(S, "starting it", rt.start(&id), ErrorKind::NotFound)?;
    // A missing image fails create or start, with NotFound.
    let mut missing = spec(f, "conf", 2);
    missing.image = f.missing_image.clone();
    match rt.create(&missing) {
        Err(e) => ensure(S, e.kind() == ErrorKind::NotFound, || {
            format!("create with a missing image: {e}")
        })?,
        Ok(id) => {
            let started = rt.start(&id);
            ok(S, "cleanup", rt.remove(&id))?;
            expect_kind(
                S,
                "start with a missing image",
                started,
                ErrorKind::NotFound,
            )?;
        }
    }
    // Another project's containers are not listed.
    let other = ok(S, "list", rt.list(&format!("{}-other", f.project)))?;
    ensure(S, other.is_empty(), || {
        format!("another project lists {other:?}")
    })?;
    start_first(f)
}

/// Start-first replacement: a standby container is listed as such until
/// its promotion, which puts the container it replaces out of service.
fn start_first(f: &Fixture<'_>) -> Outcome {
    const S: &str = "ContainerRuntime start-first";
    let rt = f.backends.runtime;
    let old_spec = spec(f, "roll", 1);
    let old = ok(S, "create", rt.create(&old_spec))?;
    ok(S, "start", rt.start(&old))?;
    let new_spec = spec(f, "roll", 2);
    let new = ok(S, "create_standby", rt.create_standby(&new_spec, &old))?;
    let listed = |name: &str| -> Result<ObservedContainer, Violation> {
        find(f, S, name)?.ok_or_else(|| fail(S, format!("{name} is listed")))
    };
    let (o, n) = (listed(&old_spec.name)?, listed(&new_spec.name)?);
    ensure(S, !o.standby && n.standby, || {
        format!(
            "before promotion: old standby {}, new standby {}",
            o.standby, n.standby
        )
    })?;
    ok(S, "start the standby one", rt.start(&new))?;
    ensure(S, ok(S, "inspect", rt.inspect(&new))?.standby, || {
        "a standby container stays standby when started".into()
    })?;
    ok(S, "promote", rt.promote(&new, &old))?;
    let (o, n) = (listed(&old_spec.name)?, listed(&new_spec.name)?);
    ensure(S, o.standby && !n.standby && o.is_running(), || {
        format!(
            "after promotion: old standby {} ({:?}), new standby {}",
            o.standby, o.state, n.standby
        )
    })?;
    ok(S, "stop old", rt.stop(&old, Duration::from_secs(2), None))?;
    ok(S, "remove old", rt.remove(&old))?;
    ok(S, "promote again, the old one gone", rt.promote(&new, &old))?;
    ok(S, "stop new", rt.stop(&new, Duration::from_secs(2), None))?;
    ok(S, "remove new", rt.remove(&new))
}

/// The [`crate::traits::ImageSource`] lifecycle.
pub fn image_source(f: &Fixture<'_>) -> Outcome {
    const S: &str = "ImageSource";
    let images = f.backends.images;
    let absent = ok(S, "resolve", images.resolve(&f.missing_image))?;
    ensure(S, absent.is_none(), || {
        format!("a missing image resolves to {absent:?}")
    })?;
    let digest = ok(S, "pull", images.pull(&f.pullable))?;
    ensure(S, digest.starts_with("sha256:"), || {
        format!("pull returned {digest}")
    })?;
    let resolved = ok(S, "resolve", images.resolve(&f.pullable))?;
    ensure(S, resolved.as_deref() == Some(digest.as_str()), || {
        format!("after a pull, resolve gives {resolved:?}, not {digest}")
    })?;
    expect_kind(
        S,
        "pulling what the registry lacks",
        images.pull(&f.not_in_registry),
        ErrorKind::NotFound,
    )
}

/// The [`crate::traits::VolumeStore`] lifecycle.
pub fn volume_store(f: &Fixture<'_>) -> Outcome {
    const S: &str = "VolumeStore";
    let volumes = f.backends.volumes;
    let name = format!("{}_conf", f.project);
    let spec = VolumeSpec {
        name: name.clone(),
        driver: None,
        driver_opts: BTreeMap::new(),
        labels: BTreeMap::from([(labels::PROJECT.to_string(), f.project.clone())]),
    };
    ok(S, "create", volumes.create(&spec))?;
    let listed = ok(S, "list", volumes.list())?;
    ensure(
        S,
        listed
            .iter()
            .any(|v| v.name == name && v.labels == spec.labels),
        || format!("a created volume is listed with its labels: {listed:?}"),
    )?;
    expect_kind(
        S,
        "creating it again",
        volumes.create(&spec),
        ErrorKind::AlreadyExists,
    )?;
    // In use by a container, even a stopped one: not removable.
    let mut c = self::spec(f, "vol", 1);
    c.mounts.push(Mount::Volume {
        source: Some(name.clone()),
        target: "/data".into(),
        read_only: false,
        nocopy: false,
        subpath: None,
    });
    let id = ok(
        S,
        "create a container using it",
        f.backends.runtime.create(&c),
    )?;
    let in_use = volumes.remove(&name);
    ok(S, "cleanup", f.backends.runtime.remove(&id))?;
    expect_kind(
        S,
        "removing a volume in use",
        in_use,
        ErrorKind::FailedPrecondition,
    )?;
    ok(S, "remove", volumes.remove(&name))?;
    let listed = ok(S, "list", volumes.list())?;
    ensure(S, !listed.iter().any(|v| v.name == name), || {
        "a removed volume is not listed".into()
    })?;
    expect_kind(
        S,
        "removing it again",
        volumes.remove(&name),
        ErrorKind::NotFound,
    )
}

/// The [`crate::traits::NetworkStore`] lifecycle.
pub fn network_store(f: &Fixture<'_>) -> Outcome {
    const S: &str = "NetworkStore";
    let networks = f.backends.networks;
    let name = format!("{}_conf", f.project);
    let spec = NetworkSpec {
        name: name.clone(),
        driver: None,
        driver_opts: BTreeMap::new(),
        internal: false,
        enable_ipv6: false,
        subnets: Vec::new(),
        labels: BTreeMap::from([(labels::PROJECT.to_string(), f.project.clone())]),
    };
    ok(S, "create", networks.create(&spec))?;
    let listed = ok(S, "list", networks.list())?;
    ensure(
        S,
        listed
            .iter()
            .any(|n| n.name == name && n.labels == spec.labels),
        || format!("a created network is listed with its labels: {listed:?}"),
    )?;
    expect_kind(
        S,
        "creating it again",
        networks.create(&spec),
        ErrorKind::AlreadyExists,
    )?;
    let mut c = self::spec(f, "net", 1);
    c.networks.push(NetworkAttachment {
        name: name.clone(),
        aliases: vec!["net".into()],
        ipv4_address: None,
        ipv6_address: None,
        mac_address: None,
        priority: None,
        gw_priority: None,
        link_local_ips: Vec::new(),
        interface_name: None,
    });
    let rt = f.backends.runtime;
    let id = ok(S, "create a container on it", rt.create(&c))?;
    ok(S, "start it", rt.start(&id))?;
    let in_use = networks.remove(&name);
    ok(S, "cleanup", rt.stop(&id, Duration::from_secs(2), None))?;
    ok(S, "cleanup", rt.remove(&id))?;
    expect_kind(
        S,
        "removing a network with a running container",
        in_use,
        ErrorKind::FailedPrecondition,
    )?;
    ok(S, "remove", networks.remove(&name))?;
    expect_kind(
        S,
        "removing it again",
        networks.remove(&name),
        ErrorKind::NotFound,
    )
}
