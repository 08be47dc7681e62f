"""`manage.py valuate_csv` against `lifetimes` on a 1M-customer transactions file, as whole processes.

    python bench/bench_offline.py [--customers 1000000] [--runs 3] [--file PATH] [--keep]

1. Writes a synthetic BG/NBD file (valuation.engine.simulate.simulate_transactions with
   r=0.25, alpha=4.4, a=0.8, b=2.4 per week and Gamma-Gamma p=6.25, q=3.74, v=15.44, first
   purchases from 2023-07-01 to 2026-06-30, seed 7; 1M customers give about 2.8M rows):
   customer_id,date,revenue,cost with two decimals. --file reuses (or keeps) such a file.
2. Times, as separate processes, in turn A B C D A B C D ... (--runs rounds, after one read of
   the file that warms the page cache):
   - floor: reading the file with pyarrow's CSV reader and nothing else;
   - floor: what every valuate_csv process does before any checking or valuing: the
     interpreter, the command's imports (numpy, pandas, scipy, pyarrow, the engine), Django's
     setup, and the same pyarrow read of the file (lifetimes / this is the most any
     valuate_csv could reach with checks and valuation taking no time);
   - `valuate_csv FILE --calibration-end LAST --model bgnbd` (BG/NBD + Gamma-Gamma only, the
     work lifetimes does, plus scoring every customer);
   - `valuate_csv FILE --calibration-end LAST` (the default: three models, a back-test
     choosing among them, fit-quality gate, scoring);
   - lifetimes 0.11: pandas.read_csv, summary_data_from_transaction_data (days, margin =
     revenue - cost), BetaGeoFitter on weeks and GammaGammaFitter on the repeat buyers.
   Each process's wall time, CPU time (user + system) and peak RSS (wait4), medians, the
   ratios to lifetimes and to the floor, and the parameters side by side (equal to 3
   significant digits or not).
   --baseline DIR adds both valuate_csv processes run from another checkout (e.g. `git worktree
   add DIR main`) to each round, so that a change is measured against the code before it in
   the same run.

lifetimes is a benchmark-only dependency (the `bench` extra).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
START, END = dt.date(2023, 7, 1), dt.date(2026, 6, 30)

FLOOR = """
import sys, pyarrow.csv as c
t = c.read_csv(sys.argv[1])
print(t.num_rows)
"""

START_AND_READ = """
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cvm.settings")
import django
django.setup()
from valuation import engine, offline  # the command's imports
import pyarrow.csv as c
t = c.read_csv(sys.argv[1])
print(t.num_rows)
"""

LIFETIMES = """
import json, sys, warnings
warnings.filterwarnings("ignore")
import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter
from lifetimes.utils import summary_data_from_transaction_data
tx = pd.read_csv(sys.argv[1], parse_dates=["date"])
tx = tx[tx["revenue"] > 0]
tx["margin"] = tx["revenue"] - tx["cost"]
s = summary_data_from_transaction_data(tx, "customer_id", "date", monetary_value_col="margin",
                                       observation_period_end=sys.argv[2], freq="D")
bgf = BetaGeoFitter().fit(s["frequency"], s["recency"] / 7.0, s["T"] / 7.0)
rep = s[(s["frequency"] > 0) & (s["monetary_value"] > 0)]
ggf = GammaGammaFitter().fit(rep["frequency"], rep["monetary_value"])
print(json.dumps({"bgnbd": {k: float(v) for k, v in bgf.params_.items()},
                  "gamma_gamma": {k: float(v) for k, v in ggf.params_.items()}}))
