#!/usr/bin/env bash
# The whole test suite, on a fresh machine of this kind (root, Rust toolchain
# present). .ci/run calls exactly this. Installs what the tests need, says
# what is missing when it cannot.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo is not installed; install a Rust toolchain (rustup) first" >&2
  exit 1
fi
if [ ! -d ../shared/conformance ]; then
  echo "error: ../shared/conformance is missing: the conformance tests read it in place beside the project root" >&2
  exit 1
fi

need() { command -v "$1" >/dev/null 2>&1; }

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

# The network tests make bridges and published ports (nftables, applied by
# the `nft` binary) inside private network namespaces; `ip` sets lo up. The
# build tests need both too: RUN steps join berth's default bridge.
for tool in nft:nftables ip:iproute2; do
  if ! need "${tool%%:*}"; then
    if [ "$(id -u)" = 0 ] && need apt-get; then
      apt-get update
      DEBIAN_FRONTEND=noninteractive apt-get install -y "${tool#*:}"
    else
      echo "warning: ${tool%%:*} is missing (package ${tool#*:}): the network tests will fail" >&2
    fi
  fi
done
# The git sync tests (tests/agent_git*.rs) commit and push with the `git`
# binary, which the agent's `--git` also runs. The build source tests serve
# repositories with a real `git daemon` (in Debian's git package) and
# forward a real ssh-agent (openssh-client) into RUN --mount=type=ssh;
# without them those tests print SKIPPED.
for tool in git:git ssh-agent:openssh-client; do
  if ! need "${tool%%:*}"; then
    if [ "$(id -u)" = 0 ] && need apt-get; then
      apt-get update
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${tool#*:}" ||
        echo "warning: cannot install ${tool#*:}: the build tests that need ${tool%%:*} will print SKIPPED" >&2
    else
      echo "warning: ${tool%%:*} is missing (package ${tool#*:}): the build tests that need it will print SKIPPED" >&2
    fi
  fi
done
# The registry tests (tests/registry*.rs, and the inline cache one in
# tests/build_cache.rs) push to and pull from Debian's
# docker-registry (distribution v2) on 127.0.0.1, check interop with skopeo
# and umoci, and make an htpasswd file for the auth test and the token
# server's key and certificate (openssl). Without them those
# tests print SKIPPED.
for tool in docker-registry:docker-registry skopeo:skopeo umoci:umoci htpasswd:apache2-utils openssl:openssl; do
  if ! need "${tool%%:*}"; then
    if [ "$(id -u)" = 0 ] && need apt-get; then
      apt-get update
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${tool#*:}" ||
        echo "warning: cannot install ${tool#*:}: the registry tests that need ${tool%%:*} will print SKIPPED" >&2
    else
      echo "warning: ${tool%%:*} is missing (package ${tool#*:}): the registry tests that need it will print SKIPPED" >&2
    fi
  fi
done
# The cgroup v2 test (tests/cgroup2_vm.rs) boots a Debian kernel in qemu:
# both are unpacked once into a cache by tests/cgroup2-vm/fetch.sh (which
# returns at once when they are there).
if [ "$(id -u)" = 0 ] && need apt-get; then
  tests/cgroup2-vm/fetch.sh || echo "warning: cannot fetch qemu and a kernel: the cgroup v2 VM test will print SKIPPED" >&2
elif ! tests/cgroup2-vm/fetch.sh --check >/dev/null; then
  echo "warning: no qemu and kernel for the cgroup v2 VM test (needs root and apt-get to fetch): it will print SKIPPED" >&2
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT

# The end-to-end tests drive the real binary, so build it first.
cargo build --workspace --all-targets --locked
status=0
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$log" || status=$?

# The conformance pass counts, printed by the tests themselves (the run
# above captures test output). Exceptions and their reasons:
# spec/tests/CONFORMANCE_EXCEPTIONS.md.
echo
echo "== conformance (../shared/conformance, read in place)"
cargo test --locked -p berth-spec \
  --test dockerfile_conformance --test dockerignore --test dotenv_fixtures \
  --test yaml_conformance --test compose_model_conformance \
  --test compose_load_fixtures --test compose_load_cli --test compose_load_samples \
  --test compose_load_negative -- --nocapture --test-threads 1 2>/dev/null \
  | grep -oE '[A-Za-z][^.:]*: [0-9]+/[0-9]+.*' || true

# One closing line for the whole run.
echo
awk '/^test result:/ { p += $4; f += $6; i += $8 } END { printf "all tests: %d passed, %d failed, %d skipped\n", p, f, i }' "$log"
exit "$status"
