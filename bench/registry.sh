#!/usr/bin/env bash
# Registry push and pull, berth against skopeo, both talking to Debian's
# docker-registry on 127.0.0.1 (a fresh one, storage in a temp dir):
#   - a 2 MB image (the busybox rootfs, gzipped: ~1 MB on the wire) and a
#     100 MiB image (one layer of random bytes: incompressible, so gzip
#     does not shrink what moves);
#   - push: the image from a local store (berth's, skopeo's OCI layout
#     with the same gzipped layers) into an empty registry (its storage is
#     wiped before each run, so every blob moves);
#   - pull: into an empty store (berth) / an empty OCI layout (skopeo),
#     blobs verified by both.
# Writes bench/results/registry.md. Targets (issue #6): at least as fast
# as skopeo (the anchor: push of 2 MB in 137 ms, pull in 44 ms), 100 MiB
# at disk or loopback speed.
#
#   bench/registry.sh [--runs N]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
runs=10
[ "${1:-}" = "--runs" ] && runs=$2

for tool in docker-registry:docker-registry skopeo:skopeo hyperfine:hyperfine; do
  command -v "${tool%%:*}" >/dev/null || { apt-get update >/dev/null && apt-get install -y "${tool#*:}" >/dev/null; }
done
[ -x /bin/busybox ] || { apt-get update >/dev/null && apt-get install -y busybox-static >/dev/null; }

