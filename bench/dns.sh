#!/usr/bin/env bash
# The network DNS server (`berth dns`): time to an answer, one query at a
# time over UDP on 127.0.0.1 (bench/dns_latency.py), interleaved in rounds,
# for
#   - a service name with 3 replicas and one with 30 (A), an AAAA of a
#     known name (no data), a PTR of a container address;
#   - a name forwarded to a fake upstream on 127.0.0.1, beside the same
#     query sent to that upstream directly (the difference is the cost of
#     forwarding);
#   - the A query right after each of 200 rewrites of dns.json;
# the cost of the per-query stat of dns.json (a 10-line Rust loop built
# with rustc); the server's CPU time per local and per forwarded query; its
# RSS/PSS after start and after the load; and dnsperf's throughput with many
# queries in flight (installed from Debian when missing).
# Writes bench/results/dns.md. Target: under 1 ms per answer.
#
#   bench/dns.sh [ROUNDS [COUNT]]   # default 5 rounds of 1000 queries each
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
rounds=${1:-5}
count=${2:-1000}
command -v python3 >/dev/null || { echo "bench/dns.sh needs python3" >&2; exit 1; }
command -v dnsperf >/dev/null || { apt-get update >/dev/null && apt-get install -y dnsperf >/dev/null; } || true

