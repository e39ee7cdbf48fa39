#!/usr/bin/env bash
# Networking benchmarks, in a private network namespace (nothing touches
# the host's network):
#   1. `berth up -d` of a project with 20 containers on two networks
#      (and `down`), wall time;
#   2. TCP throughput (iperf3, 5 s) host -> container, through the
#      published port (nftables DNAT) vs straight to the container address;
#   3. TCP connection latency (connect + close, 2,000 times) the same two
#      ways;
#   4. DNS lookup latency, when this berth has its DNS server (`berth dns`).
# Writes bench/results/net.md. Target: the published port within 10% of the
# direct throughput; DNS answers under 1 ms.
#
#   bench/net.sh            # BERTH=path/to/berth to skip the release build
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "bench/net.sh needs root (it makes bridges and containers)" >&2
  exit 1
fi
if [ -z "${BERTH_NET_BENCH_INNER:-}" ]; then
  [ -x /bin/busybox ] || { apt-get update >/dev/null && apt-get install -y busybox-static >/dev/null; }
  command -v iperf3 >/dev/null || { apt-get update >/dev/null && apt-get install -y iperf3 >/dev/null; }
  if [ -z "${BERTH:-}" ]; then
    cargo build --release --locked --bin berth
    export BERTH=$PWD/target/release/berth
  fi
  export BERTH_NET_BENCH_INNER=1
  exec unshare -n "$0" "$@"
fi

ip link set lo up
berth=$BERTH
work=$(mktemp -d)
state=$work/state
cleanup() {
  if [ -d "$state/containers" ]; then
    for id in $(ls "$state/containers"); do "$berth" --root "$state" rm -f "$id" >/dev/null 2>&1 || true; done
  fi
  [ -n "${iperf_pid:-}" ] && kill "$iperf_pid" 2>/dev/null || true
  [ -n "${listen_pid:-}" ] && kill "$listen_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$state" bench/results
BERTH=$berth scripts/make-busybox-image.sh --root "$state" >/dev/null

# 1. up of 20 containers on two networks.
project=$work/twenty
mkdir -p "$project"
{
  echo "name: twenty"
  echo "services:"
  for i in $(seq 1 10); do
    for side in front back; do
      echo "  $side$i:"
      echo "    image: busybox:latest"
      echo "    command: [\"sleep\", \"3600\"]"
      echo "    init: true"
      echo "    stop_grace_period: 1s"
      echo "    networks: [$side]"
    done
  done
  echo "networks:"
  echo "  front: {}"
  echo "  back: {}"
} > "$project/compose.yaml"
ms() { date +%s%N; }
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
up_ms=()
down_ms=()
for run in 1 2 3; do
  t0=$(ms); "$berth" --root "$state" up -d -f "$project/compose.yaml" >/dev/null 2>&1; t1=$(ms)
  running=$("$berth" --root "$state" ps -q | wc -l)
  [ "$running" = 20 ] || { echo "expected 20 running containers, got $running" >&2; exit 1; }
  "$berth" --root "$state" down -f "$project/compose.yaml" >/dev/null 2>&1; t2=$(ms)
  up_ms+=($(( (t1 - t0) / 1000000 )))
  down_ms+=($(( (t2 - t1) / 1000000 )))
done
median() { printf '%s\n' "$@" | sort -n | sed -n "$(( ($# + 1) / 2 ))p"; }

# 2-3. One container publishing 5201 (iperf3) and 8000 (a listener for
# connection latency); the servers run in its namespace from the host, so
# the path measured is exactly the container's (veth, bridge, DNAT).
cat > "$project/compose.yaml" <<'YAML'
name: perf
services:
  srv:
    image: busybox:latest
    command: ["sleep", "3600"]
    init: true
    stop_grace_period: 1s
    ports: ["5201:5201", "8000:8000"]
YAML
"$berth" --root "$state" up -d -f "$project/compose.yaml" >/dev/null 2>&1
id=$("$berth" --root "$state" ps -q --no-trunc)
netns=$state/netns/$id
addr=$("$berth" --root "$state" inspect "$id" | python3 -c 'import json,sys; v=json.load(sys.stdin)[0]; print(next(iter(v["NetworkSettings"]["Networks"].values()))["IPAddress"])')
gateway=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["gateway"])' "$state/networks/perf_default/network.json")
nsenter --net="$netns" iperf3 -s -D -I "$work/iperf.pid" >/dev/null
nsenter --net="$netns" python3 -c '
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 8000)); s.listen(4096)
while True:
    c, _ = s.accept(); c.close()