"""


def write_file(customers: int, path: Path) -> None:
    sys.path.insert(0, str(ROOT))
    from valuation.engine import BgNbdParams, GammaGammaParams
    from valuation.engine.simulate import simulate_transactions

    tx = simulate_transactions(
        customers,
        BgNbdParams(r=0.25, alpha=4.4, a=0.8, b=2.4),
        GammaGammaParams(p=6.25, q=3.74, v=15.44),
        START,
        END,
        seed=7,
    )
    tx = tx[tx["date"] <= END.isoformat()]
    tx.assign(date=tx["date"].dt.strftime("%Y-%m-%d")).round(2).to_csv(path, index=False)


def timed(argv: list[str], out: Path, root: Path = ROOT) -> tuple[float, float, int, float]:
    """Wall seconds, peak RSS in MiB, exit code and CPU seconds (user + system, all threads) of
    one process run in root; its stdout goes to out. On a shared machine the wall time moves
    with the other jobs' load; the CPU time much less."""
    with open(out, "w") as stdout:
        t0 = time.perf_counter()
        process = subprocess.Popen(
            argv, stdout=stdout, stderr=subprocess.STDOUT, cwd=root, env={**os.environ, "PYTHONPATH": str(root)}
        )
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - t0
    process.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss / 1024, process.returncode, usage.ru_utime + usage.ru_stime


def parse_report(path: Path) -> dict:
    text = path.read_text()
    return json.loads(text[text.index("{") :])


def same3(a: float, b: float) -> bool:
    return f"{a:.3g}" == f"{b:.3g}"


