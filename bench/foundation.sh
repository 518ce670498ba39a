#!/usr/bin/env bash
# Foundation benchmark: cold start of `marketops serve` on an existing demo database, and
# page render latency of the main pages on the demo data. The reference in the same run is
# the same server answering a static file (/static/app.css): the HTTP round trip with no
# database work, the floor a page can approach.
#
#   bench/foundation.sh [REQUESTS_PER_PAGE] [COLD_STARTS]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-300}
STARTS=${2:-10}
PORT=${BENCH_PORT:-18181}
cargo build --release --locked -q
BIN=target/release/marketops
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
DB="sqlite://$WORK/bench.db"
$BIN --database-url "$DB" demo >/dev/null

ms() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'; }
p95() { sort -n | awk '{a[NR]=$1} END {i=int(NR*0.95); if (i<1) i=1; print a[i]}'; }

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
echo "binary: $(du -h $BIN | cut -f1) ($BIN)"

# Cold start: process start until /readyz answers 200 (database opened, migrations checked).
: > "$WORK/starts"
for _ in $(seq 1 "$STARTS"); do
  t0=$(ms)
  $BIN --database-url "$DB" serve --port "$PORT" --no-jobs >/dev/null 2>&1 &
  pid=$!
  until curl -fs -o /dev/null "http://127.0.0.1:$PORT/readyz"; do sleep 0.005; done
  t1=$(ms)
  awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f\n", (b - a) / 1000000}' >> "$WORK/starts"
  kill $pid; wait $pid 2>/dev/null || true
done
echo "cold start to ready (ms): median $(median < "$WORK/starts"), max $(sort -n "$WORK/starts" | tail -1) over $STARTS starts"

# Page renders, logged in as the marketing director.
$BIN --database-url "$DB" serve --port "$PORT" --no-jobs >/dev/null 2>&1 &
until curl -fs -o /dev/null "http://127.0.0.1:$PORT/readyz"; do sleep 0.01; done
JAR="$WORK/cookies"
curl -s -o /dev/null -c "$JAR" -H "Origin: http://127.0.0.1:$PORT" \
  -d "email=director@yunqi.example&password=marketops-demo" "http://127.0.0.1:$PORT/login"
printf "%-22s %10s %10s %10s\n" "page (ms)" "median" "p95" "vs static"
ref=""
for page in /static/app.css / /company /org /playbook /calendar /playbook/history /api/v1/users; do
  : > "$WORK/t"
  for _ in $(seq 1 "$N"); do
    curl -s -o /dev/null -b "$JAR" -w '%{time_total}\n' "http://127.0.0.1:$PORT$page" >> "$WORK/t"
  done
  med=$(awk '{print $1*1000}' "$WORK/t" | median)
  p=$(awk '{print $1*1000}' "$WORK/t" | p95)
  [ -z "$ref" ] && ref=$med
  printf "%-22s %10.2f %10.2f %9.1fx\n" "$page" "$med" "$p" "$(awk -v m="$med" -v r="$ref" 'BEGIN {print m / r}')"
done
