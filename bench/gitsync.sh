#!/usr/bin/env bash
# Git sync costs and latencies: `berth agent --git` on a local bare
# repository of 50 projects (49 with no services, one busybox web+db).
# Measures an unchanged poll (a refresh that finds nothing new: ls-remote,
# rev-parse, status), a commit that edits one service: refresh to the new
# container running, and push to running through polling alone
# (--git-interval 1s); how many projects a one-project commit reconciles;
# the agent's RSS. Everything runs in a private network namespace.
# Writes bench/results/gitsync.md.
#
#   bench/gitsync.sh [--runs N] [--debug]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
runs=5
profile=release
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --debug) profile=debug; shift ;;
    *) echo "usage: bench/gitsync.sh [--runs N] [--debug]" >&2; exit 2 ;;
  esac
done
if [ "$(id -u)" != 0 ]; then
  echo "bench/gitsync.sh needs root (it runs containers)" >&2
  exit 1
fi
if [ -z "${BERTH_BENCH_NETNS:-}" ]; then
  exec env BERTH_BENCH_NETNS=1 unshare -n "$0" --runs "$runs" $([ $profile = debug ] && echo --debug)
fi
ip link set lo up
[ -x /bin/busybox ] || { apt-get update >/dev/null && apt-get install -y busybox-static >/dev/null; }
command -v git >/dev/null || { apt-get update >/dev/null && apt-get install -y git >/dev/null; }
command -v jq >/dev/null || { apt-get update >/dev/null && apt-get install -y jq >/dev/null; }
if [ $profile = release ]; then
  cargo build --release --locked --bin berth
