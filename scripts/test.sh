#!/usr/bin/env bash
# The whole test suite, on a fresh machine of this kind (root, Rust toolchain
# present). .ci/run calls exactly this. Installs what the tests need, says
# what is missing when it cannot.
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1; }
if ! need cargo; then
  echo "error: cargo is not installed; install a Rust toolchain (rustup) first" >&2
  exit 1
fi
if [ ! -d ../shared/conformance ]; then
  echo "error: ../shared/conformance is missing: the conformance tests read it in place beside the project root" >&2
  exit 1
fi

# The runtime's end-to-end tests build their container rootfs from a static
# busybox.
if [ ! -x /bin/busybox ]; then
  if [ "$(id -u)" = 0 ] && need apt-get; then
    apt-get update && apt-get install -y busybox-static
  else
    echo "warning: /bin/busybox is missing (apt-get install busybox-static); runtime e2e tests will fail" >&2
  fi
fi

# The end-to-end tests drive the real binary, so build it first.
cargo build --workspace --all-targets --locked
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
  # nextest does not run doctests
  cargo test --workspace --doc --locked
else
  cargo test --workspace --locked --no-fail-fast
fi
