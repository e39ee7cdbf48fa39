#!/usr/bin/env bash
# Times parsing + normalizing a generated 1,000-service compose file and a
# 2,000-line Dockerfile: in process (spec/benches/parse.rs) and end to end
# (`berth config -q`), beside `docker-compose config` when it is installed.
# Writes bench/results/parse.md. Target: 1,000 services in under 50 ms.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p bench/results "$work/config"

python3 bench/gen_compose.py 1000 > "$work/compose.yaml"
python3 bench/gen_dockerfile.py 2000 > "$work/Dockerfile"

cargo build --release --locked --bin berth
berth="$root/target/release/berth"
# Figures taken while other work runs are not comparable: say how busy the
# machine was.
load=$(cut -d' ' -f1-3 /proc/loadavg)

# In-process: parse + interpolate + merge + validate + decode + normalize.
inproc=$(BENCH_COMPOSE="$work/compose.yaml" BENCH_DOCKERFILE="$work/Dockerfile" \
  cargo bench --locked -p berth-spec --bench parse 2>/dev/null | grep '^|' || true)

if ! command -v hyperfine >/dev/null; then
  echo "hyperfine not found; installing Debian's package" >&2
  apt-get install -y hyperfine >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y hyperfine >/dev/null; }
fi
cmds=("$berth config -q -f $work/compose.yaml")
names=("berth config -q (1,000 services)")
if command -v docker-compose >/dev/null; then
  cmds+=("docker-compose -f $work/compose.yaml config -q")
  names+=("docker-compose config -q (1,000 services)")
fi
args=()
for i in "${!cmds[@]}"; do args+=(-n "${names[$i]}" "${cmds[$i]}"); done
(cd "$work" && hyperfine -N --warmup 3 --runs 20 --export-markdown "$work/cli.md" "${args[@]}" >/dev/null)

{
  echo "# Parsing benchmark ($(date -u +%Y-%m-%d), $(nproc) cores, load average before the run: $load)"
  echo
  echo "Generated inputs: a 1,000-service compose file ($(wc -l < "$work/compose.yaml") lines) and a $(wc -l < "$work/Dockerfile")-line Dockerfile."
  echo
  echo "## In process (median of 20)"
  echo
  echo "| what | median ms | min ms |"
  echo "|---|---|---|"
  echo "$inproc"
  echo
  echo "## Whole command (hyperfine)"
  echo
  cat "$work/cli.md"
} > bench/results/parse.md
cat bench/results/parse.md
