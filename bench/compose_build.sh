#!/usr/bin/env bash
# What checking built images costs a no-op `up -d`: examples/visits (4
# services, 3 images built from Dockerfiles: each observation digests their
# build inputs, re-reading only files whose stat changed) against the same
# project on the plain busybox image; then with 2000 more files in one
# context. Runs in a private network namespace; takes everything down at
# the end, even on failure. Writes bench/results/compose_build.md.
#
#   bench/compose_build.sh [--runs N] [--debug]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
runs=20
profile=release
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --debug) profile=debug; shift ;;
    *) echo "usage: $0 [--runs N] [--debug]" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "$0 needs root (it runs containers)" >&2; exit 1; }
command -v hyperfine >/dev/null || { echo "install hyperfine" >&2; exit 1; }
if [ "$profile" = release ]; then cargo build --release --locked --bin berth; else cargo build --bin berth; fi
export BERTH_BIN="$root/target/$profile/berth" WORK RUNS=$runs ROOT=$root
WORK=$(mktemp -d)
unshare -n bash -euo pipefail <<'INNER'
st=$WORK/state
b() { "$BERTH_BIN" --root "$st" "$@"; }
cleanup() {
  (cd "$WORK/built" 2>/dev/null && b down >/dev/null 2>&1) || true
  (cd "$WORK/plain" 2>/dev/null && b down >/dev/null 2>&1) || true
}
trap cleanup EXIT
ip link set lo up
BERTH=$BERTH_BIN "$ROOT/scripts/make-busybox-image.sh" --root "$st" >/dev/null
cp -r "$ROOT/examples/visits" "$WORK/built"
mkdir "$WORK/plain"
cp -r "$ROOT/examples/visits/"{web,store,proxy} "$WORK/plain/"
# The same images by name, without build: (the cost of checking them).
sed -e 's|^    build: ./store$|    image: visits-store|' -e 's|^    build: ./proxy$|    image: visits-proxy|' \
  -e '/^    build: .\/web$/d' -e 's/^name: visits/name: plain/' -e 's/8080:80/8081:80/' \
  "$ROOT/examples/visits/compose.yaml" > "$WORK/plain/compose.yaml"
(cd "$WORK/built" && b up -d >/dev/null 2>&1)
(cd "$WORK/plain" && b up -d >/dev/null 2>&1)
bench() { # label dir
  (cd "$2" && hyperfine -N -w 3 -r "$RUNS" --export-markdown "$WORK/h.md" "$BERTH_BIN --root $st up -d" >/dev/null)
  sed -n 3p "$WORK/h.md" | sed "s/^| [^|]*|/| $1 |/" >> "$WORK/out.md"
}
bench "no-op up -d, visits' images by name (no build:)" "$WORK/plain"
bench "no-op up -d, visits (3 images with build:)" "$WORK/built"
mkdir -p "$WORK/built/web/static"
for i in $(seq 1 2000); do echo "$i" > "$WORK/built/web/static/f$i"; done
(cd "$WORK/built" && b up -d >/dev/null 2>&1)
bench "no-op up -d, built, +2000 files in one context" "$WORK/built"
INNER
{
  echo "# No-op \`up -d\` with built images ($profile build, $(date -u +%Y-%m-%d))"
  echo
  echo "| case | mean [ms] | min [ms] | max [ms] | relative |"
  echo "|:---|---:|---:|---:|---:|"
  cat "$WORK/out.md"
} > bench/results/compose_build.md
rm -rf "$WORK"
cat bench/results/compose_build.md
