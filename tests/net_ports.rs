//! End-to-end: published ports across stops, starts and lost kernel
//! state, with the real `berth` in a private network namespace.
//!
//! - A stopped container frees its host ports (as Docker does): another
//!   project may take them, and the first one's start then fails naming
//!   the port and its holder; once free, it starts with the same port.
//! - After its nftables table and bridge are deleted by hand (what a
//!   reboot does to kernel state), the next `berth` that opens the state
//!   puts them back for the running containers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod net_support;
mod runtime_support;

use net_support::{assert_no_network_leftovers, get, local, nft_table, project, setup, try_get};
use runtime_support::{need_root, ok, text};

#[test]
fn a_stopped_container_frees_its_port_and_gets_it_back_at_start() {
    if !need_root("a_stopped_container_frees_its_port_and_gets_it_back_at_start") {
        return;
    }
    let root = setup("net-ports-stop");
    let a = project(
        &root,
        "a",
        &format!(
            "name: a\nservices:\n  web:\n{}    ports: [\"18081:80\"]\n",
            net_support::web_service("from-a")
        ),
    );
    let b = project(
        &root,
        "b",
        &format!(
            "name: b\nservices:\n  web:\n{}    ports: [\"18081:80\"]\n",
            net_support::web_service("from-b")
        ),
    );
    ok(root.run(&["up", "-d", "-f", &a]));
    assert_eq!(get(local(18081)), "from-a");
    // While a runs, b cannot have the port: the error names it and a.
    let out = root.run(&["up", "-d", "-f", &b]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("0.0.0.0:18081/tcp") && err.contains("container a-web-1 publishes it"),
        "{err}"
    );
    ok(root.run(&["down", "-f", &b]));

    let ports = root.inspect("a-web-1")["NetworkSettings"]["Ports"].clone();
    assert_eq!(
        ports,
        serde_json::json!({"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "18081"}]})
    );
    // Stopped, a publishes nothing and b takes the port.
    ok(root.run(&["compose", "-f", &a, "stop"]));
    let ports = root.inspect("a-web-1")["NetworkSettings"]["Ports"].clone();
    assert_eq!(ports, serde_json::json!({}), "a stopped container's ports");
    assert!(!nft_table().contains("dport 18081"), "{}", nft_table());
    assert!(
        try_get(local(18081)).is_err(),
        "a stopped container answers"
    );
    ok(root.run(&["up", "-d", "-f", &b]));
    assert_eq!(get(local(18081)), "from-b");
    // a cannot start while b holds it: the error names both.
    let out = root.run(&["compose", "-f", &a, "start"]);
    assert!(!out.status.success(), "a started on a taken port");
    let err = text(&out.stderr);
    assert!(
        err.contains(
            "cannot publish port 0.0.0.0:18081/tcp for a-web-1: container b-web-1 publishes it"
        ),
        "{err}"
    );
    let state = root.inspect("a-web-1");
    assert_eq!(state["State"]["Status"], "exited", "{state:#}");
    assert_eq!(get(local(18081)), "from-b", "b lost its port");
    // The top-level verbs on container names free and take ports too.
    assert_eq!(ok(root.run(&["stop", "b-web-1"])).trim(), "b-web-1");
    assert!(!nft_table().contains("dport 18081"), "{}", nft_table());
    ok(root.run(&["compose", "-f", &a, "start"]));
    assert_eq!(get(local(18081)), "from-a");
    let out = root.run(&["start", "b-web-1"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("container a-web-1 publishes it"),
        "{}",
        text(&out.stderr)
    );
    let ps = ok(root.run(&["ps"]));
    assert!(ps.contains("0.0.0.0:18081->80/tcp"), "{ps}");

    ok(root.run(&["down", "-f", &a]));
    ok(root.run(&["down", "-f", &b]));
    assert_no_network_leftovers(&root);
}

#[test]
fn ports_come_back_after_the_kernel_state_is_lost() {
    if !need_root("ports_come_back_after_the_kernel_state_is_lost") {
        return;
    }
    let root = setup("net-ports-restore");
    let file = project(
        &root,
        "r",
        &format!(
            "name: r\nservices:\n  web:\n{}    ports: [\"18082:80\"]\n  client:\n    image: busybox:latest\n    init: true\n    command: [\"sleep\", \"1000\"]\n",
            net_support::web_service("restored")
        ),
    );
    ok(root.run(&["up", "-d", "-f", &file]));
    assert_eq!(get(local(18082)), "restored");
    let bridge = root.inspect("r-web-1")["NetworkSettings"]["Networks"]["r_default"]["NetworkID"]
        .as_str()
        .map(|id| format!("br-{}", &id[..12]))
        .unwrap();
    // What a reboot does to kernel state (the namespaces survive here,
    // as they do while the containers run).
    let st = std::process::Command::new("nft")
        .args(["delete", "table", "ip", "berth"])
        .status()
        .unwrap();
    assert!(st.success());
    net_support::ip(&["link", "del", &bridge]);
    assert!(
        try_get(local(18082)).is_err(),
        "the port answers with no rules"
    );

    // Any berth that opens the state restores it: here `up`, with
    // nothing to change in the project.
    ok(root.run(&["up", "-d", "-f", &file]));
    assert!(nft_table().contains("dport 18082"), "{}", nft_table());
    assert_eq!(get(local(18082)), "restored");
    // The containers' interfaces are on the bridge again: they reach
    // each other.
    let web_ip = root.inspect("r-web-1")["NetworkSettings"]["Networks"]["r_default"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = net_support::exec(&root, "r-client-1", &format!("wget -qO- http://{web_ip}/"));
    assert_eq!(body, "restored");

    ok(root.run(&["down", "-f", &file]));
    assert_no_network_leftovers(&root);
}

#[test]
fn the_networking_of_a_container_removed_behind_berths_back_is_released() {
    if !need_root("the_networking_of_a_container_removed_behind_berths_back_is_released") {
        return;
    }
    let root = setup("net-ports-stale");
    let file = project(
        &root,
        "g",
        &format!(
            "name: g\nservices:\n  web:\n{}    ports: [\"18083:80\"]\n",
            net_support::web_service("gone")
        ),
    );
    ok(root.run(&["up", "-d", "-f", &file]));
    let id = root.inspect("g-web-1")["Id"].as_str().unwrap().to_owned();
    ok(root.run(&["compose", "-f", &file, "stop"]));
    // What a shim's `--rm` does: the container's folder and name go, and
    // nothing of berth's networking hears of it.
    std::fs::remove_dir_all(root.dir.join("containers").join(&id)).unwrap();
    std::fs::remove_file(root.dir.join("names").join("g-web-1")).unwrap();
    let endpoint = root.dir.join("endpoints").join(format!("{id}.json"));
    // A young record may be a create in flight elsewhere: kept.
    ok(root.run(&["compose", "-f", &file, "ps"]));
    assert!(endpoint.exists(), "a fresh endpoint was dropped");
    let st = std::process::Command::new("touch")
        .args(["-d", "2 minutes ago"])
        .arg(&endpoint)
        .status()
        .unwrap();
    assert!(st.success());
    ok(root.run(&["compose", "-f", &file, "ps"]));
    assert!(!endpoint.exists(), "the stale endpoint is still there");
    assert!(!root.dir.join("netns").join(&id).exists());
    let veths = net_support::veths_after_teardown();
    assert!(veths.trim().is_empty(), "{veths}");

    ok(root.run(&["down", "-f", &file]));
    assert_no_network_leftovers(&root);
}

#[test]
fn a_reboot_like_loss_of_everything_is_rebuilt_when_up_runs_again() {
    if !need_root("a_reboot_like_loss_of_everything_is_rebuilt_when_up_runs_again") {
        return;
    }
    let root = setup("net-ports-reboot");
    let file = project(
        &root,
        "b",
        &format!(
            "name: b\nservices:\n  web:\n{}    ports: [\"18084:80\"]\n",
            net_support::web_service("rebooted")
        ),
    );
    ok(root.run(&["up", "-d", "-f", &file]));
    assert_eq!(get(local(18084)), "rebooted");
    let id = root.inspect("b-web-1")["Id"].as_str().unwrap().to_owned();
    // A reboot: every process gone (SIGKILL, no berth hears of it), the
    // namespace's bind mount gone (its file stays), bridges, veths and
    // the nftables table gone.
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root.dir.join("containers").join(&id).join("state.json")).unwrap(),
    )
    .unwrap();
    for key in ["shim_pid", "pid"] {
        let pid = state[key].as_i64().unwrap();
        assert!(pid > 0, "{key}: {state:#}");
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status();
    }
    let dns_pid = std::fs::read_to_string(root.dir.join("networks/b_default/dns.pid")).unwrap();
    let _ = std::process::Command::new("kill")
        .args(["-9", dns_pid.trim()])
        .status();
    runtime_support::wait_long(&root, "b-web-1", "the container to be seen dead", |v| {
        v["State"]["Running"] == false
    });
    let netns = root.dir.join("netns").join(&id);
    let st = std::process::Command::new("umount")
        .arg(&netns)
        .status()
        .unwrap();
    assert!(st.success());
    let bridge = root.inspect("b-web-1")["NetworkSettings"]["Networks"]["b_default"]["NetworkID"]
        .as_str()
        .map(|id| format!("br-{}", &id[..12]))
        .unwrap();
    net_support::ip(&["link", "del", &bridge]);
    let st = std::process::Command::new("nft")
        .args(["delete", "table", "ip", "berth"])
        .status()
        .unwrap();
    assert!(st.success());
    assert!(try_get(local(18084)).is_err());

    // `up` brings it back (here recreated: a killed shim makes the runtime
    // report the container dead; after a real reboot the boot id tells it
    // exited and it is started): bridge, veth, rules and the network's DNS
    // server come back with it, on the same port.
    ok(root.run(&["up", "-d", "-f", &file]));
    assert_eq!(get(local(18084)), "rebooted");
    assert!(
        root.dir.join("networks/b_default/dns.pid").exists(),
        "the DNS server is not back"
    );

    // A stopped container whose namespace, bridge and rules are lost is
    // started again as it was: same container, same address, same port.
    ok(root.run(&["compose", "-f", &file, "stop"]));
    let before = root.inspect("b-web-1");
    let id = before["Id"].as_str().unwrap().to_owned();
    let st = std::process::Command::new("umount")
        .arg(root.dir.join("netns").join(&id))
        .status()
        .unwrap();
    assert!(st.success());
    net_support::ip(&["link", "del", &bridge]);
    let st = std::process::Command::new("nft")
        .args(["delete", "table", "ip", "berth"])
        .status()
        .unwrap();
    assert!(st.success());
    ok(root.run(&["compose", "-f", &file, "start"]));
    assert_eq!(get(local(18084)), "rebooted");
    let after = root.inspect("b-web-1");
    assert_eq!(after["Id"], before["Id"]);
    let address =
        |v: &serde_json::Value| v["NetworkSettings"]["Networks"]["b_default"]["IPAddress"].clone();
    assert_eq!(address(&after), address(&before));

    ok(root.run(&["down", "-f", &file]));
    assert_no_network_leftovers(&root);
}
