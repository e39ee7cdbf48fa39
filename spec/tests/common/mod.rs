//! Shared helpers for the compose model tests: fixture paths and YAML
//! loading (serde_norway stands in for the real parser in these tests).
#![allow(dead_code)]

use std::path::PathBuf;

/// `../shared/conformance/compose`, read in place. Fails loudly when the
/// shared fixtures are missing so a silent "0 tests" never passes.
pub fn conformance_dir() -> PathBuf {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/conformance/compose"
    ));
    assert!(
        dir.is_dir(),
        "the shared conformance fixtures are missing: expected {} (they live outside the repository, next to it)",
        dir.display()
    );
    dir
}

pub fn load_yaml(path: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    yaml_to_json(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn yaml_to_json(text: &str) -> Result<serde_json::Value, String> {
    let mut v: serde_norway::Value = serde_norway::from_str(text).map_err(|e| e.to_string())?;
    v.apply_merge().map_err(|e| e.to_string())?;
    serde_json::to_value(v).map_err(|e| e.to_string())
}
