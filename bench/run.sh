#!/usr/bin/env bash
# Times create+start+wait of `true` on a busybox rootfs:
#   berth run --rm --network none --rootfs DIR true
#   berth run --rm --network none busybox true   (the same rootfs imported as
#                                                an image: overlayfs on its snapshot)
#   berth run --rm --network NET busybox true    (a bridge network made once by
#                                                `berth network create`: namespace,
#                                                veth, address, DNS records)
#   berth run --rm --network NET -p 127.0.0.1:18099:80 busybox true  (+ nft rule)
# beside podman and docker when they are installed and working, and the
# bare floor `unshare -mpnuif --mount-proc chroot DIR /bin/true`; measures the
# idle RSS of one shim. Writes bench/results/run.md.
# Targets (runtime issue): median <= 15 ms without network, 25 ms on a bridge
# network; shim < 2 MiB RSS. Everything runs in a private network namespace
# (the script re-executes itself under `unshare -n`): bridges and nft rules
# never touch the host's network.
#
#   bench/run.sh [--with-anchors]   # --with-anchors: install and build the
#                                   # anchors first (../shared/anchors)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
with_anchors=0
[ "${1:-}" = "--with-anchors" ] && with_anchors=1

if [ "$(id -u)" != 0 ]; then
  echo "bench/run.sh needs root (it runs containers)" >&2
  exit 1
fi
[ -x /bin/busybox ] || { apt-get update >/dev/null && apt-get install -y busybox-static >/dev/null; }
command -v hyperfine >/dev/null || { apt-get update >/dev/null && apt-get install -y hyperfine >/dev/null; }
if [ -z "${BERTH_RUN_BENCH_INNER:-}" ]; then
  if [ $with_anchors = 1 ]; then
    bash ../shared/anchors/host-prep.sh
    bash ../shared/anchors/start-daemons.sh || true
    bash ../shared/anchors/build-base.sh
  fi
  # The daemons (dockerd) stay in the host's namespace; the CLIs reach them
  # over unix sockets from the private one.
  export BERTH_RUN_BENCH_INNER=1
  exec unshare -n "$0" "$@"
fi
ip link set lo up

work=$(mktemp -d)
state="$work/state"
cleanup() {
  if [ -d "$state/containers" ]; then
    for id in $(ls "$state/containers"); do "$berth" --root "$state" rm -f "$id" >/dev/null 2>&1 || true; done
  fi
  # Stops its DNS server too.
  [ -n "${berth:-}" ] && "$berth" --root "$state" network rm benchnet >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p bench/results

# A busybox rootfs.
rootfs="$work/rootfs"
mkdir -p "$rootfs"/{bin,etc,tmp,proc,sys,dev,root}
cp /bin/busybox "$rootfs/bin/busybox"
for a in $(/bin/busybox --list); do [ -e "$rootfs/bin/$a" ] || ln -s busybox "$rootfs/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$rootfs/etc/group"

cargo build --release --locked --bin berth
berth="$root/target/release/berth"

# The same rootfs as an image, unpacked once into its snapshot up front.
tar -C "$rootfs" -cf "$work/busybox.tar" .
"$berth" --root "$state" image import "$work/busybox.tar" busybox:latest >/dev/null
"$berth" --root "$state" run --rm --network none busybox true
# The bridge network, made once (as `docker network create` would be).
"$berth" --root "$state" network create benchnet >/dev/null
"$berth" --root "$state" run --rm --network benchnet busybox true

names=("berth run --rm --network none --rootfs" "berth run --rm --network none IMAGE"
       "berth run --rm --network NET IMAGE" "berth run --rm --network NET -p 127.0.0.1:P:80 IMAGE"
       "floor: unshare -mpnuif --mount-proc chroot" "berth --version (one exec of the binary)")
cmds=("$berth --root $state run --rm --network none --rootfs $rootfs true"
      "$berth --root $state run --rm --network none busybox true"
      "$berth --root $state run --rm --network benchnet busybox true"
      "$berth --root $state run --rm --network benchnet -p 127.0.0.1:18099:80 busybox true"
      "unshare -mpnuif --mount-proc chroot $rootfs /bin/true"
      "$berth --version")
notes=()
if command -v podman >/dev/null && podman image exists local/busybox:1 2>/dev/null; then
  # crun (podman's default here) refuses hybrid cgroups while a controller
  # sits on cgroup2 (host-prep.sh's move of hugetlb can fail): runc then.
  podman_rt=""
  if ! crun_err=$(podman run --rm --network=none local/busybox:1 true 2>&1); then
    podman_rt="--runtime runc "
    notes+=("podman: crun refused to run here (\`${crun_err//$'\n'/ }\`); podman rows use \`--runtime runc\`")
  fi
  names+=("podman ${podman_rt}run --rm --network=none"); cmds+=("podman ${podman_rt}run --rm --network=none local/busybox:1 true")
  names+=("podman ${podman_rt}run --rm (default network)"); cmds+=("podman ${podman_rt}run --rm local/busybox:1 true")
else
  notes+=("podman: not measured (not installed, or local/busybox:1 not built; use --with-anchors)")
fi
if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  if ! docker image inspect local/busybox:1 >/dev/null 2>&1 && [ -f /tmp/anch/busybox-rootfs.tar ]; then
    docker import /tmp/anch/busybox-rootfs.tar local/busybox:1 >/dev/null
  fi
  if docker image inspect local/busybox:1 >/dev/null 2>&1; then
    names+=("docker run --rm --network=none"); cmds+=("docker run --rm --network=none local/busybox:1 true")
    names+=("docker run --rm (default bridge)"); cmds+=("docker run --rm local/busybox:1 true")
  else
    notes+=("docker: not measured (no local/busybox:1 image; use --with-anchors)")
  fi
else
  notes+=("docker: not measured (no docker daemon running; use --with-anchors)")
fi
args=()
for i in "${!cmds[@]}"; do args+=(-n "${names[$i]}" "${cmds[$i]}"); done
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
hyperfine -N --warmup 5 --runs 50 --export-markdown "$work/run.md" --export-json "$work/run.json" "${args[@]}"

# Idle RSS of one shim (and of the berth binary's size, which drives it).
# sync first: pages of a freshly built binary are dirty in the page cache and
# would show up as private memory of every process that maps them.
sync
id=$("$berth" --root "$state" run -d --network none --rootfs "$rootfs" sleep 1000)
# Idle: the shim drops its setup pages after a quiet second.
sleep 2
shim_pid=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['shim_pid'])" "$state/containers/$id/state.json")
shim_rss=$(ps -o rss= -p "$shim_pid" | tr -d ' ')
shim_pss=$(awk '/^Pss:/ {s+=$2} END {print s}' /proc/"$shim_pid"/smaps_rollup 2>/dev/null || echo "?")
shim_anon=$(awk '/^Anonymous:/ {s+=$2} END {print s}' /proc/"$shim_pid"/smaps_rollup 2>/dev/null || echo "?")
"$berth" --root "$state" rm -f "$id" >/dev/null
size=$(du -k "$berth" | cut -f1)
median() {
  python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['results'][int(sys.argv[2])]; print('%.1f' % (r['median']*1000))" "$work/run.json" "$1"
}
median_rootfs=$(median 0)
median_image=$(median 1)
median_net=$(median 2)
median_port=$(median 3)
# min / median / p90 of every row: on a shared machine the median alone
# can mislead.
spread=$(python3 - "$work/run.json" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    t = sorted(r["times"])
    p90 = t[min(len(t) - 1, int(round(0.9 * (len(t) - 1))))]
    print("| `%s` | %.1f | %.1f | %.1f |" % (r["command"], t[0] * 1000, r["median"] * 1000, p90 * 1000))
PY
)
load=$(cut -d' ' -f1-3 /proc/loadavg)

