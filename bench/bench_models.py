"""What model choice and the new valuation cost at scale, next to the single BG/NBD fit.

    python bench/bench_models.py [--customers 1000000] [--runs 1]

On N synthetic customers (BG/NBD + Gamma-Gamma truth, first purchases spread over three
years, times in whole days as the SQL summary gives them, a 26-week holdout simulated from
the same process), measured in one run on one machine and printed with its load average:

1. fit_bgnbd alone: the floor (what the nightly run pays today for its purchase model);
2. fit_bgnbd + fit_gamma_gamma: the two fits alone, without covariance or gate;
3. compare_models: BG/NBD, MBG/NBD and Pareto/NBD fitted on the calibration summary, the
   back-test figures and the range calibration of the chosen model;
4. fit_valuation_models + value_customers: the chosen model with its gate, ranges with
   parameter uncertainty, value to infinity and remaining lifetime.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from valuation.engine import (
    BgNbdParams,
    EngineSettings,
    GammaGammaParams,
    compare_models,
    fit_bgnbd,
    fit_gamma_gamma,
    fit_valuation_models,
    value_customers,
)
from valuation.engine.simulate import simulate_customers

TRUE_BG = BgNbdParams(r=0.25, alpha=4.4, a=0.8, b=2.4)
TRUE_GG = GammaGammaParams(p=6.25, q=3.74, v=15.44)
HOLDOUT_WEEKS = 26.0


def make(n: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(1)
    age_days = rng.integers(0, 3 * 365 + 1, n)
    sim = simulate_customers(n, TRUE_BG, age_days / 7.0, holdout_weeks=HOLDOUT_WEEKS, gamma_gamma=TRUE_GG, seed=3)
    frequency = sim["frequency"].to_numpy()
    index = pd.Index(np.arange(1, n + 1), name="customer_id")
    summary = pd.DataFrame(
        {
            "purchase_days": frequency + 1,
            "frequency": frequency,
            "recency_weeks": np.floor(sim["recency"].to_numpy() * 7.0) / 7.0,
            "age_weeks": age_days / 7.0,
            "mean_repeat_margin": sim["mean_repeat_margin"].to_numpy(),
            "mean_purchase_margin": (sim["mean_repeat_margin"] * frequency + sim["first_margin"]).to_numpy()
            / (frequency + 1),
            "margin_window": sim["mean_repeat_margin"].to_numpy() * np.minimum(frequency, 3),
        },
        index=index,
    )
    holdout = pd.DataFrame(
        {"holdout_purchases": sim["holdout_purchases"].to_numpy(), "holdout_margin": sim["holdout_margin"].to_numpy()},
        index=index,
    )
    return summary, holdout


def timed(label: str, runs: int, fn):
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    print(f"{label:58s} {statistics.median(times):7.2f} s   (load average {os.getloadavg()[0]:.2f})", flush=True)
    return result, statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    settings = EngineSettings()
    summary, holdout = make(args.customers)
    print(f"{args.customers:,} customers, {os.cpu_count()} cores, load average at start {os.getloadavg()}")
    x, t_x, T = summary["frequency"], summary["recency_weeks"], summary["age_weeks"]
    _, floor = timed("1. fit_bgnbd (the floor)", args.runs, lambda: fit_bgnbd(x, t_x, T))
    spenders = summary[(summary["frequency"] >= 1) & (summary["mean_repeat_margin"] > 0)]
    timed("2. fit_bgnbd + fit_gamma_gamma (no covariance, no gate)", args.runs,
          lambda: (fit_bgnbd(x, t_x, T), fit_gamma_gamma(spenders["frequency"], spenders["mean_repeat_margin"])))
    comparison, choice = timed("3. compare_models (3 models, back-test, range calibration)", args.runs,
                               lambda: compare_models(summary, holdout, HOLDOUT_WEEKS, settings))
    models, fit_new = timed(f"4a. fit_valuation_models ({comparison['model']})", args.runs,
                            lambda: fit_valuation_models(summary, settings, model=comparison["model"]))
    _, score_new = timed("4b. value_customers", args.runs, lambda: value_customers(summary, models, settings))
    print(f"\nmodel choice costs {choice:.1f} s = {choice / floor:.1f} x the single BG/NBD fit ({floor:.2f} s)")
    for name, entry in comparison["models_compared"].items():
        print(f"  {name:11s} {entry['seconds']:6.2f} s  margin RMSE {entry['margin']['rmse']:.3f} "
              f"total {entry['margin']['total_error']:+.2%}  sampled fit: {entry['parameters'].get('sampled')}")
    print(f"  chosen {comparison['model']}; range calibration {comparison['range_calibration']}")
    print(f"fit quality: {models.fit_quality}")


if __name__ == "__main__":
    main()
