#!/usr/bin/env bash
# The main job: build berth and run the agent on examples/, serving status on
# http://127.0.0.1:${BERTH_PORT:-7878}. Extra arguments go to `berth agent`.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo is not installed; install a Rust toolchain (rustup) first" >&2
  exit 1
fi
cargo build --release --locked --bin berth
exec ./target/release/berth agent --dir examples --listen "127.0.0.1:${BERTH_PORT:-7878}" "$@"
