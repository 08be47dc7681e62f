"""The issue's wholesaler acceptance figures: `valuate_csv` on a real B2B wholesaler's invoices
with a 26-week holdout ending in December, next to lifetimes' BG/NBD + Gamma-Gamma on the same
split, computed in the same run.

    python bench/bench_wholesaler.py PATH [--holdout-end 2011-12-09] [--holdout-weeks 26] [--keep DIR]

Data: the "Online Retail" invoices (Chen, Sain & Guo 2012): every invoice line of a UK
non-store online retailer of gift-ware, most of whose customers are wholesalers, from
2010-12-01 to 2011-12-09; columns InvoiceNo (a leading C marks a cancellation), StockCode,
Description, Quantity, InvoiceDate, UnitPrice (GBP), CustomerID, Country. PATH is any copy with
those columns: a CSV (optionally .gz), the original .xlsx, or the .rda file that the CRAN package
`onlineretail` 0.1.2 (CC0, shipped with the donor's permission) keeps in data/ (reading it needs
pyreadr). The data is not part of this repository (size, licence). The script checks the file
against the published counts (541,909 lines, 4,372 customer ids) and prints its size and SHA-256.

Conversion to valuate_csv's input: lines without a CustomerID are dropped (counted);
customer_id = CustomerID, date = the invoice's day, revenue = Quantity x UnitPrice, so
cancellations and other negative lines are negative revenue rows (valuate_csv nets them against
the customer's purchases); no cost column, so margin = revenue. Calibration end = holdout end -
holdout weeks (2011-06-10 for the defaults).

Run, in this order:
1. `manage.py valuate_csv FILE --calibration-end CAL --holdout-end END --output values.csv` as its
   own process: the nightly engine on the history up to CAL (the model chosen by a back-test
   inside that history, fit-quality gate, fallback), judged on (CAL, END].
2. lifetimes 0.11 BetaGeoFitter + GammaGammaFitter (time in weeks, frequency in distinct days,
   as bench_cdnow.py) on the same split, twice: (a) on the purchase lines only (revenue > 0,
   how lifetimes is usually run on these invoices) and (b) on every line of the converted file.
   Both are scored against the same per-customer actual holdout margin (returns netted) of the
   same customers as valuate_csv's back-test (those with a purchase day by CAL).
3. A naive floor: each customer's own calibration margin per week since the first purchase,
   times the holdout weeks.
Then one line per acceptance point. lifetimes is a benchmark-only dependency (the `bench` extra).
Nothing is tuned on the holdout: valuate_csv runs with its defaults.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED_LINES, PUBLISHED_CUSTOMERS = 541_909, 4_372
COLUMNS = ["InvoiceNo", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID"]


def read_invoices(path: Path) -> pd.DataFrame:
    name = path.name.lower()
    if name.endswith(".rda") or name.endswith(".rdata"):
        import pyreadr

        frames = pyreadr.read_r(str(path))
        frame = next(iter(frames.values()))
    elif name.endswith((".xlsx", ".xls")):
        frame = pd.read_excel(path, usecols=COLUMNS)
    else:
        frame = pd.read_csv(path, usecols=COLUMNS, dtype={"InvoiceNo": str}, encoding="latin-1")
    return frame[COLUMNS]


def convert(invoices: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """valuate_csv's rows (customer_id, date, revenue) and the counts of the conversion."""
    invoice = invoices["InvoiceNo"].astype(str).str.strip()
    known = invoices["CustomerID"].notna()
    revenue = pd.to_numeric(invoices["Quantity"]) * pd.to_numeric(invoices["UnitPrice"])
    day = pd.to_datetime(invoices["InvoiceDate"]).dt.normalize()
    rows = pd.DataFrame(
        {
            "customer_id": invoices.loc[known, "CustomerID"].astype(np.int64).astype(str),
            "date": day[known],
            "revenue": revenue[known].round(4),
        }
    )
    counts = {
        "lines": len(invoices),
        "without_customer": int((~known).sum()),
        "without_customer_revenue": float(revenue[~known].sum()),
        "kept": int(known.sum()),
        "customers": int(rows["customer_id"].nunique()),
        "cancellation_lines": int((invoice[known].str.upper().str.startswith("C")).sum()),
        "negative_lines": int((rows["revenue"] < 0).sum()),
        "zero_lines": int((rows["revenue"] == 0).sum()),
        "net_revenue": float(rows["revenue"].sum()),
        "first_day": rows["date"].min().date().isoformat(),
        "last_day": rows["date"].max().date().isoformat(),
    }
    return rows, counts


