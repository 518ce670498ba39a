"""C-3 reference: the Python `lifetimes` package fitting BG/NBD and Gamma-Gamma to the same
customers MarketOps fitted (its `analytics clv --format csv` output: frequency, recency, T,
monetary). Prints one JSON line per way of calling it, with the median time of RUNS fits,
the parameters, and their largest relative difference from MarketOps' (given as JSON).

    python bench/clv_reference.py CLV_CSV RUNS MARKETOPS_FIT_JSON
"""
import json
import sys
import time
import warnings

import numpy as np
import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter

warnings.simplefilter("ignore")
path, runs, ours = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
d = pd.read_csv(path, usecols=["frequency", "recency", "T", "monetary"])
repeat = d[d.frequency > 0]


def fit(frame, rep, weights=None, rep_weights=None):
    bg = BetaGeoFitter().fit(frame.frequency, frame.recency, frame["T"], weights=weights)
    gg = GammaGammaFitter().fit(rep.frequency, rep.monetary, weights=rep_weights)
    return bg, gg


def report(label, call):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        bg, gg = call()
        times.append(time.perf_counter() - start)
    params = {**{k: float(v) for k, v in bg.params_.items()}, **{k: float(v) for k, v in gg.params_.items()}}
    mine = {**ours["bg_nbd"], **ours["gamma_gamma"]}
    worst = max(abs(params[k] - mine[k]) / abs(mine[k]) for k in params)
    print(json.dumps({"engine": label, "customers": len(d), "median_s": sorted(times)[len(times) // 2],
                      "params": params, "max_relative_difference": worst}))


# As the package is usually called: one row per customer.
report("lifetimes", lambda: fit(d, repeat))
# And with customers of equal (frequency, recency, T) condensed into weights, the
# package's own option (Gamma-Gamma rows cannot be condensed: spend differs per customer).
grouped = d.groupby(["frequency", "recency", "T"]).size().reset_index(name="w")
report("lifetimes (condensed patterns)", lambda: fit(grouped, repeat, weights=grouped.w.values))
