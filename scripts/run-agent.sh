#!/usr/bin/env bash
# The main job: build berth and run the agent on examples/, serving status on
# http://127.0.0.1:${BERTH_PORT:-7878}. Extra arguments go to `berth agent`.
# With BERTH_GIT=URL set it follows that repository instead of examples/
# (BERTH_GIT_REF, BERTH_GIT_PATH, BERTH_GIT_TOKEN... as docs/gitops.md says).
#
# The examples build their images FROM busybox:latest, and offline there is
# no registry to pull it from: when the state root ($BERTH_ROOT, else
# /var/lib/berth) has no busybox:latest, it is imported from the host's
# static busybox first (scripts/make-busybox-image.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo is not installed; install a Rust toolchain (rustup) first" >&2
  exit 1
fi
cargo build --release --locked --bin berth
berth=./target/release/berth
if [ -z "$("$berth" images -q busybox:latest 2>/dev/null)" ]; then
  echo "busybox:latest is not in the state root; importing it from the host's busybox" >&2
  BERTH=$berth scripts/make-busybox-image.sh busybox:latest
fi
if [ -n "${BERTH_GIT:-}" ]; then
  # berth reads BERTH_GIT and the other BERTH_GIT_* variables itself.
  exec "$berth" agent --listen "127.0.0.1:${BERTH_PORT:-7878}" "$@"
fi
exec "$berth" agent --dir examples --listen "127.0.0.1:${BERTH_PORT:-7878}" "$@"