def run_valuate_csv(csv: Path, calibration_end: str, holdout_end: str, values: Path) -> tuple[dict, float, int]:
    argv = [
        sys.executable,
        "manage.py",
        "valuate_csv",
        str(csv),
        "--calibration-end",
        calibration_end,
        "--holdout-end",
        holdout_end,
        "--output",
        str(values),
    ]
    started = time.perf_counter()
    done = subprocess.run(
        argv, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"valuate_csv failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout[done.stdout.index("{") :]), seconds, done.returncode


def lifetimes_forecast(tx: pd.DataFrame, calibration_end: str, holdout_end: str, index: pd.Index) -> dict:
    """lifetimes' BG/NBD x Gamma-Gamma expected holdout spend per customer of ``index``
    (customers lifetimes has no row for get 0), with the fitted parameters and fit time."""
    from lifetimes import BetaGeoFitter, GammaGammaFitter
    from lifetimes.utils import calibration_and_holdout_data

    data = calibration_and_holdout_data(
        tx,
        "customer_id",
        "date",
        calibration_period_end=calibration_end,
        observation_period_end=holdout_end,
        freq="D",
        freq_multiplier=7,
        monetary_value_col="revenue",
    )
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bgf = BetaGeoFitter().fit(data["frequency_cal"], data["recency_cal"], data["T_cal"])
        repeat = data[(data["frequency_cal"] > 0) & (data["monetary_value_cal"] > 0)]
        ggf = GammaGammaFitter().fit(repeat["frequency_cal"], repeat["monetary_value_cal"])
        purchases = bgf.conditional_expected_number_of_purchases_up_to_time(
            data["duration_holdout"].iloc[0], data["frequency_cal"], data["recency_cal"], data["T_cal"]
        )
        spend = ggf.conditional_expected_average_profit(data["frequency_cal"], data["monetary_value_cal"])
    seconds = time.perf_counter() - started
    return {
        "predicted": (purchases * spend).reindex(index).fillna(0.0).to_numpy(),
        "customers": int(len(data)),
        "repeat_buyers": int(len(repeat)),
        "bgnbd": {k: round(float(v), 4) for k, v in bgf.params_.items()},
        "gamma_gamma": {k: round(float(v), 4) for k, v in ggf.params_.items()},
        "fit_seconds": round(seconds, 2),
    }


def errors(predicted: np.ndarray, actual: np.ndarray) -> dict:
    return {
        "rmse": float(np.sqrt(np.mean((predicted - actual) ** 2))),
        "mae": float(np.mean(np.abs(predicted - actual))),
        "predicted_total": float(predicted.sum()),
        "actual_total": float(actual.sum()),
        "total_error": float(predicted.sum() / actual.sum() - 1),
    }


def describe(path: Path) -> str:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return f"{path} ({path.stat().st_size:,} bytes, sha256 {digest})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", type=Path, help="the Online Retail invoices (.csv[.gz], .xlsx or .rda)")
    parser.add_argument("--holdout-end", default="2011-12-09", help="the last invoice day of the holdout")
    parser.add_argument("--holdout-weeks", type=int, default=26)
    parser.add_argument("--keep", type=Path, help="write the converted file and values.csv here")
    args = parser.parse_args()
    holdout_end = pd.Timestamp(args.holdout_end)
    calibration_end = (holdout_end - pd.Timedelta(weeks=args.holdout_weeks)).date().isoformat()
    print(f"load average at start {os.getloadavg()}")
    print(f"data: {describe(args.path)}")
    if args.path.name.lower().endswith((".rda", ".rdata")):
        print(
            "  an R data file, as the CRAN package onlineretail 0.1.2 ships the invoices (data/onlineretail.rda); "
            "read with pyreadr"
        )

    started = time.perf_counter()
    invoices = read_invoices(args.path)
    read_seconds = time.perf_counter() - started
    rows, counts = convert(invoices)
    real = counts["lines"] == PUBLISHED_LINES and counts["customers"] == PUBLISHED_CUSTOMERS
    print(
        f"read {counts['lines']:,} invoice lines in {read_seconds:.1f} s; "
        f"{'matches' if real else 'DOES NOT match'} the published Online Retail counts "
        f"({PUBLISHED_LINES:,} lines, {PUBLISHED_CUSTOMERS:,} customer ids)"
    )
    print(
        f"dropped {counts['without_customer']:,} lines without a CustomerID "
        f"(GBP {counts['without_customer_revenue']:,.2f} net); kept {counts['kept']:,} lines of "
        f"{counts['customers']:,} customers, {counts['first_day']}..{counts['last_day']}, net revenue "
        f"GBP {counts['net_revenue']:,.2f}; {counts['negative_lines']:,} negative lines "
        f"({counts['cancellation_lines']:,} cancellation lines), {counts['zero_lines']:,} zero lines"
    )
    print(
        f"split: calibration up to {calibration_end}, holdout ({calibration_end}, {args.holdout_end}] "
        f"= {args.holdout_weeks} weeks; no cost column, so margin = revenue"
    )

    scratch = args.keep or Path(tempfile.mkdtemp(prefix="bench_wholesaler_"))
    scratch.mkdir(parents=True, exist_ok=True)
    csv, values_csv = scratch / "wholesaler_transactions.csv", scratch / "values.csv"
    rows.assign(date=rows["date"].dt.strftime("%Y-%m-%d")).to_csv(csv, index=False)
    started = time.perf_counter()
    floor_rows = len(pd.read_csv(csv))
    floor_seconds = time.perf_counter() - started
    report, seconds, _ = run_valuate_csv(csv, calibration_end, args.holdout_end, values_csv)
    print(
        f"\nvaluate_csv: {seconds:.1f} s as its own process (floor: pandas reads the {floor_rows:,}-row "
        f"file in {floor_seconds:.2f} s in this process); {report['customers']:,} customers, "
        f"{report['transactions']:,} rows up to the calibration end"
    )

    # The back-test's customers: a purchase line (revenue > 0) on or before the calibration end.
    end = pd.Timestamp(calibration_end)
    calibration = rows[rows["date"] <= end]
    buyers = pd.Index(np.sort(calibration.loc[calibration["revenue"] > 0, "customer_id"].unique()))
    values = pd.read_csv(values_csv, dtype={"customer_id": str}).set_index("customer_id").reindex(buyers)
    actual = values["holdout_margin"].fillna(0.0).to_numpy()
    chosen_expected = values["holdout_expected"].fillna(0.0).to_numpy()
    chosen = errors(chosen_expected, actual)
    backtest = report["backtest"]
    print(f"  model {report['model']}; fit_quality {json.dumps(report['fit_quality'])}")
    choice = {k: v for k, v in (report["model_choice"] or {}).items() if k != "rule"}
    print(f"  model_choice (back-test inside the calibration history): {json.dumps(choice)}")
    print(f"  back-test on the holdout: {json.dumps(backtest)}")
    print(
        f"  check: per-customer RMSE from values.csv {chosen['rmse']:.3f} over {len(buyers):,} customers "
        f"vs the report's {backtest['margin_rmse_per_customer']:.3f} over {backtest['customers']:,}"
    )
    print("  every model on the holdout (fitted on the calibration history; valuate_csv's models_compared):")
    for name, entry in report["models_compared"].items():
        margin = entry.get("margin")
        if margin is None:
            print(f"    {name:11s} ok={entry['fit_quality']['ok']} problems={entry['fit_quality']['problems']}")
            continue
        print(
            f"    {name:11s} ok={entry['fit_quality']['ok']!s:5s} margin RMSE {margin['rmse']:9.2f} "
            f"MAE {margin['mae']:8.2f} total {margin['predicted_total']:>13,.0f} vs "
            f"{margin['actual_total']:>13,.0f} ({margin['total_error']:+.1%}); purchases total "
            f"{entry['purchases']['total_error']:+.1%}  problems={entry['fit_quality']['problems']}"
        )
    print(f"  best on the holdout (for information, not used): {report.get('best_on_holdout')}")

    references = {}
    for label, tx in (("purchase lines only", rows[rows["revenue"] > 0]), ("every line", rows)):
        try:
            fit = lifetimes_forecast(tx, calibration_end, args.holdout_end, buyers)
        except ImportError:
            print("\nlifetimes is not installed (pip install 'setuptools<70' lifetimes): no reference figures")
            return
        except Exception as exc:  # a failed lifetimes fit is a figure too
            print(f"\nlifetimes on {label}: failed ({type(exc).__name__}: {exc})")
            continue
        references[label] = {**errors(fit.pop("predicted"), actual), **fit}
        print(f"\nlifetimes BG/NBD + Gamma-Gamma on {label}: {json.dumps(references[label])}")

    calibration_margin = calibration.groupby("customer_id")["revenue"].sum().reindex(buyers).fillna(0.0)
    first = calibration[calibration["revenue"] > 0].groupby("customer_id")["date"].min().reindex(buyers)
    age_weeks = ((end - first).dt.days / 7.0).clip(lower=1.0).to_numpy()
    naive = errors(calibration_margin.to_numpy() / age_weeks * args.holdout_weeks, actual)
    print(f"\nnaive floor (own calibration margin per week x {args.holdout_weeks}): {json.dumps(naive)}")

    # For information: the engine's back-test as bench_cdnow.py runs it (every model fitted on
    # the calibration summary, the choice made on this holdout: not an out-of-sample choice).
    sys.path.insert(0, str(ROOT))
    from valuation.engine import backtest_models

    started = time.perf_counter()
    comparison, per_customer = backtest_models(rows, calibration_end, args.holdout_end)
    margin = comparison["models_compared"][comparison["model"]].get("margin") or {}
    print(
        f"\nfor information, engine.backtest_models (as bench_cdnow.py; model picked on this holdout) in "
        f"{time.perf_counter() - started:.1f} s: {comparison['model']} ({comparison['reason']}), fit_quality "
        f"{json.dumps(comparison['fit_quality'])}, margin RMSE {margin.get('rmse', float('nan')):.2f}, total "
        f"{margin.get('total_error', float('nan')):+.1%}, range calibration {json.dumps(comparison['range_calibration'])}"
    )

    weekly = {
        "calibration": calibration["revenue"].sum() / ((end - rows["date"].min()).days / 7.0),
        "holdout": rows.loc[(rows["date"] > end) & (rows["date"] <= holdout_end), "revenue"].sum() / args.holdout_weeks,
    }
    holdout_rows = rows[(rows["date"] > end) & (rows["date"] <= holdout_end)]
    new_customers = holdout_rows.loc[~holdout_rows["customer_id"].isin(calibration["customer_id"]), "revenue"].sum()
    print(
        f"seasonality: net revenue per week of all customers {weekly['calibration']:,.0f} in the calibration "
        f"period, {weekly['holdout']:,.0f} in the holdout ({weekly['holdout'] / weekly['calibration'] - 1:+.0%}); "
        f"GBP {new_customers:,.0f} of the holdout's revenue comes from customers first seen in it (not predicted)"
    )

    share_high = backtest["range_calibration"]["share_above_high"] if backtest["range_calibration"] else None
    share_low = backtest["range_calibration"]["share_below_low"] if backtest["range_calibration"] else None
    print(f"\nACCEPTANCE (wholesaler, {len(buyers):,} customers, chosen model {report['model']}):")
    for label, ref in references.items():
        verdict = (
            "met" if chosen["rmse"] <= ref["rmse"] + 1e-9 else f"NOT met (+{chosen['rmse'] / ref['rmse'] - 1:.1%})"
        )
        print(
            f"  RMSE of holdout margin: chosen {chosen['rmse']:.2f} vs lifetimes ({label}) {ref['rmse']:.2f}: "
            f"{verdict}; naive floor {naive['rmse']:.2f}"
        )
    if share_high is None:
        print("  80 % range: none (fallback without ranges): NOT met")
    else:
        print(
            f"  share above the 90th percentile {share_high:.1%} (7-13 %: "
            f"{'met' if 0.07 <= share_high <= 0.13 else 'NOT met'}); below the 10th {share_low:.1%} "
            f"(at most 13 %: {'met' if share_low <= 0.13 else 'NOT met'})"
        )
    for label, ref in references.items():
        verdict = "met" if abs(chosen["total_error"]) <= abs(ref["total_error"]) else "NOT met"
        print(
            f"  total predicted holdout margin: chosen {chosen['predicted_total']:,.0f} ({chosen['total_error']:+.1%}) "
            f"vs lifetimes ({label}) {ref['predicted_total']:,.0f} ({ref['total_error']:+.1%}), actual "
            f"{chosen['actual_total']:,.0f}: {verdict}"
        )
    print(f"load average at end {os.getloadavg()}")


if __name__ == "__main__":
    main()