{
  echo "# Container start benchmark ($(date -u +%Y-%m-%d), $(nproc) cores, kernel $(uname -r))"
  echo
  echo "create + start + wait + remove of \`true\` on a busybox rootfs, no network:"
  echo "from the directory (\`--rootfs\`, bind-mounted) and from the same files imported"
  echo "as the image \`busybox\` (resolve it in the store, overlayfs on its snapshot,"
  echo "a fresh upper dir per container); then the image on a bridge network made"
  echo "once with \`berth network create\` (namespace, veth pair, address, DNS"
  echo "records, and with \`-p\` an nft rule, all made and removed per run), in a"
  echo "private network namespace."
  echo "hyperfine -N, 5 warmups, 50 runs. berth: release build, cgroups v1 (hybrid), written directly."
  echo "Load average (1, 5, 15 min) when the run started: ${load_before}; when it ended: ${load}."
  echo
  cat "$work/run.md"
  echo
  echo "| Command | min [ms] | median [ms] | p90 [ms] |"
  echo "|:---|---:|---:|---:|"
  echo "$spread"
  echo
  echo "| shim | value |"
  echo "|---|---|"
  echo "| idle RSS of one shim (\`ps -o rss\`) | ${shim_rss} KiB |"
  echo "| idle PSS of one shim (smaps_rollup) | ${shim_pss} KiB |"
  echo "| of which private anonymous (heap, stack, relocated data) | ${shim_anon} KiB |"
  echo "| berth binary size | ${size} KiB |"
  echo
  echo "Targets: median <= 15 ms without network (berth measured: ${median_rootfs} ms with --rootfs, ${median_image} ms from the image), <= 25 ms on a bridge network (measured: ${median_net} ms, ${median_port} ms with a published port); shim < 2 MiB RSS (measured: ${shim_rss} KiB)."
  echo
  echo "The shim is the whole berth binary re-executed: its RSS is mostly clean, shared"
  echo "text pages of that binary (the same pages for every shim); what each extra"
  echo "container costs is closer to the private anonymous figure. Getting RSS itself"
  echo "under 2 MiB needs a separate small shim binary (no clap/axum/tokio"
  echo "code touched), or a shim that re-execs a minimal entry point."
  echo
  echo "Other workloads may share this machine while it runs: compare medians and minimums,"
  echo "and the floor row with its quiet value (~3 ms here)."
  echo
  echo "Where the time goes, step by step, and what changed: bench/results/run-breakdown.md"
  echo "(measured separately with an instrumented build)."
  for n in "${notes[@]+"${notes[@]}"}"; do echo; echo "- $n"; done
} > bench/results/run.md
cat bench/results/run.md
