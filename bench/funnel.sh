#!/usr/bin/env bash
# Funnel benchmark (issue 5, SPEC C-5): ROWS generated funnel events (seeded) imported with
# `marketops import events`, then the strict funnel per channel and campaign over the first
# half of 2026 with `marketops analytics funnel` from MarketOps' own store, against DuckDB
# over a Parquet file of the same events (the same query), medians of RUNS runs, and the
# MD5 of both CSVs (equal = identical counts).
#
#   bench/funnel.sh [ROWS] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-10000000}
RUNS=${2:-3}
FROM=2026-01-01
TO=2026-06-30
cargo build --release --locked -q -p marketops -p testkit --bin marketops --bin loadgen
BIN=target/release/marketops
LOAD=target/release/loadgen
VENV=target/bench-venv
if [ ! -x "$VENV/bin/python" ]; then python3 -m venv "$VENV"; fi
"$VENV/bin/pip" install -q duckdb
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
$LOAD events --rows "$ROWS" >"$WORK/events.csv"
echo "events file: $ROWS rows, $(du -h "$WORK/events.csv" | cut -f1)"
DB="sqlite://$WORK/store.db"
$BIN --database-url "$DB" migrate >/dev/null
/usr/bin/time -f "%e %M" -o "$WORK/time" $BIN --database-url "$DB" import events "$WORK/events.csv" --quiet >/dev/null 2>&1
read -r wall rss <"$WORK/time"
echo "import: ${wall} s, $((rss / 1024)) MiB peak"
times=()
for _ in $(seq 1 "$RUNS"); do
  /usr/bin/time -f "%e %M" -o "$WORK/time" $BIN --database-url "$DB" analytics funnel --from $FROM --to $TO \
    --output "$WORK/funnel_marketops.csv" 2>/dev/null
  read -r t rss <"$WORK/time"
  times+=("$t")
done
median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo "{\"engine\": \"marketops\", \"median_s\": $median, \"peak_mib\": $((rss / 1024)), \"md5\": \"$(md5sum <"$WORK/funnel_marketops.csv" | cut -d' ' -f1)\"}"
"$VENV/bin/python" bench/funnel_reference.py "$WORK/events.csv" "$WORK/events.parquet" $FROM 2026-07-01 "$RUNS" "$WORK/funnel_duckdb.csv"
echo "duckdb md5: $(md5sum <"$WORK/funnel_duckdb.csv" | cut -d' ' -f1)"
