#!/usr/bin/env bash
# Customer analytics benchmark (issue 5, SPEC C-1, C-2):
#  1. Import of a generated orders CSV (default 10,000,000 orders of ~800,000 customers)
#     with `marketops import orders`: orders/s, peak memory, and the ratio to a bare bulk
#     insert of the same rows into the same kind of database and transaction (no checks,
#     no indexes).
#  2. RFM as of a date with `marketops analytics rfm` from MarketOps' own store, against
#     DuckDB and Polars over a Parquet file of the same orders, same definition: medians of
#     RUNS runs, peak memory, and the MD5 of each engine's CSV (equal = identical output).
#
#   bench/customers.sh [ORDERS] [CUSTOMERS] [RUNS]
#
# The references are Python packages from PyPI installed into a virtualenv under target/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-10000000}
CUSTOMERS=${2:-800000}
RUNS=${3:-3}
AS_OF=2026-01-01
. bench/common.sh duckdb polars pyarrow

$LOAD orders --rows "$ROWS" --customers "$CUSTOMERS" >"$WORK/orders.csv"
echo "orders file: $ROWS rows, $(du -h "$WORK/orders.csv" | cut -f1)"

# 1. Import, and the bare bulk insert of the same rows.
DB="sqlite://$WORK/store.db"
$BIN --database-url "$DB" migrate >/dev/null
/usr/bin/time -f "%e %M" -o "$WORK/time" $BIN --database-url "$DB" import orders "$WORK/orders.csv" --quiet
read -r wall rss <"$WORK/time"
echo "import: ${wall} s, $(awk -v k="$rss" 'BEGIN {printf "%.0f MiB", k / 1024}') peak, $(awk -v n="$ROWS" -v s="$wall" 'BEGIN {printf "%.0f", n / s}') orders/s"
bulk=$($LOAD bulk-orders --database-url "sqlite://$WORK/bulk.db" --file "$WORK/orders.csv")
echo "bare bulk insert: $bulk"
echo "$bulk" | python3 -c "import json,sys; b=json.load(sys.stdin); print('import / bare bulk insert: %.2f' % ($ROWS / $wall / b['per_second']))"

# 2. RFM.
timed_runs $BIN --database-url "$DB" analytics rfm --as-of "$AS_OF" --output "$WORK/rfm_marketops.csv"
echo "{\"engine\": \"marketops\", \"median_s\": $MEDIAN, \"peak_mib\": $PEAK_MIB, \"md5\": \"$(md5sum "$WORK/rfm_marketops.csv" | cut -d' ' -f1)\"}"
"$VENV/bin/python" bench/rfm_reference.py "$WORK/orders.csv" "$WORK/orders.parquet" "$AS_OF" "$RUNS" "$WORK"
echo "customers scored: $(($(wc -l <"$WORK/rfm_marketops.csv") - 1))"
