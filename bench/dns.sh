#!/usr/bin/env bash
# The network DNS server (`berth dns`): time to an answer, one query at a
# time over UDP on 127.0.0.1 (bench/dns_latency.py), for
#   - a service name with 3 replicas (A), its AAAA (no data), a PTR;
#   - a name forwarded to a fake upstream on 127.0.0.1, beside the same
#     query sent to that upstream directly (the difference is the cost of
#     forwarding);
#   - the A query right after each of 200 updates of dns.json (re-read);
# the cost of the per-query stat of dns.json (a 10-line Rust loop built
# with rustc); the server's CPU time per
# query; its idle RSS/PSS after start and after the load; and, when dnsperf
# is installed, throughput with many queries in flight.
# Writes bench/results/dns.md. Target: under 1 ms per answer.
#
#   bench/dns.sh [COUNT]     # queries per measurement, default 5000
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
count=${1:-5000}
command -v python3 >/dev/null || { echo "bench/dns.sh needs python3" >&2; exit 1; }
command -v dnsperf >/dev/null || { apt-get update >/dev/null && apt-get install -y dnsperf >/dev/null; } || true

work=$(mktemp -d)
upstream_pid=
cleanup() {
  [ -n "$upstream_pid" ] && kill "$upstream_pid" 2>/dev/null || true
  if [ -f "$work/net/dns.pid" ]; then kill "$(cat "$work/net/dns.pid")" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p bench/results "$work/net"

cargo build --release --locked --bin berth
berth="$root/target/release/berth"
lat="python3 $root/bench/dns_latency.py"

free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
up_port=$(free_port)
$lat --upstream "127.0.0.1:$up_port" &
upstream_pid=$!

write_records() { # $1: number of replicas of "web"
  python3 - "$work/net/dns.json" "$port" "$up_port" "$1" <<'EOF'
import json, os, sys
path, port, up, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
containers = {f"c{i}": {"names": [f"shop-web-{i}", "web"], "ipv4": f"10.89.0.{i + 1}"} for i in range(1, n + 1)}
containers["db"] = {"names": ["shop-db-1", "db"], "ipv4": "10.89.0.200"}
records = {"version": 1, "listen": [f"127.0.0.1:{port}"], "upstreams": [f"127.0.0.1:{up}"], "containers": containers}
tmp = path + ".tmp"
with open(tmp, "w") as f:
    json.dump(records, f)
os.rename(tmp, path)
EOF
}
write_records 3

# Started detached, as the networking code does, through the real binary.
BERTH_SYSTEM_ALLOCATOR=1 "$berth" dns --state-dir "$work/net" 2>"$work/fg.log" &
for _ in $(seq 100); do
  $lat "127.0.0.1:$port" web A 1 >/dev/null 2>&1 && break
  sleep 0.05
done
pid=$(cat "$work/net/dns.pid")

mem() { # RSS, PSS, private anonymous of $pid in KiB
  local rss pss anon
  rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
  pss=$(awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup")
  anon=$(awk '/^Anonymous:/ {print $2}' "/proc/$pid/smaps_rollup")
  echo "$rss $pss $anon"
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
read -r rss0 pss0 anon0 < <(mem)

results=()
measure() { # label, name, qtype, server
  local out
  out=$($lat "${4:-127.0.0.1:$port}" "$2" "$3" "$count")
  results+=("$1|$out")
}
ticks0=$(cpu_ticks)
measure "service, 3 replicas (A)" web A
ticks1=$(cpu_ticks)
measure "service (AAAA, no data)" web AAAA
measure "container address (PTR)" 3.0.89.10.in-addr.arpa PTR
measure "forwarded to the upstream" example.com A
measure "the upstream directly (no berth)" example.com A "127.0.0.1:$up_port"
write_records 30
measure "service, 30 replicas (A)" web A

# Re-reads: rewrite dns.json (rename), then ask; 200 times.
reload_out=$(python3 - "$work/net/dns.json" "$port" <<'EOF'
import json, os, socket, struct, sys, time
path, port = sys.argv[1], int(sys.argv[2])
records = json.load(open(path))
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.connect(("127.0.0.1", port)); sock.settimeout(5)
samples, stale = [], 0
for i in range(200):
    records["containers"]["new"] = {"names": ["new"], "ipv4": f"10.89.1.{i % 250}"}
    with open(path + ".tmp", "w") as f:
        json.dump(records, f)
    os.rename(path + ".tmp", path)
    q = struct.pack(">HHHHHH", i, 0x0100, 1, 0, 0, 0) + b"\x03new\x00" + struct.pack(">HH", 1, 1)
    start = time.perf_counter_ns()
    sock.send(q)
    reply = sock.recv(4096)
    samples.append(time.perf_counter_ns() - start)
    if reply[-4:] != bytes([10, 89, 1, i % 250]):
        stale += 1
samples.sort()
print(json.dumps({"median_us": round(samples[100] / 1000, 1), "max_us": round(samples[-1] / 1000, 1), "stale": stale}))
EOF
)
read -r rss1 pss1 anon1 < <(mem)
# The per-query stat of dns.json, as the server does it (std::fs::metadata).
cat > "$work/stat.rs" <<'EOF'
fn main() {
    let path = std::env::args().nth(1).unwrap();
    let n = 1_000_000u32;
    let start = std::time::Instant::now();
    for _ in 0..n {
        std::hint::black_box(std::fs::metadata(&path).unwrap());
    }
    println!("{}", start.elapsed().as_nanos() / u128::from(n));
}
EOF
rustc -O -o "$work/stat" "$work/stat.rs"
stat_ns=$("$work/stat" "$work/net/dns.json")

clk=$(getconf CLK_TCK)
cpu_us=$(python3 -c "print(round(($ticks1 - $ticks0) * 1e6 / $clk / $count, 1))")

dnsperf_out=""
if command -v dnsperf >/dev/null; then
  printf 'web A\nshop-web-1 A\nweb AAAA\ndb A\n' > "$work/queries"
  dnsperf_out=$(dnsperf -s 127.0.0.1 -p "$port" -d "$work/queries" -l 5 -c 4 -Q 200000 2>&1 \
    | grep -E 'Queries per second|Average Latency|Queries lost' || true)
fi

{
  echo "# Network DNS server benchmark ($(date -u +%Y-%m-%d), $(nproc) cores, kernel $(uname -r))"
  echo
  echo "\`berth dns\` (release build, system allocator as when spawned) on 127.0.0.1,"
  echo "queried over UDP one query at a time by bench/dns_latency.py (Python: its"
  echo "own send/recv overhead is inside every number), $count queries each."
  echo "Load average when the run ended: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo
  echo "| query | median µs | p90 µs | p99 µs | max µs | rcodes |"
  echo "|---|---:|---:|---:|---:|---|"
  for r in "${results[@]}"; do
    label=${r%%|*}; json=${r#*|}
    python3 -c "import json,sys; d=json.loads(sys.argv[2]); print(f\"| {sys.argv[1]} | {d['median_us']} | {d['p90_us']} | {d['p99_us']} | {d['max_us']} | {d['rcodes']} |\")" "$label" "$json"
  done
  echo
  python3 -c "import json,sys; d=json.loads(sys.argv[1]); print(f\"Right after each of 200 rewrites of dns.json (rename): median {d['median_us']} µs, max {d['max_us']} µs; answers from the old records: {d['stale']} of 200.\")" "$reload_out"
  echo
  echo "One stat of dns.json (std::fs::metadata, the server's check for new records, once per query): $stat_ns ns."
  echo "Server CPU time (user + system) per A query: $cpu_us µs."
  echo
  echo "| server memory | after start | after the queries |"
  echo "|---|---:|---:|"
  echo "| RSS (KiB) | $rss0 | $rss1 |"
  echo "| PSS (KiB) | $pss0 | $pss1 |"
  echo "| anonymous (KiB) | $anon0 | $anon1 |"
  echo
  if [ -n "$dnsperf_out" ]; then
    echo "dnsperf (4 clients, 5 s, local names):"
    echo '```'
    echo "$dnsperf_out"
    echo '```'
  else
    echo "dnsperf: not installed (apt-get install dnsperf), throughput not measured."
  fi
  echo
  echo "Target: under 1 ms per answer. Other workloads may share this machine: compare medians."
} > bench/results/dns.md
cat bench/results/dns.md
