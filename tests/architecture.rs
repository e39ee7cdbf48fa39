//! The dependency rules of ARCHITECTURE.md, checked against `cargo metadata`.

use std::collections::BTreeMap;
use std::process::Command;

/// Which of our crates each crate may depend on (normal dependencies).
fn allowed() -> BTreeMap<&'static str, &'static [&'static str]> {
    BTreeMap::from([
        ("berth-spec", &[][..]),
        ("berth-image", &[][..]),
        ("berth-runtime", &[][..]),
        ("berth-net", &[][..]),
        (
            "berth-build",
            &["berth-spec", "berth-image", "berth-runtime"][..],
        ),
        ("berth-reconcilers", &["berth-spec"][..]),
        (
            "berth-agent",
            &[
                "berth-spec",
                "berth-image",
                "berth-runtime",
                "berth-net",
                "berth-build",
                "berth-reconcilers",
            ][..],
        ),
    ])
}

/// Crates that must stay free of async runtimes and I/O frameworks: the
/// parsers, and the reconciler core (tested with fakes, driven by the agent).
const PURE: &[&str] = &["berth-spec", "berth-reconcilers"];
const IMPURE_DEPS: &[&str] = &["tokio", "axum", "nix", "reqwest", "hyper"];

#[test]
fn crate_dependencies_follow_architecture_md() {
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(berth_e2e::workspace_root())
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let allowed = allowed();
    let mut checked = 0;
    for package in meta["packages"].as_array().unwrap() {
        let name = package["name"].as_str().unwrap();
        let Some(allowed_ours) = allowed.get(name) else {
            continue;
        };
        checked += 1;
        for dep in package["dependencies"].as_array().unwrap() {
            let dep_name = dep["name"].as_str().unwrap();
            let is_normal = dep["kind"].is_null();
            if dep_name.starts_with("berth-") && is_normal {
                assert!(
                    allowed_ours.contains(&dep_name),
                    "{name} depends on {dep_name}, which ARCHITECTURE.md does not allow"
                );
            }
            if PURE.contains(&name) && is_normal {
                assert!(
                    !IMPURE_DEPS.contains(&dep_name),
                    "{name} must stay pure but depends on {dep_name}"
                );
            }
            if name != "berth-agent" && is_normal {
                assert_ne!(dep_name, "anyhow", "{name}: anyhow is only for the agent");
            }
        }
    }
    assert_eq!(
        checked,
        allowed.len(),
        "every crate of ARCHITECTURE.md was found"
    );
}