fi
berth="$root/target/$profile/berth"
work=$(mktemp -d)
state="$work/state"
agent_pid=""
cleanup() {
  [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null || true
  for id in $(ls "$state/containers" 2>/dev/null); do "$berth" --root "$state" rm -f "$id" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p bench/results

rootfs="$work/rootfs"
mkdir -p "$rootfs"/{bin,etc,tmp,proc,sys,dev,root}
cp /bin/busybox "$rootfs/bin/busybox"
for a in $(/bin/busybox --list); do [ -e "$rootfs/bin/$a" ] || ln -s busybox "$rootfs/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$rootfs/etc/passwd"
printf 'root:x:0:\n' > "$rootfs/etc/group"
tar -C "$rootfs" -cf "$work/busybox.tar" .
"$berth" --root "$state" image import "$work/busybox.tar" busybox:latest >/dev/null

g() { git -C "$work/work" -c user.name=bench -c user.email=bench@example.com "$@"; }
git init -q --bare -b main "$work/remote.git"
git init -q -b main "$work/work"
g remote add origin "$work/remote.git"
shop() {
  mkdir -p "$work/work/apps/shop"
  cat > "$work/work/apps/shop/compose.yaml" <<EOF
name: shop
services:
  web:
    image: busybox:latest
    command: ["sleep", "$1"]
    init: true
    stop_grace_period: 1s
  db:
    image: busybox:latest
    command: ["sleep", "3600"]
    init: true
    stop_grace_period: 1s
EOF
}
for i in $(seq 1 49); do
  mkdir -p "$work/work/apps/p$i"
  printf 'name: p%s\nservices: {}\n' "$i" > "$work/work/apps/p$i/compose.yaml"
done
shop 1000
commit() { g add -A && g commit -q -m "$1" && g push -q origin HEAD:main; }
commit "50 projects"

token=bench-token-0123456789
printf '%s\n' "$token" > "$work/token"
chmod 600 "$work/token"
port=17979
api="http://127.0.0.1:$port"
start_agent() { # interval
  "$berth" agent --git "file://$work/remote.git" --git-path apps --git-interval "$1" \
    --root "$state" --listen "127.0.0.1:$port" --token-file "$work/token" \
    --resync-interval 1h >/dev/null 2>"$work/agent.log" &
  agent_pid=$!
  for _ in $(seq 1 600); do
    [ "$(curl -s "$api/api/v1/projects/shop" | jq -r '.status.phase // empty')" = Ready ] && return
    sleep 0.1
  done
  echo "the agent did not bring shop up; log:" >&2; tail -20 "$work/agent.log" >&2; exit 1
}
stop_agent() { kill "$agent_pid"; wait "$agent_pid" || true; agent_pid=""; }
now_ms() { date +%s%3N; }
web_id() { "$berth" --root "$state" inspect shop-web-1 2>/dev/null | jq -r '.[0] | select(.State.Running) | .Id' || true; }
wait_new_web() { # old id
  for _ in $(seq 1 3000); do
    id=$(web_id)
    [ -n "$id" ] && [ "$id" != "$1" ] && return
    sleep 0.02
  done
  echo "web was not recreated" >&2; exit 1
}
refresh() { curl -s -X POST -H "Authorization: Bearer $token" "$api/api/v1/source/refresh?wait=true" | jq -r .result; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

t0=$(now_ms)
start_agent 1h
first_up=$(( $(now_ms) - t0 ))

# Unchanged polls.
: > "$work/unchanged"
for _ in $(seq 1 20); do
  s=$(now_ms); r=$(refresh); e=$(now_ms)
  [ "$r" = Unchanged ] || { echo "expected Unchanged, got $r" >&2; exit 1; }
  echo $(( e - s )) >> "$work/unchanged"
done

# One service edited, taken through the refresh hook.
: > "$work/hook"; : > "$work/reconciles"
for n in $(seq 1 "$runs"); do
  old=$(web_id)
  before=$(curl -s "$api/metrics" | awk '/^berth_reconcile_total\{/ && /trigger="git"/ {s+=$NF} END {print s+0}')
  shop $((1000 + n)); commit "web $n"
  s=$(now_ms)
  r=$(refresh); [ "$r" = Updated ] || { echo "expected Updated, got $r" >&2; exit 1; }
  wait_new_web "$old"
  echo $(( $(now_ms) - s )) >> "$work/hook"
  sleep 1
  after=$(curl -s "$api/metrics" | awk '/^berth_reconcile_total\{/ && /trigger="git"/ {s+=$NF} END {print s+0}')
  echo $(( after - before )) >> "$work/reconciles"
done
rss=$(awk '/VmRSS/ {print $2}' "/proc/$agent_pid/status")
stop_agent

# The same through polling alone, every second.
start_agent 1s
: > "$work/poll"
for n in $(seq 1 "$runs"); do
  old=$(web_id)
  shop $((2000 + n)); commit "web poll $n"
  s=$(now_ms)
  wait_new_web "$old"
  echo $(( $(now_ms) - s )) >> "$work/poll"
done
polls=$(curl -s "$api/metrics" | awk '/^berth_source_fetch_duration_seconds_(sum|count)\{result="success"\}/ {v[$1 ~ /sum/ ? "s" : "c"]=$NF} END {printf "%.1f", 1000 * v["s"] / v["c"]}')
stop_agent

load=$(cut -d' ' -f1-3 /proc/loadavg)
cat > bench/results/gitsync.md <<EOF
# Git sync benchmark ($(date -u +%F), $(nproc) cores, kernel $(uname -r))

\`berth agent --git file://… --git-path apps\` ($profile build) on a local
bare repository of 50 projects: 49 with no services, and \`shop\` (busybox
web and db). Each edit changes web's command (one service recreated).
Private network namespace. Load average at the end: $load.

| what | runs | median | min | max |
|---|---:|---:|---:|---:|
| start to shop Ready (first fetch, checkout, 50 loads, 2 containers, the 5 s `--health-stable` gate) | 1 | $first_up ms | | |
| unchanged refresh (\`refresh?wait=true\`: ls-remote, rev-parse, status) | 20 | $(median < "$work/unchanged") ms | $(sort -n "$work/unchanged" | head -1) ms | $(sort -n "$work/unchanged" | tail -1) ms |
| commit pushed → \`refresh?wait=true\` → new web running | $runs | $(median < "$work/hook") ms | $(sort -n "$work/hook" | head -1) ms | $(sort -n "$work/hook" | tail -1) ms |
| commit pushed → new web running, polling every 1 s, no hook | $runs | $(median < "$work/poll") ms | $(sort -n "$work/poll" | head -1) ms | $(sort -n "$work/poll" | tail -1) ms |

- Reconciles under the \`git\` trigger per one-project commit (of 50
  projects): $(sort -u "$work/reconciles" | tr '\n' ' ')(\`berth_reconcile_total{trigger="git"}\`).
- Mean successful sync while polling (mostly unchanged polls, from
  \`berth_source_fetch_duration_seconds\`): $polls ms.
- Agent RSS after the hook runs: $rss KiB.
EOF
cat bench/results/gitsync.md
