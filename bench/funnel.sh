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
. bench/common.sh duckdb
$LOAD events --rows "$ROWS" >"$WORK/events.csv"
echo "events file: $ROWS rows, $(du -h "$WORK/events.csv" | cut -f1)"
DB="sqlite://$WORK/store.db"
$BIN --database-url "$DB" migrate >/dev/null
/usr/bin/time -f "%e %M" -o "$WORK/time" $BIN --database-url "$DB" import events "$WORK/events.csv" --quiet >/dev/null 2>&1
read -r wall rss <"$WORK/time"
echo "import: ${wall} s, $((rss / 1024)) MiB peak"
timed_runs $BIN --database-url "$DB" analytics funnel --from $FROM --to $TO --output "$WORK/funnel_marketops.csv"
echo "{\"engine\": \"marketops\", \"median_s\": $MEDIAN, \"peak_mib\": $PEAK_MIB, \"md5\": \"$(md5sum <"$WORK/funnel_marketops.csv" | cut -d' ' -f1)\"}"
"$VENV/bin/python" bench/funnel_reference.py "$WORK/events.csv" "$WORK/events.parquet" $FROM 2026-07-01 "$RUNS" "$WORK/funnel_duckdb.csv"
echo "duckdb md5: $(md5sum <"$WORK/funnel_duckdb.csv" | cut -d' ' -f1)"
