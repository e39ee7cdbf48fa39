//! Helpers for berth's end-to-end tests: where the `berth` binary and the
//! shared conformance data are.

use std::path::PathBuf;

/// The workspace root (this package's manifest directory).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared` beside the project root, read in place.
pub fn shared_dir() -> PathBuf {
    workspace_root().join("..").join("shared")
}

/// The `berth` binary under test: `$BERTH_BIN` when set, else the one cargo
/// built beside this test executable (`target/<profile>/berth`).
pub fn berth_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("BERTH_BIN") {
        return PathBuf::from(bin);
    }
    // current_exe is target/<profile>/deps/<test>-<hash>; the binary sits
    // two levels up.
    let exe = std::env::current_exe().unwrap_or_default();
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(PathBuf::from)
        .unwrap_or_default();
    profile_dir.join("berth")
}
