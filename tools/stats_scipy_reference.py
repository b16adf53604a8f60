#!/usr/bin/python3
"""tools/stats_scipy_reference.py - the reference numbers of spec/stats_spec.lua
from SciPy (python3-scipy): Student-t quantiles and distribution function,
95 % t intervals of a mean, and paired t tests (scipy.stats.ttest_rel).
Writes spec/fixtures/stats/scipy.json.

    /usr/bin/python3 tools/stats_scipy_reference.py
"""
import json
import os

import numpy as np
from scipy import stats

OUT = os.path.join(os.path.dirname(__file__), "..", "spec", "fixtures", "stats", "scipy.json")


def main():
    rng = np.random.default_rng(20)
    quantiles = [{"p": p, "df": df, "t": float(stats.t.ppf(p, df))}
                 for df in (1, 2, 3, 4, 5, 9, 19, 29, 60) for p in (0.025, 0.5, 0.9, 0.975, 0.995)]
    cdf = [{"t": t, "df": df, "cdf": float(stats.t.cdf(t, df))}
           for df in (1, 4, 7, 30) for t in (-3.1, -0.4, 0.0, 1.0, 2.5, 8.0)]
    paired = []
    for n in (2, 3, 5, 8, 20):
        x = rng.normal(0.85, 0.01, n)
        y = x + rng.normal(-0.004, 0.006, n)
        r = stats.ttest_rel(x, y)
        d = x - y
        half = stats.t.ppf(0.975, n - 1) * d.std(ddof=1) / np.sqrt(n)
        m = x.mean()
        hx = stats.t.ppf(0.975, n - 1) * x.std(ddof=1) / np.sqrt(n)
        paired.append({"x": x.tolist(), "y": y.tolist(), "t": float(r.statistic), "p": float(r.pvalue),
                       "mean": float(d.mean()), "sd": float(d.std(ddof=1)),
                       "lo": float(d.mean() - half), "hi": float(d.mean() + half),
                       "x_mean": float(m), "x_sd": float(x.std(ddof=1)), "x_lo": float(m - hx),
                       "x_hi": float(m + hx)})
    tmp = OUT + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"quantiles": quantiles, "cdf": cdf, "paired": paired}, f, indent=1)
    os.replace(tmp, OUT)
    print(f"wrote {OUT}: {len(quantiles)} quantiles, {len(cdf)} cdf values, {len(paired)} paired tests")


if __name__ == "__main__":
    main()
