#!/usr/bin/env bash
# Times `berth build` of a small multi-stage Dockerfile (three stages on a
# busybox base, two built in parallel, COPY --from both into the last):
#   cold           build cache pruned before each run (base image unpacked)
#   fully cached   nothing changed: no step runs
#   one-file change  a file of the first stage's context changes before each
#                  run: its COPY, the RUN after it and the final COPY --from
#                  run again, every other step comes from the cache
# beside `buildah bud --layers` and `docker build` (BuildKit) when they are
# installed and working, and writes bench/results/build.md.
# Targets (images issue): cold < 500 ms, fully cached < 40 ms.
#
#   bench/build.sh [--with-anchors]   # --with-anchors: install and start the
#                                     # anchors first (../shared/anchors)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
with_anchors=0
[ "${1:-}" = "--with-anchors" ] && with_anchors=1

if [ "$(id -u)" != 0 ]; then
  echo "bench/build.sh needs root (RUN steps are containers)" >&2
  exit 1
fi
[ -x /bin/busybox ] || { apt-get update >/dev/null && apt-get install -y busybox-static >/dev/null; }
command -v hyperfine >/dev/null || { apt-get update >/dev/null && apt-get install -y hyperfine >/dev/null; }
if [ $with_anchors = 1 ]; then
  bash ../shared/anchors/host-prep.sh
  bash ../shared/anchors/start-daemons.sh || true
  bash ../shared/anchors/build-base.sh
fi

# RUN steps join berth's default bridge (berth0): the berth runs below
# make it in a network namespace of the bench's own, not on the host.
if [ -z "${BERTH_BENCH_NETNS:-}" ]; then
  exec env BERTH_BENCH_NETNS=1 unshare -n "$0"
fi
ip link set lo up