work=$(mktemp -d)
upstream_pid=
server_pid=
cleanup() {
  [ -n "$upstream_pid" ] && kill "$upstream_pid" 2>/dev/null || true
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
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
$lat upstream "127.0.0.1:$up_port" &
upstream_pid=$!

python3 - "$work/net/dns.json" "$port" "$up_port" <<'EOF'
import json, sys
path, port, up = sys.argv[1], sys.argv[2], sys.argv[3]
containers = {f"w{i}": {"names": [f"shop-web-{i}", "web"], "ipv4": f"10.89.0.{i + 1}"} for i in range(1, 4)}
containers.update({f"b{i}": {"names": [f"shop-big-{i}", "big"], "ipv4": f"10.89.1.{i + 1}"} for i in range(1, 31)})
records = {"version": 1, "listen": [f"127.0.0.1:{port}"], "upstreams": [f"127.0.0.1:{up}"], "containers": containers}
json.dump(records, open(path, "w"))
EOF

# In the foreground (a spawned server is the same code after the fork),
# with the allocator `spawn` sets.
BERTH_SYSTEM_ALLOCATOR=1 "$berth" dns --state-dir "$work/net" 2>"$work/server.log" &
server_pid=$!
for _ in $(seq 100); do
  $lat suite 1 1 "ready=127.0.0.1:$port,web,A" >/dev/null 2>&1 && break
  sleep 0.05
done
pid=$(cat "$work/net/dns.pid")

mem() { # RSS, PSS, anonymous of $pid in KiB
  echo "$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")" \
       "$(awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup")" \
       "$(awk '/^Anonymous:/ {print $2}' "/proc/$pid/smaps_rollup")"
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
read -r rss0 pss0 anon0 < <(mem)

s="127.0.0.1:$port"
suite=$($lat suite "$rounds" "$count" \
  "service, 3 replicas (A)=$s,web,A" \
  "service, 30 replicas (A)=$s,big,A" \
  "known name (AAAA, no data)=$s,web,AAAA" \
  "container address (PTR)=$s,3.0.89.10.in-addr.arpa,PTR" \
  "forwarded to the upstream=$s,example.com,A" \
  "the upstream directly (no berth)=127.0.0.1:$up_port,example.com,A")

# Server CPU per query, measured apart (the suite interleaves).
clk=$(getconf CLK_TCK)
n=20000
t0=$(cpu_ticks); $lat suite 1 $n "x=$s,web,A" >/dev/null; t1=$(cpu_ticks)
$lat suite 1 $n "x=$s,example.com,A" >/dev/null; t2=$(cpu_ticks)
cpu_local=$(python3 -c "print(round(($t1 - $t0) * 1e6 / $clk / $n, 1))")
cpu_fwd=$(python3 -c "print(round(($t2 - $t1) * 1e6 / $clk / $n, 1))")

# Re-reads: rewrite dns.json (temp + rename, as DnsRecords::save), then ask.
reload_out=$(python3 - "$work/net/dns.json" "$port" <<'EOF'
import json, os, socket, struct, sys, time
path, port = sys.argv[1], int(sys.argv[2])
records = json.load(open(path))
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.connect(("127.0.0.1", port)); sock.settimeout(5)
samples, stale = [], 0
for i in range(200):
    records["containers"]["new"] = {"names": ["new"], "ipv4": f"10.89.2.{i % 250}"}
    with open(path + ".tmp", "w") as f:
        json.dump(records, f)
    os.rename(path + ".tmp", path)
    q = struct.pack(">HHHHHH", i, 0x0100, 1, 0, 0, 0) + b"\x03new\x00" + struct.pack(">HH", 1, 1)
    start = time.perf_counter_ns()
    sock.send(q)
    reply = sock.recv(4096)
    samples.append(time.perf_counter_ns() - start)
    if reply[-4:] != bytes([10, 89, 2, i % 250]):
        stale += 1
samples.sort()
print(json.dumps({"median_us": round(samples[100] / 1000, 1), "max_us": round(samples[-1] / 1000, 1), "stale": stale}))
EOF
)
read -r rss1 pss1 anon1 < <(mem)

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

dnsperf_out=""
if command -v dnsperf >/dev/null; then
  printf 'web A\nshop-web-1 A\nweb AAAA\nbig A\n' > "$work/queries"
  dnsperf_out=$(dnsperf -s 127.0.0.1 -p "$port" -d "$work/queries" -l 5 -c 4 -Q 200000 2>&1 \
    | grep -E 'Queries per second|Average Latency|Queries lost' || true)
fi

{
  echo "# Network DNS server benchmark ($(date -u +%Y-%m-%d), $(nproc) cores, kernel $(uname -r))"
  echo
  echo "\`berth dns\` (release build, system allocator as when spawned) on 127.0.0.1,"
  echo "queried over UDP one query at a time by bench/dns_latency.py (Python: its"
  echo "own send/recv time is inside every number, as the \"upstream directly\" row"
  echo "shows), $rounds interleaved rounds of $count queries per row."
  echo "Load average when the run ended: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo
  echo "| query | median µs (of round medians) | best round µs | p99 µs | max µs | rcodes |"
  echo "|---|---:|---:|---:|---:|---|"
  python3 -c '
import json, sys
for label, d in json.loads(sys.argv[1]).items():
    print("| %s | %s | %s | %s | %s | %s |" % (label, d["median_us"], d["best_us"], d["p99_us"], d["max_us"], d["rcodes"]))
' "$suite"
  echo
  python3 -c "import json,sys; d=json.loads(sys.argv[1]); print(f\"Right after each of 200 rewrites of dns.json (temp + rename): median {d['median_us']} µs, max {d['max_us']} µs; answers from the old records: {d['stale']} of 200.\")" "$reload_out"
  echo
  echo "One stat of dns.json (std::fs::metadata, the server's check for new records, once per query): $stat_ns ns."
  echo "Server CPU time (user + system) per query, over $n: $cpu_local µs answering a service's A, $cpu_fwd µs forwarding (a fresh socket per query, for a random source port)."
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
  echo "Why a stat per query rather than inotify: the stat is the number above, a"
  echo "small part of the CPU a query costs, and it makes an update visible to the"
  echo "very next query (the 0 stale answers above); inotify would save that stat"
  echo "but apply an update whenever its event is read, after queries already"
  echo "queued, and needs its own fd and overflow and dir-recreation handling."
  echo
  echo "Target: under 1 ms per answer. Other workloads share this machine (see the"
  echo "load average): compare rows of one run, and best rounds across runs."
} > bench/results/dns.md
cat bench/results/dns.md
