"""Speed and memory of the valuation engine at scale, and agreement with `lifetimes`.

    python bench/bench_engine.py [--customers 1000000] [--transactions-customers 720000]
                                 [--lifetimes-customers 1000000] [--runs 3]

1. Engine on N synthetic customers given their per-customer summary (the Django side computes
   it in SQL): fit_valuation_models (BG/NBD with its covariance, Gamma-Gamma, the gate) +
   value_customers (incl. the range) + compute_thresholds + classify, as the nightly run does
   for a run whose back-test chose BG/NBD. Median wall time of --runs runs and the peak RSS of this process. Synthetic data
   are generated in a child process so their scratch memory does not count.
2. summarise_transactions on about 2M transaction rows.
3. lifetimes' BetaGeoFitter + GammaGammaFitter on the first --lifetimes-customers customers
   (0 skips it): wall time, ratio to the engine's fit of the same data, parameter agreement.
   lifetimes is a benchmark-only dependency.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import os
import pickle
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from valuation.engine import (
    BgNbdParams,
    EngineSettings,
    GammaGammaParams,
    bgnbd_log_likelihood,
    classify,
    compute_thresholds,
    fit_bgnbd,
    fit_gamma_gamma,
    fit_valuation_models,
    summarise_transactions,
    value_customers,
)
from valuation.engine.simulate import simulate_customers, simulate_transactions

TRUE_BG = BgNbdParams(r=0.25, alpha=4.4, a=0.8, b=2.4)
TRUE_GG = GammaGammaParams(p=6.25, q=3.74, v=15.44)
AS_OF = dt.date(2026, 6, 30)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def make_summary(n: int, path: str) -> None:
    """Per-customer summary as SQL would return it: first purchases spread over three years,
    times in whole days, window margin and services for the segments."""
    rng = np.random.default_rng(1)
    age_days = rng.integers(0, 3 * 365 + 1, n)
    sim = simulate_customers(n, TRUE_BG, age_days / 7.0, gamma_gamma=TRUE_GG, seed=3)
    recency_days = np.floor(sim["recency"].to_numpy() * 7.0)
    frequency = sim["frequency"].to_numpy()
    margin_window = np.where(rng.random(n) < 0.6, rng.gamma(1.5, 60.0, n), 0.0)
    summary = pd.DataFrame(
        {
            "purchase_days": frequency + 1,
            "frequency": frequency,
            "recency_weeks": recency_days / 7.0,
            "age_weeks": age_days / 7.0,
            "mean_repeat_margin": sim["mean_repeat_margin"].to_numpy(),
            "margin_window": margin_window,
            "value_to_customer": np.where(rng.random(n) < 0.3, rng.gamma(1.0, 80.0, n), 0.0),
            "active": rng.random(n) < 0.95,
        },
        index=pd.Index(np.arange(1, n + 1), name="customer_id"),
    )
    with open(path, "wb") as f:
        pickle.dump(summary, f, protocol=pickle.HIGHEST_PROTOCOL)


def make_transactions(n: int, path: str) -> None:
    rows = simulate_transactions(n, TRUE_BG, TRUE_GG, dt.date(2023, 7, 1), AS_OF, seed=7)
    with open(path, "wb") as f:
        pickle.dump(rows, f, protocol=pickle.HIGHEST_PROTOCOL)


def in_child(target, *args) -> None:
    process = multiprocessing.get_context("fork").Process(target=target, args=args)
    process.start()
    process.join()
    if process.exitcode != 0:
        raise RuntimeError(f"{target.__name__} failed")


def load(path: str):
    with open(path, "rb") as f:
        data = pickle.load(f)
    os.unlink(path)
    return data


def engine_run(summary: pd.DataFrame, settings: EngineSettings) -> dict[str, float]:
    times = {}
    t0 = time.perf_counter()
    fit = fit_valuation_models(summary, settings, model="bgnbd")
    t1 = time.perf_counter()
    scored = summary.join(value_customers(summary, fit, settings))
    t2 = time.perf_counter()
    thresholds = compute_thresholds(scored.fillna({"clv": 0.0}), settings)
    classify(scored, thresholds, settings)
    t3 = time.perf_counter()
    times["fit"] = t1 - t0
    times["score"] = t2 - t1
    times["classify"] = t3 - t2
    times["total"] = t3 - t0
    times["_fit_obj"] = fit  # type: ignore[assignment]
    return times


def sig_agree(a: float, b: float) -> str:
    rel = abs(a - b) / max(abs(b), 1e-300)
    return f"{a:.6g} vs {b:.6g} (rel diff {rel:.1e}{', 3 sig. digits agree' if f'{a:.3g}' == f'{b:.3g}' else ''})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--transactions-customers", type=int, default=720_000,
                        help="customers simulated for the summarise_transactions timing (~2M rows)")
    parser.add_argument("--lifetimes-customers", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    settings = EngineSettings()
    scratch = tempfile.mkdtemp(prefix="bench_engine_")

    print(f"machine: {os.cpu_count()} cores, numpy {np.__version__}, pandas {pd.__version__}")
    path = os.path.join(scratch, "summary.pkl")
    in_child(make_summary, args.customers, path)
    summary = load(path)
    print(f"\n1. engine on {len(summary):,} customers ({summary['frequency'].gt(0).sum():,} repeat buyers), "
          f"{args.runs} runs, simulation_draws={settings.simulation_draws}")
    print(f"   RSS after loading the summary: {peak_rss_mib():.0f} MiB")
    runs = [engine_run(summary, settings) for _ in range(args.runs)]
    fit = runs[-1].pop("_fit_obj")
    for r in runs[:-1]:
        r.pop("_fit_obj")
    for step in ("fit", "score", "classify", "total"):
        values = [r[step] for r in runs]
        print(f"   {step:9s} median {statistics.median(values):6.2f} s   (runs: {', '.join(f'{v:.2f}' for v in values)})")
    engine_peak = peak_rss_mib()
    print(f"   peak RSS of the process: {engine_peak:.0f} MiB")
    print(f"   BG/NBD {fit.bgnbd}")
    print(f"   Gamma-Gamma {fit.gamma_gamma}")
    total = statistics.median(r["total"] for r in runs)
    print(f"   budget: total <= 10 s -> {'OK' if total <= 10 else 'OVER'}; "
          f"peak <= 2048 MiB -> {'OK' if engine_peak <= 2048 else 'OVER'}")

    path = os.path.join(scratch, "transactions.pkl")
    in_child(make_transactions, args.transactions_customers, path)
    rows = load(path)
    timings = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        table = summarise_transactions(rows, AS_OF, settings)
        timings.append(time.perf_counter() - t0)
    print(f"\n2. summarise_transactions on {len(rows):,} rows -> {len(table):,} customers: "
          f"median {statistics.median(timings):.2f} s (runs: {', '.join(f'{v:.2f}' for v in timings)})")
    del rows, table

    if args.lifetimes_customers <= 0:
        return
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    part = summary.iloc[: args.lifetimes_customers]
    x = part["frequency"].to_numpy()
    t_x = part["recency_weeks"].to_numpy()
    T = part["age_weeks"].to_numpy()
    m = part["mean_repeat_margin"].to_numpy()
    spenders = (x > 0) & (m > 0)
    ours_runs = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        ours_bg = fit_bgnbd(x, t_x, T)
        ours_gg = fit_gamma_gamma(x, m)
        ours_runs.append(time.perf_counter() - t0)
    ours = statistics.median(ours_runs)
    t0 = time.perf_counter()
    bgf = BetaGeoFitter().fit(x, t_x, T)
    ggf = GammaGammaFitter().fit(x[spenders], m[spenders])
    theirs = time.perf_counter() - t0
    print(f"\n3. lifetimes on {len(part):,} customers: BG/NBD + Gamma-Gamma fit {theirs:.1f} s (one run), "
          f"engine median {ours:.2f} s -> engine {theirs / ours:.1f}x faster")
    lp = bgf.params_
    for name, ours_value in (("r", ours_bg.r), ("alpha", ours_bg.alpha), ("a", ours_bg.a), ("b", ours_bg.b)):
        print(f"   BG/NBD {name:5s} {sig_agree(ours_value, float(lp[name]))}")
    gp = ggf.params_
    for name, ours_value in (("p", ours_gg.p), ("q", ours_gg.q), ("v", ours_gg.v)):
        print(f"   GG     {name:5s} {sig_agree(ours_value, float(gp[name]))}")
    theirs_bg = BgNbdParams(*(float(lp[k]) for k in ("r", "alpha", "a", "b")))
    print(f"   BG/NBD log-likelihood (eq. 6): engine optimum {ours_bg.log_likelihood:.3f}, "
          f"at lifetimes' parameters {bgnbd_log_likelihood(theirs_bg, x, t_x, T):.3f}")

if __name__ == "__main__":
    main()
