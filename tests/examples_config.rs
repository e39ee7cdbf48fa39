//! The examples are what the README's main command runs all at once
//! (`scripts/run-agent.sh` watches `examples/`): each must load cleanly,
//! and no two projects may publish the same host port, or one of them
//! could never come up beside the others.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::process::Command;

use berth_e2e as support;
use serde_json::Value;

#[test]
fn every_example_loads_and_their_host_ports_do_not_clash() {
    let examples = support::workspace_root().join("examples");
    let mut projects = Vec::new();
    for entry in std::fs::read_dir(&examples).unwrap() {
        let dir = entry.unwrap().path();
        let file = dir.join("compose.yaml");
        if file.is_file() {
            projects.push(file);
        }
    }
    projects.sort();
    assert!(projects.len() >= 4, "examples found: {projects:?}");

    // (host ip, host port, protocol) -> the project that publishes it.
    let mut published: BTreeMap<(String, String, String), String> = BTreeMap::new();
    for file in &projects {
        let out = Command::new(support::berth_bin())
            .args(["config", "--format", "json", "-f"])
            .arg(file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{} does not load:\n{}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let model: Value = serde_json::from_slice(&out.stdout).unwrap();
        let project = model["name"].as_str().unwrap().to_owned();
        for (service, def) in model["services"].as_object().unwrap() {
            for port in def["ports"].as_array().into_iter().flatten() {
                let Some(host_port) = port["published"].as_str() else {
                    continue; // ephemeral: no clash possible
                };
                let ip = port["host_ip"].as_str().unwrap_or("0.0.0.0").to_owned();
                let protocol = port["protocol"].as_str().unwrap_or("tcp").to_owned();
                // 0.0.0.0 overlaps every address of the same port.
                for (other, owner) in &published {
                    let overlaps = other.1 == host_port
                        && other.2 == protocol
                        && (other.0 == ip || other.0 == "0.0.0.0" || ip == "0.0.0.0");
                    assert!(
                        !overlaps,
                        "{project}/{service} publishes {ip}:{host_port}/{protocol}, \
                         which {owner} publishes too ({}:{}/{})",
                        other.0, other.1, other.2
                    );
                }
                published.insert(
                    (ip, host_port.to_owned(), protocol),
                    format!("{project}/{service}"),
                );
            }
        }
    }
    assert!(!published.is_empty(), "the examples publish no port at all");
}
