"""RFM references for bench/customers.sh: the same C-2 definition in DuckDB (over a Parquet
file) and in Polars (lazy, over the same file). Prints one JSON line per engine with the
median time of the runs and the MD5 of the CSV it wrote (identical bytes to MarketOps'
`analytics rfm --format csv` when the results agree)."""
import hashlib, json, statistics, sys, time

import duckdb
import polars as pl

csv_path, parquet_path, as_of, runs, out_dir = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]

con = duckdb.connect()
con.execute("SET preserve_insertion_order = false")
# Types as MarketOps stores them: integer ids, a date, exact money (DECIMAL).
con.execute(f"""COPY (SELECT CAST(order_id AS BIGINT) AS order_id, CAST(customer_id AS BIGINT) AS customer_id,
    CAST(order_date AS DATE) AS order_date, CAST(amount AS DECIMAL(18, 2)) AS amount
    FROM read_csv('{csv_path}', header = true, all_varchar = true)) TO '{parquet_path}' (FORMAT parquet)""")

SEGMENT = """CASE WHEN r >= 4 AND f >= 4 AND m >= 4 THEN 'champions' WHEN f >= 4 THEN 'loyal'
    WHEN r <= 2 AND f >= 3 THEN 'at_risk' WHEN r >= 4 AND f <= 2 THEN 'new'
    WHEN r <= 2 AND f <= 2 THEN 'lost' ELSE 'need_attention' END"""

DUCK = f"""COPY (
  WITH agg AS (
    SELECT customer_id, DATE '{as_of}' - max(order_date) AS recency_days, count(*) AS frequency,
           sum(amount) AS monetary
    FROM '{parquet_path}' WHERE order_date <= DATE '{as_of}' GROUP BY customer_id),
  scored AS (
    SELECT *, NTILE(5) OVER (ORDER BY recency_days DESC, customer_id) AS r,
              NTILE(5) OVER (ORDER BY frequency, customer_id) AS f,
              NTILE(5) OVER (ORDER BY monetary, customer_id) AS m FROM agg)
  SELECT customer_id, recency_days, frequency, CAST(monetary AS VARCHAR) AS monetary, r, f, m, {SEGMENT} AS segment
  FROM scored ORDER BY customer_id
) TO '{{out}}' (HEADER, DELIMITER ',', QUOTE '')"""


def md5(path):
    return hashlib.md5(open(path, 'rb').read()).hexdigest()


def timed(fn):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


duck_out = f"{out_dir}/rfm_duckdb.csv"
t = timed(lambda: con.execute(DUCK.replace('{out}', duck_out)))
print(json.dumps({"engine": "duckdb", "version": duckdb.__version__, "median_s": t, "md5": md5(duck_out)}))


def polars_rfm():
    d = pl.lit(as_of).str.to_date()
    agg = (pl.scan_parquet(parquet_path).filter(pl.col("order_date") <= d).group_by("customer_id")
           .agg((d - pl.col("order_date").max()).dt.total_days().alias("recency_days"),
                pl.len().alias("frequency"), pl.col("amount").sum().alias("monetary")))

    out = (agg.sort(["recency_days", "customer_id"], descending=[True, False]).with_row_index("rr")
              .sort(["frequency", "customer_id"]).with_row_index("fr")
              .sort(["monetary", "customer_id"]).with_row_index("mr"))
    n = pl.len()
    small, extra = n // 5, n % 5

    # NTILE(5) from a 0-based row index: the first n % 5 tiles hold one row more.
    def tile(rank):
        big = extra * (small + 1)
        return (pl.when(pl.col(rank) < big).then(pl.col(rank) // (small + 1))
                .otherwise(extra + (pl.col(rank) - big) // pl.max_horizontal(small, 1)) + 1)

    out = out.with_columns(r=tile("rr"), f=tile("fr"), m=tile("mr"))
    seg = (pl.when((pl.col("r") >= 4) & (pl.col("f") >= 4) & (pl.col("m") >= 4)).then(pl.lit("champions"))
           .when(pl.col("f") >= 4).then(pl.lit("loyal"))
           .when((pl.col("r") <= 2) & (pl.col("f") >= 3)).then(pl.lit("at_risk"))
           .when((pl.col("r") >= 4) & (pl.col("f") <= 2)).then(pl.lit("new"))
           .when((pl.col("r") <= 2) & (pl.col("f") <= 2)).then(pl.lit("lost"))
           .otherwise(pl.lit("need_attention")))
    (out.with_columns(segment=seg, monetary=pl.col("monetary").cast(pl.String))
        .select("customer_id", "recency_days", "frequency", "monetary", "r", "f", "m", "segment")
        .sort("customer_id").collect().write_csv(f"{out_dir}/rfm_polars.csv", quote_style="never"))


t = timed(polars_rfm)
print(json.dumps({"engine": "polars", "version": pl.__version__, "median_s": t, "md5": md5(f"{out_dir}/rfm_polars.csv")}))
