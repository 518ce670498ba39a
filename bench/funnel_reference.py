"""C-5 reference: the same strict funnel in DuckDB over a Parquet file of the events, per
channel and campaign: a user counts at a step only with an event of that type strictly
later than the moment it reached the step before (the earliest such event). Prints the
median time of RUNS runs and writes the CSV MarketOps writes, for the checksum.

    python bench/funnel_reference.py EVENTS_CSV PARQUET FROM TO RUNS OUT_CSV
"""
import json
import sys
import time

import duckdb

csv_path, parquet, start, end, runs, out = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6]
con = duckdb.connect()
con.execute("SET TimeZone = 'UTC'")
con.execute(
    f"COPY (SELECT user_id, channel, campaign, type, CAST(ts AS TIMESTAMPTZ) AS ts FROM read_csv('{csv_path}', header=true, "
    f"columns={{'user_id': 'VARCHAR', 'channel': 'VARCHAR', 'campaign': 'VARCHAR', 'type': 'VARCHAR', 'ts': 'VARCHAR'}})) "
    f"TO '{parquet}' (FORMAT parquet)"
)
step = lambda n, prev, kind: (
    f"s{n} AS (SELECT p.channel, p.campaign, p.user_id, min(e.ts) AS t FROM {prev} p JOIN e "
    f"ON e.channel = p.channel AND e.campaign = p.campaign AND e.user_id = p.user_id AND e.type = '{kind}' AND e.ts > p.t "
    f"GROUP BY p.channel, p.campaign, p.user_id)"
)
sql = (
    f"WITH e AS (SELECT * FROM read_parquet('{parquet}') WHERE ts >= TIMESTAMPTZ '{start} 00:00:00+00' "
    f"AND ts < TIMESTAMPTZ '{end} 00:00:00+00'), "
    "s0 AS (SELECT channel, campaign, user_id, min(ts) AS t FROM e WHERE type = 'exposure' GROUP BY ALL), "
    + ", ".join([step(1, "s0", "click"), step(2, "s1", "conversion"), step(3, "s2", "repurchase")])
    + " SELECT s0.channel, s0.campaign, count(*), count(s1.t), count(s2.t), count(s3.t) FROM s0 "
    "LEFT JOIN s1 USING (channel, campaign, user_id) LEFT JOIN s2 USING (channel, campaign, user_id) "
    "LEFT JOIN s3 USING (channel, campaign, user_id) GROUP BY ALL ORDER BY 1, 2"
)
times = []
for _ in range(runs):
    t0 = time.perf_counter()
    rows = con.execute(sql).fetchall()
    times.append(time.perf_counter() - t0)
with open(out, "w") as f:
    f.write("channel,campaign,exposure,click,conversion,repurchase\n")
    for r in rows:
        f.write(",".join(str(v) for v in r) + "\n")
print(json.dumps({"engine": "duckdb " + duckdb.__version__, "median_s": sorted(times)[len(times) // 2]}))
