#!/usr/bin/env bash
# Lead engine benchmark (issue 4, SPEC L-1…L-4):
#  1. API capture — POST /api/v1/leads with a bearer token and a fresh Idempotency-Key,
#     durable (the 201 comes after the commit), from the load generator in a second process
#     on loopback: peak throughput (closed loop), then latency at 80 % of that peak (open
#     loop, latency counted from when each request was due; three times, each at 80 % of a
#     closed loop run just before it, the median p99).
#     On SQLite and on PostgreSQL. Then once more with the keys (e-mail, phone, idempotency
#     key) scattered over their ranges instead of in order (report only).
#     Reference in the same run: a plain insert loop of the same rows into the same kind of
#     database, one committed row per statement (the physical limit of a durable write).
#  2. Import of a generated CSV (default 1,000,000 leads) with `marketops import leads`:
#     checked, graded, deduplicated, routed and written in one transaction; wall time and
#     peak memory (max RSS). Then SQLite's search index of them (`marketops search-index`),
#     timed apart.
#  3. Lead list and lead detail with those leads in the database: latency quantiles of the
#     pages and of the API, first page and deep keyset pages.
#
#   bench/leads.sh [SECONDS_PER_CAPTURE_RUN] [IMPORT_ROWS]
#
# PostgreSQL is taken from BENCH_PG (default postgres://postgres@127.0.0.1:5432);
# set it to "" to skip the PostgreSQL half.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
ROWS=${2:-1000000}
PORT=${BENCH_PORT:-18182}
PG=${BENCH_PG-postgres://postgres@127.0.0.1:5432}
cargo build --release --locked -q -p marketops -p testkit --bin marketops --bin loadgen
BIN=target/release/marketops
LOAD=target/release/loadgen
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
URL="http://127.0.0.1:$PORT"

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
field() { python3 -c "import json,sys; print(json.loads(sys.stdin.read())['$1'])"; }

serve() { # serve DB_URL — the server on $PORT, jobs on (as in production)
  $BIN --database-url "$1" serve --port "$PORT" >"$WORK/server.log" 2>&1 &
  SERVER=$!
  until curl -fs -o /dev/null "$URL/readyz"; do sleep 0.05; done
}
stop() { kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; }

capture_bench() { # capture_bench LABEL DB_URL REFERENCE_DB_URL
  local label=$1 db=$2 ref=$3
  $BIN --database-url "$db" demo --history-days 30 >"$WORK/demo.log" 2>&1 || { tail "$WORK/demo.log"; exit 1; }
  local token
  token=$($BIN --database-url "$db" user token --email marketer@yunqi.example --name bench | tail -n 1)
  serve "$db"
  # Warm-up, then the peak: the closed loop at 64, 128 and 256 concurrent clients (the
  # writer commits whatever is waiting as one transaction, so more clients in flight make
  # larger transactions until the queueing costs more than it saves), the best of them.
  $LOAD capture --url "$URL" --token "$token" --concurrency 16 --seconds 2 --first 100000000 >/dev/null
  local peak="" best=64 at80 run first=200000000
  for clients in 64 128 256; do
    run=$($LOAD capture --url "$URL" --token "$token" --concurrency "$clients" --seconds "$SECS" --first "$first")
    echo "$label closed loop, $clients clients: $run"
    first=$((first + 20000000))
    if [ -z "$peak" ] || [ "$(echo "$run" | field per_second | cut -d. -f1)" -gt "$(echo "$peak" | field per_second | cut -d. -f1)" ]; then
      peak=$run
      best=$clients
    fi
  done
  echo "$label peak:   $peak"
  # Then three times: the closed loop at that many clients again, and an open loop at 80 %
  # of what it just did; the median of the three p99s is reported. This host's speed
  # drifts by a fifth within a minute (a closed loop of 12,627 /s was followed by two of
  # 10,563 /s), so 80 % of a peak measured minutes earlier can be more than the server can
  # do by the time it is asked; and one run's p99 moves by a factor of two or more from one
  # minute to the next with the same binary (each run reports its p99 second by second).
  local p99s="" rate
  for n in 1 2 3; do
    run=$($LOAD capture --url "$URL" --token "$token" --concurrency "$best" --seconds "$SECS" --first "$first")
    first=$((first + 20000000))
    rate=$(echo "$run" | field per_second | awk '{printf "%d", $1 * 0.8}')
    at80=$($LOAD capture --url "$URL" --token "$token" --concurrency 256 --seconds "$SECS" --rate "$rate" --first "$first")
    first=$((first + 20000000))
    echo "$label at 80% ($n of 3): closed loop $(echo "$run" | field per_second | cut -d. -f1) /s, then $rate /s asked: $at80"
    p99s="$p99s $(echo "$at80" | field p99_ms)"
  done
  echo "$label at 80%: median p99 $(echo $p99s | tr ' ' '\n' | sort -g | sed -n 2p) ms of$p99s"
  # The generated e-mails, phones and idempotency keys above come in order, so each unique
  # index takes every new key on its last page. Real clients' keys fall anywhere: once more,
  # closed loop and 80 %, with keys scattered over their ranges (report only).
  run=$($LOAD capture --url "$URL" --token "$token" --concurrency "$best" --seconds "$SECS" --first "$first" --random-keys)
  first=$((first + 20000000))
  rate=$(echo "$run" | field per_second | awk '{printf "%d", $1 * 0.8}')
  at80=$($LOAD capture --url "$URL" --token "$token" --concurrency 256 --seconds "$SECS" --rate "$rate" --first "$first" --random-keys)
  first=$((first + 20000000))
  echo "$label random keys: closed loop $run"
  echo "$label random keys at 80%: $rate /s asked: $at80"
  stop
  local plain
  plain=$($LOAD plain-insert --database-url "$ref" --rows 50000)
  echo "$label plain insert loop: $plain"
  echo "$peak $plain" | python3 -c "import json,sys; d=sys.stdin.read().split(' {'); a=json.loads(d[0]); b=json.loads('{'+d[1]); print('$label capture / plain insert: %.2f' % (a['per_second']/b['per_second']))"
}

# 1. Capture.
capture_bench sqlite "sqlite://$WORK/capture.db" "sqlite://$WORK/plain.db"
if [ -n "$PG" ]; then
  for d in marketops_bench marketops_bench_plain; do
    psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $d" -c "CREATE DATABASE $d" >/dev/null
  done
  capture_bench postgres "$PG/marketops_bench" "$PG/marketops_bench_plain"
  # Its databases go, and its dirty buffers reach the disk, before the import is timed: left
  # in place, PostgreSQL vacuums and analyzes hundreds of thousands of new rows and writes
  # its checkpoint out in the background for minutes, on the cores and the disk the import
  # is timed on.
  for d in marketops_bench marketops_bench_plain; do
    psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $d WITH (FORCE)" >/dev/null
  done
  psql "$PG/postgres" -qc "CHECKPOINT" >/dev/null
fi

# 2. Import. The capture stores go first, and what is still to be written of them and of the
# file reaches the disk before the clock starts (`sync`): the import is timed on a quiet
# machine, not beside the write-back of several GB the capture runs left behind.
rm -f "$WORK"/capture.db* "$WORK"/plain.db*
DB="sqlite://$WORK/import.db"
$BIN --database-url "$DB" demo --history-days 0 >"$WORK/demo.log" 2>&1
$LOAD csv --rows "$ROWS" --first 500000000 >"$WORK/leads.csv"
echo "import file: $ROWS rows, $(du -h "$WORK/leads.csv" | cut -f1)"
sync
/usr/bin/time -f "%e %M" -o "$WORK/time" $BIN --database-url "$DB" import leads "$WORK/leads.csv" --quiet
read -r wall rss <"$WORK/time"
echo "import: ${wall} s wall, $(awk -v k="$rss" 'BEGIN {printf "%.0f MiB", k / 1024}') peak memory, $(awk -v n="$ROWS" -v s="$wall" 'BEGIN {printf "%.0f", n / s}') leads/s"
# SQLite's search index (a file of its own, `store::search`) takes the new leads after the
# import's commit: a server does it in the background; here the command does it now, timed
# on its own, so the pages below are measured with the index caught up.
/usr/bin/time -f "%e %M" -o "$WORK/time" $BIN --database-url "$DB" search-index --quiet >/dev/null
read -r wall rss <"$WORK/time"
echo "search index of the imported leads: ${wall} s wall, $(awk -v k="$rss" 'BEGIN {printf "%.0f MiB", k / 1024}') peak memory"

# 3. List and detail with those leads.
serve "$DB"
JAR="$WORK/cookies"
curl -s -o /dev/null -c "$JAR" -H "Origin: $URL" \
  -d "email=director@yunqi.example&password=marketops-demo" "$URL/login"
COOKIE="Cookie: $(awk '$6 == "mko_session" {print $6 "=" $7}' "$JAR")"
TOKEN=$($BIN --database-url "$DB" user token --email director@yunqi.example --name bench | tail -n 1)
# A lead in the middle of the table: deep keyset pages start there.
MID=$(curl -s -H "Authorization: Bearer $TOKEN" "$URL/api/v1/leads?limit=1" | python3 -c "import json,sys; print(json.load(sys.stdin)['leads'][0]['id'] // 2)")
$LOAD pages --url "$URL" --header "$COOKIE" --requests 300 \
  --paths "/leads,/leads?before_id=$MID,/leads?grade=A,/leads?channel=wechat,/leads?status=lost,/leads?q=%E7%8E%8B%E4%BC%9F,/leads/$MID"
$LOAD pages --url "$URL" --header "Authorization: Bearer $TOKEN" --requests 300 \
  --paths "/api/v1/leads,/api/v1/leads?before_id=$MID,/api/v1/leads/$MID"
stop
