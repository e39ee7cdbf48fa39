//! `berth inspect NAME...`: a JSON array with Docker's field names where
//! they exist.

use std::process::ExitCode;

use berth_runtime::{ContainerInfo, Health, Healthcheck, LogDriver, Mount, Network, Rootfs};
use clap::Args;
use serde_json::{Value, json};

use super::GlobalOpts;
use crate::containers;

#[derive(Debug, Args)]
pub struct InspectArgs {
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn run(args: InspectArgs, global: &GlobalOpts) -> anyhow::Result<ExitCode> {
    let rt = super::run::runtime(global);
    let mut out = Vec::new();
    let mut code = ExitCode::SUCCESS;
    for c in &args.containers {
        match rt.inspect(c) {
            Ok(info) => {
                let mut v = to_json(&info, &rt);
                network_settings(&mut v, &info, global);
                out.push(v);
            }
            Err(e) => {
                eprintln!("berth: {c}: {e}");
                code = ExitCode::FAILURE;
            }
        }
    }
    println!("{}", serde_json::to_string_pretty(&Value::Array(out))?);
    Ok(code)
}

fn to_json(i: &ContainerInfo, rt: &berth_runtime::Runtime) -> Value {
    let c = &i.config;
    let s = &i.state;
    let r = &c.resources;
    let zero = "0001-01-01T00:00:00Z";
    let dir = rt.state_root().container(&c.id);
    let mounts: Vec<Value> = c
        .mounts
        .iter()
        .enumerate()
        .map(|(index, m)| match m {
            Mount::Bind {
                source,
                target,
                readonly,
                ..
            } => json!({
                "Type": "bind", "Source": source, "Destination": target, "RW": !readonly
            }),
            Mount::Tmpfs { target, .. } => {
                json!({"Type": "tmpfs", "Destination": target, "RW": true})
            }
            // A config or secret: the container sees the copy.
            Mount::File { target, .. } => json!({
                "Type": "bind", "Source": dir.path().join("files").join(index.to_string()),
                "Destination": target, "RW": false
            }),
        })
        .collect();
    // Docker: `Image` is the image ID, `Config.Image` the name as given.
    let (image_name, image_id) = containers::image_of(c).unwrap_or_default();
    let mut value = json!({
        "Id": c.id,
        "Created": s.created_at,
        "Image": image_id,
        "Path": c.process.args.first(),
        "Args": c.process.args.get(1..).unwrap_or(&[]),
        "State": {
            "Status": i.observed.status,
            // Docker counts a container waiting to be restarted as running.
            "Running": matches!(i.observed.status.as_str(), "running" | "restarting"),
            "Paused": false,
            "Restarting": i.observed.status == "restarting",
            "OOMKilled": s.oom_killed,
            "Dead": i.observed.status == "dead",
            "Pid": if i.observed.container_alive { s.pid } else { 0 },
            "ExitCode": s.exit_code.unwrap_or(0),
            "Signal": s.signal,
            "Error": s.error.clone().or(i.observed.reason.clone()).unwrap_or_default(),
            "StartedAt": s.started_at.as_deref().unwrap_or(zero),
            "FinishedAt": s.finished_at.as_deref().unwrap_or(zero),
            "ShimPid": s.shim_pid,
            "ShimAlive": i.observed.shim_alive,
        },
        "RestartCount": s.restart_count,
        "Name": format!("/{}", c.name),
        "LogPath": dir.log(),
        "HostConfig": {
            "Memory": r.memory.unwrap_or(0),
            "MemoryReservation": r.memory_reservation.unwrap_or(0),
            "MemorySwap": r.memory_swap.unwrap_or(if r.memory.is_some() { r.memory.unwrap_or(0) * 2 } else { 0 }),
            "NanoCpus": r.nano_cpus(),
            "CpuQuota": r.cpu_quota.unwrap_or(0),
            "CpuPeriod": r.cpu_period.unwrap_or(0),
            "CpuShares": r.cpu_shares.unwrap_or(0),
            "CpusetCpus": r.cpuset_cpus.clone().unwrap_or_default(),
            "CpusetMems": r.cpuset_mems.clone().unwrap_or_default(),
            "PidsLimit": r.pids_limit,
            "Init": c.init,
            "AutoRemove": c.auto_remove,
            "RestartPolicy": {
                "Name": c.restart_policy.condition.as_str(),
                "MaximumRetryCount": c.restart_policy.maximum_retry_count,
            },
            "NetworkMode": match &c.network { Network::None => "none".to_owned(), Network::Host => "host".to_owned(), Network::Join(p) => format!("ns:{}", p.display()) },
            "LogConfig": {"Type": match c.log.driver { LogDriver::JsonFile => "json-file", LogDriver::None => "none" }, "Config": {
                "max-size": c.log.max_size.map(|s| s.to_string()),
                "max-file": c.log.max_files.to_string(),
            }},
            "Privileged": c.security.privileged,
            "CapAdd": c.security.cap_add,
            "CapDrop": c.security.cap_drop,
            "ReadonlyRootfs": c.security.readonly_rootfs,
            "SecurityOpt": c.security.no_new_privileges.then_some(["no-new-privileges"]),
            "GroupAdd": c.process.additional_groups,
            "Ulimits": c.rlimits.iter().map(|u| json!({"Name": u.name, "Soft": u.soft, "Hard": u.hard})).collect::<Vec<_>>(),
            "Sysctls": c.sysctls,
            "Devices": c.devices.iter().map(|d| json!({
                "PathOnHost": d.path_on_host, "PathInContainer": d.path_in_container, "CgroupPermissions": d.permissions,
            })).collect::<Vec<_>>(),
            "ShmSize": c.shm_size.unwrap_or(berth_runtime::DEFAULT_SHM_SIZE),
            "OomScoreAdj": c.oom_score_adj.unwrap_or(0),
            "OomKillDisable": r.oom_kill_disable,
            "MemorySwappiness": r.memory_swappiness,
        },
        "Config": {
            "Hostname": c.effective_hostname(),
            "Domainname": c.domainname.clone().unwrap_or_default(),
            "Image": image_name,
            "User": c.process.user.clone().unwrap_or_default(),
            "Env": c.process.env,
            "Cmd": c.process.args,
            "WorkingDir": c.process.cwd.clone().unwrap_or_default(),
            "Labels": c.labels,
            "StopSignal": c.stop_signal.clone().unwrap_or_else(|| "SIGTERM".to_owned()),
            "StopTimeout": c.stop_timeout,
        },
        "Mounts": mounts,
        "GraphDriver": match &c.rootfs {
            Rootfs::Dir(d) => json!({"Name": "rootfs-dir", "Data": {"Dir": d}}),
            Rootfs::Layers(l) => json!({"Name": "overlay", "Data": {"LowerDirs": l, "UpperDir": dir.upper(), "WorkDir": dir.work()}}),
        },
    });
    if let Some(h) = &s.health {
        value["State"]["Health"] = health_json(h);
    }
    if let Some(h) = &c.healthcheck {
        value["Config"]["Healthcheck"] = healthcheck_json(h);
    }
    value
}

/// `State.Health`, with Docker's field names.
fn health_json(h: &Health) -> Value {
    json!({
        "Status": h.status.as_str(),
        "FailingStreak": h.failing_streak,
        "Log": h.log.iter().map(|r| json!({
            "Start": r.start,
            "End": r.end,
            "ExitCode": r.exit_code,
            "Output": r.output,
        })).collect::<Vec<_>>(),
    })
}

/// Docker's `NetworkSettings`: the container's address on each network,
/// its published ports, and its namespace (`SandboxKey`).
fn network_settings(v: &mut Value, i: &ContainerInfo, global: &GlobalOpts) {
    let net = berth_net::Net::open(&global.root);
    let Ok(Some(ep)) = net.endpoint(&i.config.id) else {
        v["NetworkSettings"] = json!({"Networks": {}, "Ports": {}});
        return;
    };
    // Docker names the network here, not the namespace it is made of.
    if let Some(first) = ep.attachments.first() {
        v["HostConfig"]["NetworkMode"] = json!(first.network);
    }
    let mut ports = serde_json::Map::new();
    // As Docker's: a container that does not run publishes nothing (its
    // ports are free for others until it starts).
    let publishing = ep.running && i.observed.status == "running";
    for p in ep.ports.iter().filter(|_| publishing) {
        let key = format!("{}/{}", p.container_port, p.protocol.as_str());
        let binding = json!({"HostIp": p.host_ip.to_string(), "HostPort": p.host_port.to_string()});
        match ports.get_mut(&key).and_then(Value::as_array_mut) {
            Some(list) => list.push(binding),
            None => {
                ports.insert(key, json!([binding]));
            }
        }
    }
    let mut networks = serde_json::Map::new();
    for a in &ep.attachments {
        let n = net.network(&a.network).ok();
        networks.insert(
            a.network.clone(),
            json!({
                "NetworkID": n.as_ref().map(|n| n.id.clone()).unwrap_or_default(),
                "IPAddress": a.ip.to_string(),
                "IPPrefixLen": n.as_ref().map(|n| n.subnet.prefix()).unwrap_or(0),
                "Gateway": n.as_ref().map(|n| n.gateway.to_string()).unwrap_or_default(),
                "GlobalIPv6Address": a.ip6.map(|ip| ip.to_string()).unwrap_or_default(),
                "GlobalIPv6PrefixLen": n.as_ref().and_then(|n| n.subnet6).map(|s| s.prefix()).unwrap_or(0),
                "IPv6Gateway": n.as_ref().and_then(|n| n.gateway6).map(|g| g.to_string()).unwrap_or_default(),
                "MacAddress": a.mac,
                "Aliases": a.aliases,
                "DNSNames": [&ep.container_name],
            }),
        );
    }
    v["NetworkSettings"] = json!({
        "SandboxKey": ep.netns,
        "Ports": ports,
        "Networks": networks,
    });
}

/// `Config.Healthcheck`: durations in nanoseconds, zero values left out,
/// as Docker prints them.
fn healthcheck_json(h: &Healthcheck) -> Value {
    let mut v = json!({"Test": h.test});
    for (key, d) in [
        ("Interval", h.interval),
        ("Timeout", h.timeout),
        ("StartPeriod", h.start_period),
        ("StartInterval", h.start_interval),
    ] {
        if let Some(d) = d.filter(|d| !d.is_zero()) {
            v[key] = json!(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        }
    }
    if let Some(r) = h.retries.filter(|r| *r > 0) {
        v["Retries"] = json!(r);
    }
    v
}