' & listen_pid=$!
sleep 0.5
iperf_pid=$(cat "$work/iperf.pid")
throughput() { iperf3 -c "$1" -p 5201 -t 5 -J | python3 -c 'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e9))'; }
# Interleaved rounds, medians: the machine is shared, one run is noise.
d=(); l=(); g=()
for round in 1 2 3; do
  d+=("$(throughput "$addr")")
  l+=("$(throughput 127.0.0.1)")
  g+=("$(throughput "$gateway")")
done
fmedian() { printf '%s\n' "$@" | sort -g | sed -n "$(( ($# + 1) / 2 ))p"; }
direct_gbps=$(fmedian "${d[@]}")
published_lo_gbps=$(fmedian "${l[@]}")
published_gw_gbps=$(fmedian "${g[@]}")
latency() {
  python3 - "$1" <<'PY'
import socket, sys, time
host = sys.argv[1]
samples = []
for _ in range(2000):
    t = time.perf_counter()
    s = socket.create_connection((host, 8000))
    samples.append(time.perf_counter() - t)
    s.close()
samples.sort()
print("%.1f %.1f" % (samples[len(samples) // 2] * 1e6, samples[int(len(samples) * 0.99)] * 1e6))
PY
}
read -r direct_p50 direct_p99 < <(latency "$addr")
read -r pub_p50 pub_p99 < <(latency 127.0.0.1)
"$berth" --root "$state" down -f "$project/compose.yaml" >/dev/null 2>&1 || true

# 4. DNS, when the server is there.
dns_line="not measured: this berth has no DNS server (\`berth dns\`)"
if "$berth" dns --help >/dev/null 2>&1; then
  dns_line="see bench/dns.sh (the DNS server's own benchmark)"
fi

ratio() { python3 -c "print('%.1f' % (100.0 * $1 / $2))"; }
{
  echo "# Networking benchmark"
  echo
  echo "bench/net.sh on $(nproc) cores ($(uname -r)), shared with other builds; berth: \`$berth\`."
  echo "Everything ran in a private network namespace; servers ran in the container's own namespace."
  echo
  echo "## up of 20 containers on two networks (median of 3)"
  echo
  echo "| step | median | runs |"
  echo "|---|---|---|"
  echo "| \`berth up -d\` (2 networks, 20 containers) | $(median "${up_ms[@]}") ms | ${up_ms[*]} |"
  echo "| \`berth down\` | $(median "${down_ms[@]}") ms | ${down_ms[*]} |"
  echo
  echo "Load average (1, 5, 15 min) at the start: ${load_before}. Where the per-container"
  echo "network time goes and what each change saved: bench/results/run-breakdown.md"
  echo "(section \"Networking\")."
  echo
  echo "## TCP throughput, host to container (iperf3, 5 s, one stream; median of 3 interleaved rounds)"
  echo
  echo "| path | Gbit/s | vs direct |"
  echo "|---|---|---|"
  echo "| direct to the container address ($addr) | $direct_gbps (${d[*]}) | 100% |"
  echo "| published port on 127.0.0.1 (DNAT, masquerade) | $published_lo_gbps (${l[*]}) | $(ratio "$published_lo_gbps" "$direct_gbps")% |"
  echo "| published port on the host address $gateway (DNAT) | $published_gw_gbps (${g[*]}) | $(ratio "$published_gw_gbps" "$direct_gbps")% |"
  echo
  echo "Target: a published port within 10% of direct."
  echo
  echo "## TCP connection latency (connect until established, 2,000 connections)"
  echo
  echo "| path | p50 | p99 |"
  echo "|---|---|---|"
  echo "| direct | ${direct_p50} µs | ${direct_p99} µs |"
  echo "| published port on 127.0.0.1 | ${pub_p50} µs | ${pub_p99} µs |"
  echo
  echo "## DNS lookup latency"
  echo
  echo "$dns_line"
} > bench/results/net.md
cat bench/results/net.md
