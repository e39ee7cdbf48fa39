//! What the reconciler needs to know about a container that the runtime
//! does not record: how many times the engine started it again (the
//! runtime counts its own restarts only since the last start), and
//! whether a start-first replacement left it out of service.
//!
//! Kept in `engine.json` inside the runtime's container folder, not in the
//! config's annotations: `config.json` is written once by `create` and
//! read by the shim, while these change with every start and stop. Living
//! in that folder, the file goes when the runtime removes the container.

use std::path::{Path, PathBuf};

use berth_reconcilers::BackendError;
use berth_runtime::Runtime;
use serde::{Deserialize, Serialize};

use super::error::io;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sidecar {
    pub restart_count: u32,
    /// Out of service (a start-first replacement not promoted yet, or a
    /// container one was promoted over). What the engine reports for a
    /// container with no network endpoint; one with an endpoint reports
    /// the endpoint's flag, which is what decides its traffic.
    #[serde(default)]
    pub standby: bool,
}

fn path(rt: &Runtime, id: &str) -> PathBuf {
    rt.state_root().container(id).path().join("engine.json")
}

/// The record, or the defaults when there is none (a container created by
/// `berth create` or an older berth).
pub fn load(rt: &Runtime, id: &str) -> Sidecar {
    std::fs::read(path(rt, id))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Writes atomically (temp + rename), so a concurrent `load` sees the old
/// record or the new one.
pub fn save(rt: &Runtime, id: &str, record: Sidecar) -> Result<(), BackendError> {
    let target = path(rt, id);
    let tmp = target.with_extension(format!("tmp.{}", std::process::id()));
    let bytes = serde_json::to_vec(&record)
        .map_err(|e| BackendError::new(berth_reconcilers::ErrorKind::Internal, e.to_string()))?;
    write(&tmp, &bytes)?;
    std::fs::rename(&tmp, &target).map_err(|e| io("rename into place", &target, e))
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), BackendError> {
    std::fs::write(path, bytes).map_err(|e| io("write", path, e))
}
