#!/usr/bin/env bash
# Failed requests while `berth up -d` replaces a web server, stop-first
# (Compose's default) against start-first (`deploy.update_config.order`).
# A busybox httpd publishes a port and has a 1 s healthcheck; a client
# requests the port back to back (one TCP connection per request) for the
# whole `up -d` that replaces it with a new version, and counts answers
# and failures (refused or reset connections, bad answers). Everything
# runs in a private network namespace (unshare -n): bridges, rules and
# traffic never touch the host's network. Writes bench/results/rollout.md.
#
#   bench/rollout.sh [--runs N] [--debug]
#
# --debug uses target/debug/berth instead of a release build (the failed
# request counts do not depend on it; the rollout times do).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
runs=5
profile=release
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --debug) profile=debug; shift ;;
    *) echo "usage: bench/rollout.sh [--runs N] [--debug]" >&2; exit 2 ;;
  esac
done

if [ "$(id -u)" != 0 ]; then
  echo "bench/rollout.sh needs root (it runs containers)" >&2
  exit 1
fi
# Into a network namespace of our own, once.
if [ -z "${BERTH_BENCH_NETNS:-}" ]; then
  exec env BERTH_BENCH_NETNS=1 unshare -n "$0" --runs "$runs" $([ $profile = debug ] && echo --debug)
fi
ip link set lo up
[ -x /bin/busybox ] || { apt-get update >/dev/null && apt-get install -y busybox-static >/dev/null; }
command -v nft >/dev/null || { apt-get update >/dev/null && apt-get install -y nftables >/dev/null; }

if [ $profile = release ]; then
  cargo build --release --locked --bin berth
fi
berth="$root/target/$profile/berth"
work=$(mktemp -d)
state="$work/state"
b="$berth --root $state"
cleanup() {
  [ -f "$work/p/compose.yaml" ] && (cd "$work/p" && $b down -v >/dev/null 2>&1 || true)
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p bench/results "$work/p"

rootfs="$work/rootfs"
mkdir -p "$rootfs"/{bin,etc,tmp,proc,sys,dev,root}
cp /bin/busybox "$rootfs/bin/busybox"
for a in $(/bin/busybox --list); do [ -e "$rootfs/bin/$a" ] || ln -s busybox "$rootfs/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$rootfs/etc/passwd"
printf 'root:x:0:\n' > "$rootfs/etc/group"
tar -C "$rootfs" -cf "$work/busybox.tar" .
$b image import "$work/busybox.tar" busybox:latest >/dev/null

port=18090
compose() { # order version
  cat > "$work/p/compose.yaml" <<EOF
name: rollbench
services:
  web:
    image: busybox:latest
    init: true
    command: ["sh", "-c", "mkdir -p /www && echo v\$\$VERSION > /www/index.html && exec httpd -f -p 80 -h /www"]
    environment: {VERSION: "$2"}
    ports: ["$port:80"]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1/index.html"]
      interval: 1s
      timeout: 2s
      retries: 2
    deploy:
      update_config:
        order: $1
EOF
}

# The client: requests until SIGTERM, then prints "answers failures".
cat > "$work/client.py" <<'EOF'
import signal, socket, sys, time
port = int(sys.argv[1])
stop = False
def on_term(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, on_term)
ok = failed = 0
# The longest run of failures, from its first failed request to the next
# answer: how long the service was down for a client.
down_since = None
longest = 0.0
while not stop:
    began = time.monotonic()
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.settimeout(5)
        s.sendall(b"GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        s.close()
        if b" 200 " in data.split(b"\r\n", 1)[0] and data.rstrip().endswith(tuple(b"v%d" % i for i in range(10))):
            ok += 1
            if down_since is not None:
                longest = max(longest, began - down_since)
                down_since = None
            continue
    except OSError:
        pass
    failed += 1
    if down_since is None:
        down_since = began
print(ok, failed, int(longest * 1000))
EOF

wait_serving() { # version
  for _ in $(seq 1 300); do
    [ "$(wget -q -T 2 -O- "http://127.0.0.1:$port/index.html" 2>/dev/null)" = "v$1" ] && return 0
    sleep 0.1
  done
  echo "the service never answered v$1" >&2
  exit 1
}

rows=()
for order in stop-first start-first; do
  total_ok=0; total_failed=0; times=(); outages=()
  for i in $(seq 1 "$runs"); do
    cd "$work/p"
    compose "$order" 1
    $b up -d >/dev/null 2>&1
    wait_serving 1
    python3 "$work/client.py" "$port" > "$work/client.out" &
    client=$!
    sleep 0.5
    compose "$order" 2
    start=$(date +%s%N)
    $b up -d >/dev/null 2>"$work/up.err" || { cat "$work/up.err" >&2; exit 1; }
    ms=$(( ($(date +%s%N) - start) / 1000000 ))
    # Until the new version answers (stop-first: the port is refused for a while).
    wait_serving 2
    sleep 0.5
    kill -TERM "$client"; wait "$client" || true
    read -r ok failed outage < "$work/client.out"
    echo "$order run $i: $ok answered, $failed failed, longest outage $outage ms, up -d took $ms ms"
    total_ok=$((total_ok + ok)); total_failed=$((total_failed + failed)); times+=("$ms"); outages+=("$outage")
    $b down >/dev/null 2>&1
  done
  sorted=$(printf '%s\n' "${times[@]}" | sort -n)
  median=$(echo "$sorted" | sed -n "$(( (runs + 1) / 2 ))p")
  worst=$(printf '%s\n' "${outages[@]}" | sort -n | tail -1)
  rows+=("| $order | $runs | $total_ok | $total_failed | $worst ms | $median ms |")
done

{
  echo "# Rollout benchmark ($(date -u +%Y-%m-%d), $(nproc) cores, kernel $(uname -r))"
  echo
  echo "One busybox httpd replica with a published port and a 1 s healthcheck"
  echo "(interval 1s, retries 2), replaced by \`berth up -d\` after an"
  echo "environment change, while a client requests the port back to back"
  echo "(one TCP connection per request, from 0.5 s before the \`up\` until the"
  echo "new version answers plus 0.5 s). A failure is a refused or reset"
  echo "connection or a bad answer; the longest outage is the worst run's"
  echo "longest stretch from a failed request to the next answer. berth: $profile build, in a private network"
  echo "namespace. Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo
  echo "| update_config.order | rollouts | requests answered | requests failed | longest outage | \`up -d\` median |"
  echo "|---|---:|---:|---:|---:|---:|"
  printf '%s\n' "${rows[@]}"
  echo
  echo "stop-first is Compose's default and what \`docker compose up\` does:"
  echo "the port is refused from the old container's stop until the new one"
  echo "listens. start-first keeps the old container serving until the new one"
  echo "is healthy, then moves the port in one nftables transaction; its"
  echo "\`up -d\` is longer by the health gate (about one healthcheck interval)"
  echo "and the 1 s drain before the old container's stop."
} > "$root/bench/results/rollout.md"
cat "$root/bench/results/rollout.md"
