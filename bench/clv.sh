#!/usr/bin/env bash
# Lifetime-value benchmark (issue 5, SPEC C-3):
#  1. Generates orders of CUSTOMERS customers who buy as BG/NBD assumes (seeded) and
#     imports them into a MarketOps store.
#  2. `marketops analytics clv` end to end (read the store, fit both models, predict for
#     every customer, write CSV): median of RUNS runs and peak memory.
#  3. The fit alone (BG/NBD + Gamma-Gamma) on the customers of that CSV, against the Python
#     `lifetimes` package fitting the same rows (as usually called, and with its condensed
#     weights option): medians, ratio, and the largest relative parameter difference.
#
#   bench/clv.sh [CUSTOMERS] [RUNS]
#
# The reference is a Python package from PyPI installed into a virtualenv under target/
# (bench/common.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
CUSTOMERS=${1:-1000000}
RUNS=${2:-3}
AS_OF=2026-01-01
. bench/common.sh lifetimes

$LOAD clv-orders --customers "$CUSTOMERS" >"$WORK/orders.csv"
echo "orders file: $(($(wc -l <"$WORK/orders.csv") - 1)) orders of $CUSTOMERS customers"
DB="sqlite://$WORK/store.db"
$BIN --database-url "$DB" migrate >/dev/null
/usr/bin/time -f "%e" -o "$WORK/time" $BIN --database-url "$DB" import orders "$WORK/orders.csv" --quiet 2>/dev/null
echo "import: $(cat "$WORK/time") s"

timed_runs $BIN --database-url "$DB" analytics clv --as-of "$AS_OF" --unit week --format csv --output "$WORK/clv.csv"
echo "{\"engine\": \"marketops analytics clv (store to CSV)\", \"median_s\": $MEDIAN, \"peak_mib\": $PEAK_MIB}"

ours=$($LOAD clv-fit --file "$WORK/clv.csv" --runs "$RUNS")
echo "$ours"
"$VENV/bin/python" bench/clv_reference.py "$WORK/clv.csv" "$RUNS" "$ours" | tee "$WORK/ref.json"
python3 - "$ours" "$WORK/ref.json" <<'PY'
import json, sys
ours = json.loads(sys.argv[1])
for line in open(sys.argv[2]):
    ref = json.loads(line)
    print("%s / marketops fit: %.1fx" % (ref["engine"], ref["median_s"] / ours["median_s"]))
PY