work=$(mktemp -d)
state="$work/state"
cleanup() {
  [ "${buildah_ok:-0}" = 1 ] && buildah rmi bench:1 >/dev/null 2>&1
  if [ -d "$state/containers" ]; then
    for id in $(ls "$state/containers"); do "$berth" --root "$state" rm -f "$id" >/dev/null 2>&1 || true; done
  fi
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p bench/results

# The base: the static busybox as a one-layer image (as the anchors'
# local/busybox:1), imported and unpacked once.
rootfs="$work/rootfs"
mkdir -p "$rootfs"/{bin,etc,tmp}
cp /bin/busybox "$rootfs/bin/busybox"
for a in $(/bin/busybox --list); do [ -e "$rootfs/bin/$a" ] || ln -s busybox "$rootfs/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$rootfs/etc/passwd"
printf 'root:x:0:\n' > "$rootfs/etc/group"
tar -C "$rootfs" -cf "$work/busybox.tar" .

cargo build --release --locked --bin berth
berth="$root/target/release/berth"
"$berth" --root "$state" image import "$work/busybox.tar" local/busybox:1 >/dev/null

ctx="$work/ctx"
mkdir -p "$ctx/src" "$ctx/assets"
echo a > "$ctx/src/a.txt"
echo b > "$ctx/src/b.txt"
for i in 1 2 3 4 5; do echo "asset $i" > "$ctx/assets/$i.txt"; done
echo "conf" > "$ctx/app.conf"
cat > "$ctx/Dockerfile" <<'DOCKERFILE'
FROM local/busybox:1 AS build
WORKDIR /src
COPY src/ ./
RUN cat a.txt b.txt > /out.txt && echo built

FROM local/busybox:1 AS assets
COPY assets/ /assets/
RUN ls /assets > /list.txt

FROM local/busybox:1
ENV APP=/app
COPY --from=build /out.txt /app/out.txt
COPY --from=assets /list.txt /app/list.txt
COPY app.conf /app/
LABEL org.example.bench=build
CMD ["cat", "/app/out.txt"]
DOCKERFILE

b="$berth --root $state"
$b build -q -t bench:1 "$ctx" >/dev/null
# The one-file change must rebuild only the steps after it: checked once.
echo "$RANDOM" > "$ctx/src/a.txt"
changed=$($b build -t bench:1 "$ctx" 2>&1 | grep -o '([0-9]* steps run, [0-9]* cached)')
cached=$($b build -t bench:1 "$ctx" 2>&1 | grep -o '([0-9]* steps run, [0-9]* cached)')

names=("berth build, cold (cache pruned)" "berth build, fully cached" "berth build, one file changed")
cmds=("$b build -q -t bench:1 $ctx" "$b build -q -t bench:1 $ctx" "$b build -q -t bench:1 $ctx")
prepares=("$b builder prune --all" "true" "sh -c 'echo \$\$ > $ctx/src/a.txt'")
notes=()

buildah_ok=0
if command -v buildah >/dev/null && buildah images local/busybox:1 >/dev/null 2>&1; then
  sed 's#local/busybox:1#localhost/local/busybox:1#' "$ctx/Dockerfile" > "$work/Dockerfile.buildah"
  # crun refuses hybrid cgroups until host-prep.sh has moved hugetlb: probe once.
  if buildah bud --layers -q -f "$work/Dockerfile.buildah" -t bench:1 "$ctx" >"$work/buildah.log" 2>&1; then
    buildah_ok=1
  fi
fi
if [ $buildah_ok = 1 ]; then
  names+=("buildah bud --layers, fully cached" "buildah bud --layers, one file changed")
  cmds+=("buildah bud --layers -q -f $work/Dockerfile.buildah -t bench:1 $ctx" "buildah bud --layers -q -f $work/Dockerfile.buildah -t bench:1 $ctx")
  prepares+=("true" "sh -c 'echo \$\$ > $ctx/src/a.txt'")
else
  why="not installed or no local/busybox:1"
  if grep -q "hybrid mode not supported" "$work/buildah.log" 2>/dev/null; then
    why="its RUN fails here: crun refuses hybrid cgroups until ../shared/anchors/host-prep.sh moves hugetlb"
  elif [ -s "$work/buildah.log" ]; then
    why="its build fails here: $(tail -n 1 "$work/buildah.log")"
  fi
  notes+=("buildah: not measured ($why; use --with-anchors). Anchor figures: 1294 ms cold, 278 ms cached.")
fi
# A docker client that can build with BuildKit: newer clients need the
# buildx plugin, which Debian does not package; its 20.10 client builds
# with BuildKit itself. The first on PATH that can is used.
docker=""
for d in $(which -a docker 2>/dev/null); do
  if "$d" buildx version >/dev/null 2>&1 ||
    "$d" version --format '{{.Client.Version}}' 2>/dev/null | grep -Eq '^(19|20|21|22)\.'; then
    docker=$d
    break
  fi
done
if [ -n "$docker" ] && "$docker" info >/dev/null 2>&1 && "$docker" image inspect local/busybox:1 >/dev/null 2>&1; then
  names+=("docker build (BuildKit), fully cached" "docker build (BuildKit), one file changed")
  cmds+=("env DOCKER_BUILDKIT=1 $docker build -q -t bench:1 $ctx" "env DOCKER_BUILDKIT=1 $docker build -q -t bench:1 $ctx")
  prepares+=("true" "sh -c 'echo \$\$ > $ctx/src/a.txt'")
else
  notes+=("docker: not measured (no daemon, no BuildKit-capable client or no local/busybox:1; use --with-anchors). Anchor figures (BuildKit): 671 ms cold, 79 ms cached.")
fi

args=()
for i in "${!cmds[@]}"; do args+=(--prepare "${prepares[$i]}" -n "${names[$i]}" "${cmds[$i]}"); done
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
hyperfine -N --warmup 3 --runs 20 --export-markdown "$work/build.md" --export-json "$work/build.json" "${args[@]}"
load=$(cut -d' ' -f1-3 /proc/loadavg)
median() {
  python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['results'][int(sys.argv[2])]; print('%.1f' % (r['median']*1000))" "$work/build.json" "$1"
}

{
  echo "# Build benchmark ($(date -u +%Y-%m-%d), $(nproc) cores, kernel $(uname -r))"
  echo
  echo "A three-stage Dockerfile on a one-layer busybox image (\`bench/build.sh\` writes it):"
  echo "two independent stages (COPY + RUN each, built in parallel), the last copies from both."
  echo "berth: release build; hyperfine -N, 3 warmups, 20 runs."
  echo "Load average (1, 5, 15 min) when the run started: ${load_before}; when it ended: ${load}."
  echo
  cat "$work/build.md"
  echo
  echo "Steps run after a one-file change (checked before timing): ${changed}; with nothing changed: ${cached}."
  echo
  echo "Targets: cold < 500 ms (measured $(median 0) ms), fully cached < 40 ms (measured $(median 1) ms)."
  echo "Anchors measured on this machine (../shared/anchors/README.md): buildah bud --layers 1294 ms cold / 278 ms cached;"
  echo "docker BuildKit 671 / 79 ms; docker classic builder 1145 / 83 ms."
  echo
  echo "RUN steps run on berth's default bridge (made in the bench's own network namespace), as docker build's do on docker0:"
  echo "attaching and detaching a step cost 10-25 ms on this machine (interleaved runs against --network none, 2026-12-05)."
  echo
  echo "The machine is shared with other builds while this runs: compare medians and minimums."
  for n in "${notes[@]+"${notes[@]}"}"; do echo; echo "- $n"; done
} > bench/results/build.md
cat bench/results/build.md
