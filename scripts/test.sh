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

# The image tests build a busybox rootfs from Debian's static busybox (there
# is no registry to pull one from). Installed only when missing.
if [ ! -x /bin/busybox ]; then
  if [ "$(id -u)" = 0 ] && need apt-get; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y busybox-static
  else
    echo "warning: /bin/busybox is missing and cannot be installed here (needs root and apt-get): the busybox image tests will print 'skipped'" >&2
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
