"""Speed and memory of the nightly run's one pass over the transactions (transaction_days),
next to the floor, in the same run.

    DATABASE_URL=postgres://.../cvm_1m python bench/bench_transaction_pass.py
        [--until 2025-06-30] [--rounds 3] [--baseline /path/to/an/older/checkout]

Each round measures, back to back: the floor (bench_nightly's: one GROUP BY customer scan of
all transactions, count and sum per customer), the pass of this checkout and, with
--baseline, the pass of another checkout of the project (e.g. `git archive <commit>` unpacked
somewhere) for a before/after. Every pass runs in a fresh process, which reports its time,
its CPU time, its peak memory (VmHWM) before and after the pass, and a checksum of the frame
(days, rows, purchase revenue) so the two versions can be seen to read the same. Prints the
medians, the ratios to the floor's median and the load average. Only reads the database.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(code: Path, until: date) -> None:
    """Run the pass once in this process (the code of ``code``) and print one JSON line."""
    sys.path.insert(0, str(code))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cvm.settings")
    os.environ.setdefault("DEBUG", "false")
    os.environ.setdefault("SECRET_KEY", "bench-only-not-secret")
    import django

    django.setup()
    from valuation import selectors

    def peak_mib() -> float:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    before = peak_mib()
    started, cpu = time.perf_counter(), time.process_time()
    days = selectors.transaction_days(until=until)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(
        json.dumps(
            {
                "code": str(Path(selectors.__file__).parents[1]),
                "seconds": seconds,
                "cpu": cpu,
                "peak": peak_mib(),
                "before": before,
                "days": len(days),
                "rows": int(days["rows"].sum()),
                "purchase_revenue": round(float(days["purchase_revenue"].sum()), 2),
            }
        )
    )


def run_child(code: Path, until: date) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(code), "--until", until.isoformat()],
        cwd=code,  # the cwd lands on sys.path too (Celery's loader puts it there)
        env={**os.environ, "PYTHONPATH": str(code)},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--until", type=date.fromisoformat, default=date(2025, 6, 30))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", type=Path, help="another checkout of the project to compare with")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.until)
        return

    sys.path.insert(0, str(ROOT / "bench"))
    from bench_nightly import floor_seconds  # sets Django up; the same floor as the nightly bench
    from django.db import connection

    print(
        f"database: {connection.vendor} {connection.settings_dict['NAME']}, until {args.until}, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    versions = {"this checkout": ROOT, **({"baseline": args.baseline.resolve()} if args.baseline else {})}
    floors: list[float] = []
    passes: dict[str, list[dict]] = {name: [] for name in versions}
    for round_ in range(1, args.rounds + 1):
        floors.append(floor_seconds())
        print(f"round {round_}: floor {floors[-1]:.2f} s (load {os.getloadavg()[0]:.2f})", flush=True)
        for name, code in versions.items():
            result = run_child(code, args.until)
            passes[name].append(result)
            assert Path(result["code"]) == code, f"{name} ran the code in {result['code']}, not {code}"
            print(
                f"  {name:14s} {result['seconds']:6.2f} s, {result['cpu']:5.2f} s CPU in the client, "
                f"peak {result['peak']:,.0f} MiB ({result['before']:,.0f} before the pass); "
                f"{result['days']:,} days, {result['rows']:,} rows, purchase revenue {result['purchase_revenue']:,.2f} "
                f"(load {os.getloadavg()[0]:.2f})",
                flush=True,
            )
    floor = statistics.median(floors)
    print(f"medians of {args.rounds} rounds: floor {floor:.2f} s")
    for name, results in passes.items():
        seconds = statistics.median(r["seconds"] for r in results)
        peak = max(r["peak"] for r in results)
        print(f"  {name:14s} {seconds:6.2f} s = {seconds / floor:.2f}x the floor; peak memory {peak:,.0f} MiB")
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
