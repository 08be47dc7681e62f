"""The issue's CDNOW acceptance figures, next to lifetimes' BG/NBD + Gamma-Gamma on the same split.

    python bench/bench_cdnow.py [--calibration-end 1997-09-30] [--holdout-end 1998-06-30]

Data: tests/data/cdnow_master.csv.gz, the CDNOW master file (23,570 customers who first
bought in Q1 1997; the copy lifetimes ships in lifetimes/datasets/CDNOW_master.txt), revenue
= dollar value, no cost column, so margin = revenue.

Prints, per purchase model of the engine's back-test on the holdout: fit quality, purchases and
margin errors (MAE, RMSE, total vs actual), the conditional expectations by calibration
frequency, the best of them on this holdout and the calibration of its 80 % range (for
information: a choice made on the holdout itself). Then what `valuate_csv` reports, which is
the acceptance figure: the model chosen by a back-test inside the calibration history
(valuation.offline.analyse, the same code as the command), judged on the holdout: RMSE, total,
range calibration. Then lifetimes 0.11's BetaGeoFitter +
GammaGammaFitter (frequency counted in distinct days, time in weeks) scored against the same
per-customer actual holdout margin. lifetimes is a benchmark-only dependency (the `bench`
extra; it needs setuptools < 70 for pkg_resources).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from valuation.engine import backtest_models
from valuation.offline import analyse


def load() -> pd.DataFrame:
    tx = pd.read_csv(ROOT / "tests" / "data" / "cdnow_master.csv.gz", dtype={"date": str})
    tx["date"] = pd.to_datetime(tx["date"], format="%Y%m%d")
    return tx


def lifetimes_backtest(tx: pd.DataFrame, calibration_end: str, holdout_end: str, actual: pd.Series) -> dict:
    from lifetimes import BetaGeoFitter, GammaGammaFitter
    from lifetimes.utils import calibration_and_holdout_data

    data = calibration_and_holdout_data(
        tx, "customer_id", "date", calibration_period_end=calibration_end, observation_period_end=holdout_end,
        freq="D", freq_multiplier=7, monetary_value_col="revenue",
    )
    started = time.perf_counter()
    bgf = BetaGeoFitter().fit(data["frequency_cal"], data["recency_cal"], data["T_cal"])
    repeat = data[(data["frequency_cal"] > 0) & (data["monetary_value_cal"] > 0)]
    ggf = GammaGammaFitter().fit(repeat["frequency_cal"], repeat["monetary_value_cal"])
    seconds = time.perf_counter() - started
    purchases = bgf.conditional_expected_number_of_purchases_up_to_time(
        data["duration_holdout"].iloc[0], data["frequency_cal"], data["recency_cal"], data["T_cal"])
    spend = ggf.conditional_expected_average_profit(data["frequency_cal"], data["monetary_value_cal"])
    predicted = (purchases * spend).reindex(actual.index).fillna(0.0).to_numpy()
    truth = actual.to_numpy()
    return {
        "customers": int(len(data)),
        "bgnbd": {k: round(float(v), 4) for k, v in bgf.params_.items()},
        "gamma_gamma": {k: round(float(v), 4) for k, v in ggf.params_.items()},
        "margin_mae": float(np.mean(np.abs(predicted - truth))),
        "margin_rmse": float(np.sqrt(np.mean((predicted - truth) ** 2))),
        "predicted_total": float(predicted.sum()),
        "actual_total": float(truth.sum()),
        "total_error": float(predicted.sum() / truth.sum() - 1),
        "fit_seconds": round(seconds, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calibration-end", default="1997-09-30")
    parser.add_argument("--holdout-end", default="1998-06-30")
    args = parser.parse_args()
    tx = load()
    print(f"CDNOW master: {len(tx):,} rows, {tx['customer_id'].nunique():,} customers; "
          f"calibration to {args.calibration_end}, holdout to {args.holdout_end}; load average {os.getloadavg()}")
    started = time.perf_counter()
    comparison, per_customer = backtest_models(tx, args.calibration_end, args.holdout_end)
    seconds = time.perf_counter() - started
    print(f"\nengine back-test: {seconds:.1f} s, {comparison['customers']:,} customers with a purchase day "
          "(customers whose only rows are $0 have none)")
    for name, entry in comparison["models_compared"].items():
        m, p = entry["margin"], entry["purchases"]
        print(f"  {name:11s} ok={entry['fit_quality']['ok']!s:5s} margin MAE {m['mae']:7.2f} RMSE {m['rmse']:7.2f} "
              f"total {m['predicted_total']:>11,.0f} vs {m['actual_total']:>11,.0f} ({m['total_error']:+.1%}); "
              f"purchases MAE {p['mae']:.3f} RMSE {p['rmse']:.3f} total {p['total_error']:+.1%}  [{entry['seconds']} s]")
    print(f"  best on this holdout (information only): {comparison['model']} ({comparison['reason']})")
    print(f"  range calibration: {json.dumps(comparison['range_calibration'])}")
    print("  conditional expectations of the chosen model (mean per customer):")
    print("    freq  customers  purchases pred/actual   margin pred/actual")
    for row in comparison["models_compared"][comparison["model"]]["conditional_expectations"]:
        print(f"    {row['frequency']:>4s} {row['customers']:>10,d}  {row['predicted_purchases']:8.3f} / "
              f"{row['actual_purchases']:6.3f}   {row['predicted_margin']:8.2f} / {row['actual_margin']:7.2f}")

    started = time.perf_counter()
    offline = analyse(tx.assign(cost=0.0), calibration_end=pd.Timestamp(args.calibration_end).date(),
                      holdout_end=pd.Timestamp(args.holdout_end).date()).report
    choice, judged = offline["model_choice"], offline["backtest"]
    print(f"\nvaluate_csv's path ({time.perf_counter() - started:.1f} s): model {offline['model']}, chosen inside the "
          f"calibration history on a {choice.get('holdout_weeks', 0):.1f}-week back-test: {choice.get('reason')}; "
          f"fit_quality ok={offline['fit_quality']['ok']}")
    print(f"  on the holdout: margin RMSE {judged['margin_rmse_per_customer']:.3f}, total "
          f"{judged['predicted_margin']:,.0f} vs {judged['actual_margin']:,.0f} ({judged['margin_total_error']:+.1%}), "
          f"range calibration {json.dumps(judged['range_calibration'])}")

    try:
        reference = lifetimes_backtest(tx, args.calibration_end, args.holdout_end, per_customer["holdout_margin"])
    except ImportError:
        print("\nlifetimes is not installed (pip install 'setuptools<70' lifetimes): no reference figures")
        return
    print(f"\nlifetimes BG/NBD + Gamma-Gamma on the same customers: {json.dumps(reference)}")
    rmse, calibration = judged["margin_rmse_per_customer"], judged["range_calibration"] or {}
    above, below = calibration.get("share_above_high"), calibration.get("share_below_low")
    print(f"\nACCEPTANCE (valuate_csv's choice, {offline['model']}):")
    print(f"  per-customer RMSE of holdout margin: {rmse:.3f} vs lifetimes {reference['margin_rmse']:.3f} "
          f"({'no worse' if rmse <= reference['margin_rmse'] + 1e-9 else 'WORSE'})")
    if above is None:
        print("  80 % range: none (the valuation fell back without ranges): NOT met")
    else:
        print(f"  above the 90th percentile {above:.1%} (7-13 %: {'met' if 0.07 <= above <= 0.13 else 'NOT met'}), "
              f"below the 10th {below:.1%} (at most 13 %: {'met' if below <= 0.13 else 'NOT met'})")
    total = judged["margin_total_error"]
    print(f"  total {total:+.1%} (within 25 %: {'met' if abs(total) <= 0.25 else 'NOT met'}; lifetimes "
          f"{reference['total_error']:+.1%})")


if __name__ == "__main__":
    main()