work=$(mktemp -d)
reg_pid=
cleanup() {
  [ -n "$reg_pid" ] && kill "$reg_pid" 2>/dev/null && wait "$reg_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p bench/results

cargo build --release --locked --bin berth
berth="$root/target/release/berth"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
reg=127.0.0.1:$port
cat >"$work/registry.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/registry
  delete:
    enabled: true
http:
  addr: $reg
YML
docker-registry serve "$work/registry.yml" 2>"$work/registry.log" &
reg_pid=$!
for _ in $(seq 100); do curl -fs "http://$reg/v2/" >/dev/null && break; sleep 0.05; done

# The images: rootfs tarballs imported into berth, pushed once (gzipped on
# the way), then pulled back into the bench store so it holds the gzipped
# layers, and copied by skopeo into an OCI layout for its pushes.
rootfs="$work/rootfs"
mkdir -p "$rootfs"/{bin,etc,tmp}
cp /bin/busybox "$rootfs/bin/busybox"
for a in $(/bin/busybox --list); do [ -e "$rootfs/bin/$a" ] || ln -s busybox "$rootfs/bin/$a"; done
tar -C "$rootfs" -cf "$work/small.tar" .
mkdir -p "$work/big"
head -c $((100 * 1024 * 1024)) /dev/urandom >"$work/big/blob"
tar -C "$work/big" -cf "$work/big.tar" .
seed="$work/seed"
store="$work/store"
for size in small big; do
  "$berth" --root "$seed" image import "$work/$size.tar" "$reg/seed-$size:1" >/dev/null
  "$berth" --root "$seed" push -q "$reg/seed-$size:1" >/dev/null
  "$berth" --root "$store" pull -q "$reg/seed-$size:1" >/dev/null
  "$berth" --root "$store" tag "$reg/seed-$size:1" "$reg/bench-$size:1"
  skopeo copy -q --src-tls-verify=false "docker://$reg/seed-$size:1" "oci:$work/oci:$size" >/dev/null
done
wire() { # bytes of the image's layers, as pushed
  skopeo inspect --raw --tls-verify=false "docker://$reg/seed-$1:1" |
    python3 -c 'import json,sys; print(sum(l["size"] for l in json.load(sys.stdin)["layers"]))'
}
small_bytes=$(wire small)
big_bytes=$(wire big)

wipe="rm -rf $work/registry/docker/registry/v2/repositories/bench-* $work/registry/docker/registry/v2/blobs"
json="$work/results"
mkdir -p "$json"
bench() { # name, prepare, berth command, skopeo command
  hyperfine -N --runs "$runs" --warmup 1 --prepare "$2" --export-json "$json/$1.json" \
    -n berth "$3" -n skopeo "$4" >/dev/null 2>"$work/hyperfine.log" || { cat "$work/hyperfine.log"; exit 1; }
}
for size in small big; do
  bench "push-$size" "sh -c '$wipe'" \
    "$berth --root $store push -q $reg/bench-$size:1" \
    "skopeo copy -q --dest-tls-verify=false oci:$work/oci:$size docker://$reg/bench-$size:1"
done
# Pulls need the images in the registry again.
for size in small big; do
  "$berth" --root "$store" push -q "$reg/bench-$size:1" >/dev/null
done
for size in small big; do
  bench "pull-$size" "rm -rf $work/pull-store $work/pull-oci" \
    "$berth --root $work/pull-store pull -q $reg/bench-$size:1" \
    "skopeo copy -q --src-tls-verify=false docker://$reg/bench-$size:1 oci:$work/pull-oci:x"
done

# Loopback and disk speed for the 100 MiB rows: a plain HTTP GET of the
# blob from the same registry (curl to /dev/null), and a copy of it on disk.
big_layer=$(skopeo inspect --raw --tls-verify=false "docker://$reg/bench-big:1" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["layers"][0]["digest"])')
hyperfine -N --runs "$runs" --export-json "$json/curl.json" \
  "curl -fs -o /dev/null http://$reg/v2/bench-big/blobs/$big_layer" >/dev/null 2>&1
hyperfine -N --runs "$runs" --prepare "rm -f $work/copy" --export-json "$json/disk.json" \
  "cp $work/big/blob $work/copy" >/dev/null 2>&1

python3 - "$json" "$small_bytes" "$big_bytes" "$runs" >bench/results/registry.md <<'PY'
import json, sys, os, platform, subprocess
d, small, big, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
def load(name):
    return json.load(open(os.path.join(d, name + ".json")))["results"]
def med(r):
    return sorted(r["times"])[len(r["times"]) // 2] * 1000
def mbps(nbytes, ms):
    return f"{nbytes / 1e6 / (ms / 1000):.0f} MB/s"
print("# Registry push and pull: berth vs skopeo\n")
print(f"`bench/registry.sh` on {platform.node()} ({os.cpu_count()} cores, shared), "
      f"{subprocess.run(['skopeo', '--version'], capture_output=True, text=True).stdout.strip()}, "
      f"Debian's docker-registry on 127.0.0.1, hyperfine with {runs} runs each (median, min in brackets). "
      "Push: from a local store into an empty registry (storage wiped before each run). "
      "Pull: into an empty store / OCI layout. Both verify digests.\n")
print(f"Layer bytes on the wire: 2 MB image {small/1e6:.2f} MB (busybox, gzip), "
      f"100 MiB image {big/1e6:.1f} MB (random, gzip).\n")
print("| what | berth | skopeo | berth / skopeo |")
print("|---|---|---|---|")
for op in ["push", "pull"]:
    for size, label, nbytes in [("small", "2 MB", small), ("big", "100 MiB", big)]:
        r = load(f"{op}-{size}")
        b, s = r[0], r[1]
        bm, sm = med(b), med(s)
        extra = f" = {mbps(nbytes, bm)}" if size == "big" else ""
        extra_s = f" = {mbps(nbytes, sm)}" if size == "big" else ""
        print(f"| {op} {label} | {bm:.0f} ms [{min(b['times'])*1000:.0f}]{extra} | "
              f"{sm:.0f} ms [{min(s['times'])*1000:.0f}]{extra_s} | {bm/sm:.2f} |")
c = med(load("curl")[0]); k = med(load("disk")[0])
print(f"\nReference for the 100 MiB rows: a plain `curl` GET of the layer blob from the same registry "
      f"takes {c:.0f} ms ({mbps(big, c)}); `cp` of the 100 MiB file on this disk {k:.0f} ms "
      f"({mbps(100*1024*1024, k)}).")
print("\nAnchor (../shared/anchors/README.md): skopeo pushes a 2 MB image in 137 ms and pulls it in 44 ms on this machine.")
PY
cat bench/results/registry.md