def breakdown(path: Path) -> None:
    """valuate_csv's two steps timed in this process: reading and checking the file, valuing."""
    sys.path.insert(0, str(ROOT))
    from valuation import offline

    t0 = time.perf_counter()
    transactions = offline.read_transactions(path)
    t1 = time.perf_counter()
    offline.analyse(transactions, calibration_end=END, model="bgnbd")
    t2 = time.perf_counter()
    print(f"read_transactions {t1 - t0:.2f} s, analyse --model bgnbd {t2 - t1:.2f} s; load average {os.getloadavg()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3, help="rounds of the four processes")
    parser.add_argument("--file", type=Path, help="the transactions file (written when missing)")
    parser.add_argument("--skip-lifetimes", action="store_true")
    parser.add_argument("--breakdown", action="store_true", help="only time reading and valuing in this process")
    parser.add_argument("--baseline", type=Path, help="another checkout whose valuate_csv runs in each round too")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench_offline_"))
    path = args.file or scratch / "transactions.csv"
    if not path.exists():
        t0 = time.perf_counter()
        write_file(args.customers, path)
        print(f"wrote {path} in {time.perf_counter() - t0:.0f} s")
    with open(path) as handle:
        rows = sum(1 for _ in handle) - 1
    print(f"file: {path} ({path.stat().st_size / 2**20:.0f} MiB, {rows:,} rows); load average {os.getloadavg()}")
    if args.breakdown:
        breakdown(path)
        return
    last = END.isoformat()
    manage = [PYTHON, "manage.py", "valuate_csv", str(path), "--calibration-end", last]
    commands = {
        "floor: pyarrow read_csv": [PYTHON, "-c", FLOOR, str(path)],
        "floor: start, imports, Django, read": [PYTHON, "-c", START_AND_READ, str(path)],
        "valuate_csv --model bgnbd": [*manage, "--model", "bgnbd"],
        "valuate_csv (default)": manage,
    }
    roots = dict.fromkeys(commands, ROOT)
    if args.baseline:
        for name in ("valuate_csv --model bgnbd", "valuate_csv (default)"):
            commands[f"baseline {name}"] = commands[name]
            roots[f"baseline {name}"] = args.baseline.resolve()
    if not args.skip_lifetimes:
        commands["lifetimes BG/NBD + GG"] = [PYTHON, "-c", LIFETIMES, str(path), last]
        roots["lifetimes BG/NBD + GG"] = ROOT
    times: dict[str, list[float]] = {name: [] for name in commands}
    peaks: dict[str, list[float]] = {name: [] for name in commands}
    cpus: dict[str, list[float]] = {name: [] for name in commands}
    outputs = {name: scratch / f"out{i}.txt" for i, name in enumerate(commands)}
    timed(commands["floor: pyarrow read_csv"], outputs["floor: pyarrow read_csv"])  # warms the page cache
    for round_ in range(1, args.runs + 1):
        for name, argv in commands.items():
            wall, peak, code, cpu = timed(argv, outputs[name], roots[name])
            if code != 0:
                print(outputs[name].read_text()[-3000:])
                raise SystemExit(f"{name} exited with {code}")
            times[name].append(wall)
            peaks[name].append(peak)
            cpus[name].append(cpu)
            print(
                f"  round {round_} {name}: {wall:.2f} s, CPU {cpu:.2f} s, peak {peak:.0f} MiB, "
                f"load average {os.getloadavg()}",
                flush=True,
            )

    floor = statistics.median(times["floor: pyarrow read_csv"])
    reference = statistics.median(times["lifetimes BG/NBD + GG"]) if not args.skip_lifetimes else None
    print(
        f"\n{'process':37s} {'median s':>9s} {'runs':>24s} {'x floor':>8s} {'lifetimes / this':>17s} {'peak MiB':>9s}"
    )
    for name in commands:
        median = statistics.median(times[name])
        ratio = f"{reference / median:17.1f}" if reference else f"{'':17s}"
        print(
            f"{name:37s} {median:9.2f} {', '.join(f'{t:.2f}' for t in times[name]):>24s} "
            f"{median / floor:8.1f} {ratio} {max(peaks[name]):9.0f}"
        )
    cpu_reference = statistics.median(cpus["lifetimes BG/NBD + GG"]) if not args.skip_lifetimes else None
    print(f"\n{'process':37s} {'median CPU s':>13s} {'runs':>24s} {'lifetimes / this (CPU)':>23s}")
    for name in commands:
        median = statistics.median(cpus[name])
        ratio = f"{cpu_reference / median:23.1f}" if cpu_reference else ""
        print(f"{name:37s} {median:13.2f} {', '.join(f'{t:.2f}' for t in cpus[name]):>24s} {ratio}")
    if args.skip_lifetimes:
        return
    for name in [n for n in commands if n.startswith(("valuate_csv", "baseline", "floor: start"))]:
        pairs = [theirs / ours for theirs, ours in zip(times["lifetimes BG/NBD + GG"], times[name], strict=True)]
        print(f"lifetimes / {name}, round by round: {', '.join(f'{r:.2f}' for r in pairs)}")
    compare_reports(outputs, baseline=bool(args.baseline))


def compare_reports(outputs: dict[str, Path], *, baseline: bool) -> None:
    """The parameters next to lifetimes', and (with a baseline) whether the reports are the baseline's."""
    ours = parse_report(outputs["valuate_csv --model bgnbd"])
    full = parse_report(outputs["valuate_csv (default)"])
    theirs = parse_report(outputs["lifetimes BG/NBD + GG"])
    print(
        f"\ncustomers {ours['customers']:,}, transactions {ours['transactions']:,}; default run chose {full['model']}"
    )
    agree = True
    for group, names in (("bgnbd", ("r", "alpha", "a", "b")), ("gamma_gamma", ("p", "q", "v"))):
        for name in names:
            a, b = ours[group][name], theirs[group][name]
            same = same3(a, b)
            agree &= same
            print(
                f"  {group:11s} {name:5s} valuate_csv {a:.6g}  lifetimes {b:.6g}  "
                f"{'equal to 3 significant digits' if same else 'DIFFERENT at 3 significant digits'}"
            )
    print(f"parameters equal to 3 significant digits: {agree}; load average {os.getloadavg()}")
    if baseline:
        for name in ("valuate_csv --model bgnbd", "valuate_csv (default)"):
            same = _untimed(parse_report(outputs[name])) == _untimed(parse_report(outputs[f"baseline {name}"]))
            print(f"{name}: report {'identical to' if same else 'DIFFERENT from'} the baseline's (timings aside)")


def _untimed(report):
    """The report without its measured seconds."""
    if isinstance(report, dict):
        return {k: _untimed(v) for k, v in report.items() if k not in ("seconds", "fit_seconds")}
    if isinstance(report, list):
        return [_untimed(v) for v in report]
    return report


if __name__ == "__main__":
    main()
