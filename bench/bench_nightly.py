"""Speed and memory of the whole nightly valuation run against the configured database.

    python bench/bench_nightly.py [--as-of 2025-06-30] [--seed N]
                                  [--transactions-per-customer 48] [--service-events-per-customer 10]
                                  [--workers N]

Runs `valuation.services.run_valuation` in this process (as `manage.py recompute_values`
and the eager task mode do) on the data already in the database; `--seed N` first replaces
the demo data by N demo customers. SQLite by default, DATABASE_URL for PostgreSQL; the
database must be migrated.

The floor, measured in the same run right before and after the valuation: one GROUP BY
customer scan of all transactions (count and sum per customer), the least any valuation that
reads the transactions must do. The run's time is printed as a multiple of it.

In-process, prints the time of each stage (the one pass over the transactions, the fit,
scoring, the back-test, earned growth, the writes of each chunk, the finish), the total,
value rows per second, the peak memory of this process (ru_maxrss) and the run's CPU: this
process's and, when PostgreSQL runs on this machine, its server processes' (read from /proc).
On the machine's cores that work alone needs CPU / cores of wall time, whatever runs at once.

`--workers N` (needs REDIS_URL, PostgreSQL): starts N Celery workers (`celery -A cvm worker
-c 1` each, as separate processes), queues the run as "Recompute now" does, waits for it and
prints the prepare, chunk and finish phases from the run's records, and the peak memory
(VmHWM) of every worker process. Only this bench's Redis database is flushed first.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import resource
import sys
import threading
import time
from collections import defaultdict
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cvm.settings")
os.environ.setdefault("DEBUG", "false")  # no query log growing during the run
os.environ.setdefault("SECRET_KEY", "bench-only-not-secret")

import django

django.setup()

from django.conf import settings
from django.core.cache import cache
from django.db import connection

from cockpit.demo import (
    DEFAULT_SERVICE_EVENTS_PER_CUSTOMER,
    DEFAULT_TRANSACTIONS_PER_CUSTOMER,
    seed_demo,
)
from customers.models import Customer, Transaction
from services.models import ServiceEvent
from valuation import engine, selectors, services
from valuation.models import CustomerValue

# (module, attribute, label): the steps timed, wherever the run calls them.
STEPS = [
    (selectors, "transaction_days", "SQL one pass (customer x day)"),
    (selectors, "run_transaction_inputs", "transaction inputs (total)"),
    (selectors, "customer_frame", "SQL customers"),
    (selectors, "transaction_summary", "SQL transaction summary"),
    (selectors, "service_cost_by_type", "SQL service costs"),
    (selectors, "purchase_day_fence", "SQL population fence"),
    (selectors, "holdout_outcome", "SQL holdout outcome"),
    (selectors, "revenue_by_customer_period", "SQL revenue by period"),
    (engine, "compare_models", "model choice (back-test of 3 models)"),
    (engine, "fit_chosen_model", "fit (chosen model, gate)"),
    (services, "inputs_from_reads", "engine inputs (summaries, service totals)"),
    (engine, "value_customers", "score"),
    (engine, "combine", "combine scores and history"),
    (services, "referral_values", "referral values"),
    (engine, "compute_thresholds", "thresholds"),
    (engine, "classify", "classify"),
    (engine, "earned_growth", "earned growth maths"),
    (services, "stage_values", "stage chunk values"),
    (services, "staged_values", "read staged values"),
    (services, "chunk_frames", "chunk frames (in memory)"),
    (services, "_write_values", "write value rows"),
    (services, "finish_run_if_complete", "finish (total)"),
]
# The finish's sub-steps, by module name (a module that does not exist is skipped).
FINISH_STEPS = [
    ("valuation.history", "close_run", "finish: index + attach partition"),
    ("valuation.run_summary", "write_run_summary", "finish: run summary (total)"),
    ("valuation.run_summary", "summary_rows", "finish: summary rows (read)"),
    ("valuation.run_summary", "_customer_columns", "finish: summary rows, customers"),
    ("valuation.run_summary", "written_values", "finish: written values (in memory)"),
    ("valuation.run_summary", "_segments_before", "finish: earlier run's segments"),
    ("valuation.run_summary", "summary_cell_rows", "finish: summary cells"),
    ("valuation.run_summary", "filter_views", "finish: filter views (numpy)"),
    ("valuation.run_summary", "pack", "finish: pack views"),
    ("valuation.run_summary", "_service_cost_views", "finish: service cost views"),
    ("valuation.history", "drop_runs", "finish: drop runs (same day, old)"),
    ("valuation.services", "apply_retention", "finish: retention"),
    ("valuation.worklist", "stage_work_items", "finish: work items, found and loaded"),
    ("valuation.worklist", "install_work_items", "finish: work items, installed"),
    ("valuation.worklist", "rebuild_work_items", "finish: work items, found again"),
    ("valuation.worklist", "_values", "finish: work items, read values"),
    ("valuation.cross_sell", "rebuild_peer_categories", "finish: cross-sell peers"),
    # On a connection of its own while the summary is written (its seconds overlap the others).
    ("valuation.cross_sell", "peer_category_sums", "finish: cross-sell sums (overlapping)"),
    ("valuation.dashboard", "warm_dashboard", "finish: dashboard warm-up"),
]
SLOW_SQL_SECONDS = 1.0  # in-process runs list every statement that took longer
PHASES = [(services, "prepare_run", "prepare"), (services, "score_chunk", "chunks")]


class Clock:
    """Seconds per (phase, step), collected by wrapping the functions the run calls."""

    def __init__(self):
        self.seconds = defaultdict(float)
        self.calls = defaultdict(int)
        self.run_phase = "run"  # the run's own thread
        self._thread = threading.local()  # a chunk writer's phase (services.IN_PROCESS_WRITERS)
        self.chunk_seconds: list[float] = []
        self.slow_sql: list[tuple[float, str, str]] = []
        self.peak, self.peak_step = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "before the run"

    @property
    def phase(self) -> str:
        """The calling thread's phase; threads without one of their own (the reads beside the
        run) work for the run's current phase."""
        return getattr(self._thread, "phase", None) or self.run_phase

    def sql(self, execute, sql, params, many, context):
        """connection.execute_wrapper: note every statement slower than SLOW_SQL_SECONDS."""
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            elapsed = time.perf_counter() - started
            if elapsed >= SLOW_SQL_SECONDS:
                self.slow_sql.append((elapsed, self.phase, " ".join(str(sql).split())[:150]))

    def step(self, label, function):
        @functools.wraps(function)
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                key = (self.phase, label)
                self.seconds[key] += time.perf_counter() - started
                self.calls[key] += 1
                peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                if peak > self.peak:  # the innermost step that raised this process's peak memory
                    self.peak, self.peak_step = peak, f"{self.phase}: {label}"
        return timed

    def phase_of(self, phase, function):
        @functools.wraps(function)
        def timed(*args, **kwargs):
            own = threading.current_thread() is threading.main_thread()
            previous = self.run_phase if own else getattr(self._thread, "phase", None)
            if own:
                self.run_phase = phase
            else:
                self._thread.phase = phase
            started = time.perf_counter()
            try:
                if own:
                    return function(*args, **kwargs)
                with connection.execute_wrapper(self.sql):  # a writer's own connection
                    return function(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - started
                self.seconds[(phase, "total")] += elapsed
                self.calls[(phase, "total")] += 1
                if phase == "chunks":
                    self.chunk_seconds.append(elapsed)
                if own:
                    self.run_phase = previous
                else:
                    self._thread.phase = previous
        return timed

    def install(self):
        for module, name, label in STEPS:
            if hasattr(module, name):
                setattr(module, name, self.step(label, getattr(module, name)))
        import importlib

        for module_name, name, label in FINISH_STEPS:
            try:
                module = importlib.import_module(module_name)
            except ImportError:
                continue
            if hasattr(module, name):
                setattr(module, name, self.step(label, getattr(module, name)))
        for module, name, phase in PHASES:
            setattr(module, name, self.phase_of(phase, getattr(module, name)))
        # The back-test and earned growth run inside prepare: time them as a whole too.
        services.run_backtest = self.step("back-test (total)", services.run_backtest)
        services.earned_growth = self.step("earned growth (total)", services.earned_growth)


def value_table_bytes() -> tuple[int, int, int, int] | None:
    """PostgreSQL: total, number of indexes, heap with TOAST, and indexes of the value table,
    summed over its partitions (one per run, valuation/history.py) when it is partitioned."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COALESCE(SUM(pg_total_relation_size(t.relid)), 0)::bigint, "
            "(SELECT COUNT(*) FROM pg_index i JOIN pg_partition_tree(%s::regclass) p ON i.indrelid = p.relid), "
            "COALESCE(SUM(pg_table_size(t.relid)), 0)::bigint, COALESCE(SUM(pg_indexes_size(t.relid)), 0)::bigint "
            "FROM pg_partition_tree(%s::regclass) t",
            [CustomerValue._meta.db_table] * 2,
        )
        return cursor.fetchone()


def server_cpu_seconds() -> float | None:
    """CPU seconds used so far by the database server's processes (PostgreSQL on this machine):
    the postmaster, every live child (backends, parallel and autovacuum workers) and the
    children that ended (the postmaster's cutime/cstime). None where it cannot be read. It
    counts every database of the server, so other work on it counts too."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    tick = os.sysconf("SC_CLK_TCK")

    def stat(pid) -> list[str]:
        with open(f"/proc/{pid}/stat") as file:
            return file.read().rsplit(")", 1)[1].split()

    try:
        postmaster = int(stat(backend)[1])
        fields = stat(postmaster)
    except (OSError, ValueError, IndexError):
        return None  # the server runs elsewhere
    ticks = sum(int(value) for value in fields[11:15])  # utime, stime, cutime, cstime
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            child = stat(pid)
        except OSError:
            continue  # ended meanwhile: its time is in the postmaster's cutime/cstime now
        if int(child[1]) == postmaster:
            ticks += int(child[11]) + int(child[12])
    return ticks / tick


def floor_seconds() -> float:
    """One GROUP BY customer scan of all transactions: the floor the run is measured against."""
    table = Transaction._meta.db_table
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT customer_id, COUNT(*), SUM(revenue) FROM {table} GROUP BY customer_id")
        cursor.fetchall()
    return time.perf_counter() - started


def process_peaks(pgid: int) -> dict[int, float]:
    """Peak resident memory (VmHWM, MiB) of every live process of a process group."""
    peaks = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) != pgid:
                continue
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks[int(entry.name)] = int(line.split()[1]) / 1024
        except (OSError, ProcessLookupError):
            continue
    return peaks


WARM_WAIT_SECONDS = 600.0


def warmed_key(*, run_id: int) -> str:
    """The cache key of the unfiltered dashboard in the last language the warm-up computes."""
    from valuation.dashboard import DashboardFilters, completed_runs, default_comparison, figures_cache_key

    earlier = default_comparison(completed_runs())
    return figures_cache_key(run_id=run_id, earlier=earlier, filters=DashboardFilters(), language=settings.LANGUAGES[-1][0])


def run_with_workers(*, as_of: date, workers: int):
    """Start the workers, queue the run, wait; returns (run, seconds, peaks by worker)."""
    import subprocess

    import redis

    from valuation import tasks
    from valuation.models import ValuationRun

    redis_url = os.environ.get("REDIS_URL", "")
    if not redis_url or connection.vendor != "postgresql":
        raise SystemExit("--workers needs REDIS_URL and a PostgreSQL DATABASE_URL")
    redis.Redis.from_url(redis_url).flushdb()
    root = Path(__file__).resolve().parents[1]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "cvm", "worker", "--pool=prefork", "--concurrency=1",
             "--loglevel=WARNING", "-n", f"bench{k}@%h", "--without-gossip", "--without-mingle"],
            cwd=root, env={**os.environ, "PYTHONPATH": str(root)}, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True,
        )
        for k in range(workers)
    ]
    peaks: dict[str, float] = {}
    try:
        time.sleep(8)  # the workers connect to Redis and import Django
        started = time.perf_counter()
        run = tasks.request_recompute(as_of=as_of)
        while ValuationRun.objects.filter(pk=run.pk, status=ValuationRun.Status.RUNNING).exists():
            for k, process in enumerate(processes):
                for pid, mib in process_peaks(process.pid).items():
                    peaks[f"worker {k} pid {pid}"] = max(peaks.get(f"worker {k} pid {pid}", 0.0), mib)
            time.sleep(0.5)
        completed = time.perf_counter() - started
        # The finish goes on after the run shows as completed (replacing the same day's run,
        # retention, work items, cross-sell peers) and ends with the dashboard's warm-up: wait
        # for the warmed figures of the last language in the shared cache.
        seconds = completed
        deadline = time.perf_counter() + WARM_WAIT_SECONDS
        while cache.get(warmed_key(run_id=run.pk)) is None and time.perf_counter() < deadline:
            time.sleep(0.5)
        if cache.get(warmed_key(run_id=run.pk)) is not None:
            seconds = time.perf_counter() - started
        else:
            print(f"the dashboard was not warmed within {WARM_WAIT_SECONDS:.0f} s of the run's completion")
        print(f"run shown as completed after {completed:.1f} s; the finish (to the warm-up) done after {seconds:.1f} s")
        for k, process in enumerate(processes):
            for pid, mib in process_peaks(process.pid).items():
                peaks[f"worker {k} pid {pid}"] = max(peaks.get(f"worker {k} pid {pid}", 0.0), mib)
    finally:
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, 15)
        for process in processes:
            process.wait(timeout=60)
    run.refresh_from_db()
    return run, seconds, peaks


def print_phases(run) -> None:
    """Prepare, chunk and finish phases of a run from its own records (any process)."""
    chunks = list(run.chunks.order_by("started_at").values("started_at", "finished_at", "seconds"))
    if not chunks or chunks[0]["started_at"] is None:
        return
    first = min(c["started_at"] for c in chunks)
    last = max(c["finished_at"] for c in chunks)
    seconds = sorted(c["seconds"] or 0.0 for c in chunks)
    print(f"  prepare (read, back-test, fit, score, stage): {(first - run.started_at).total_seconds():.1f} s")
    print(f"  chunks (write): {(last - first).total_seconds():.1f} s wall, {sum(seconds):.1f} s summed, "
          f"median {seconds[len(seconds) // 2]:.1f} s, max {seconds[-1]:.1f} s over {len(seconds)} chunks")
    print(f"  finish up to the run's completion (index and attach, summary): {(run.finished_at - last).total_seconds():.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--as-of", type=date.fromisoformat, default=date(2025, 6, 30))
    parser.add_argument("--seed", type=int, default=0, metavar="N", help="Seed N demo customers first.")
    parser.add_argument("--transactions-per-customer", type=float, default=DEFAULT_TRANSACTIONS_PER_CUSTOMER)
    parser.add_argument("--service-events-per-customer", type=float, default=DEFAULT_SERVICE_EVENTS_PER_CUSTOMER)
    parser.add_argument("--workers", type=int, default=0, metavar="N", help="Run on N Celery workers.")
    args = parser.parse_args()

    print(f"database: {connection.vendor} {connection.settings_dict['NAME']}, "
          f"chunk size {settings.CVM_VALUATION_CHUNK_SIZE:,}, load average {os.getloadavg()[0]:.2f}")
    if args.seed:
        started = time.perf_counter()
        seed_demo(customers=args.seed, as_of=args.as_of, chunk_size=min(args.seed, 100_000),
                  transactions_per_customer=args.transactions_per_customer,
                  service_events_per_customer=args.service_events_per_customer)
        print(f"seeded {args.seed:,} customers in {time.perf_counter() - started:.1f} s")
    customers, transactions, events = (Customer.objects.count(), Transaction.objects.count(),
                                       ServiceEvent.objects.count())
    print(f"data: {customers:,} customers, {transactions:,} transactions, {events:,} service events")
    seeded_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    floor_before = floor_seconds()
    print(f"floor (one GROUP BY customer scan of all transactions): {floor_before:.1f} s; "
          f"load average {os.getloadavg()[0]:.2f}")
    clock = Clock()
    clock.install()
    disk_before = value_table_bytes()
    worker_peaks: dict[str, float] = {}
    if args.workers:
        run, total, worker_peaks = run_with_workers(as_of=args.as_of, workers=args.workers)
    else:
        started, cpu_started, server_started = time.perf_counter(), time.process_time(), server_cpu_seconds()
        with connection.execute_wrapper(clock.sql):
            run = services.run_valuation(as_of=args.as_of, progress=print)
        total = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        server_cpu = None if server_started is None else server_cpu_seconds() - server_started
    disk_after = value_table_bytes()
    floor_after = floor_seconds()
    floor = (floor_before + floor_after) / 2
    print(f"\nfloor again after the run: {floor_after:.1f} s; load average {os.getloadavg()[0]:.2f}")
    print(f"run {run.pk} {run.status} ({f'{args.workers} Celery workers' if args.workers else 'in-process'}): "
          f"{total:.1f} s = {total / floor:.1f}x the floor (mean of before and after, {floor:.1f} s)")
    print_phases(run)
    if not args.workers:
        # The run's own work, whatever overlaps: on the machine's cores it needs at least work / cores.
        cores = os.cpu_count() or 1
        work = cpu + (server_cpu or 0.0)
        server = f" + {server_cpu:.1f} s the database server's processes" if server_cpu is not None else ""
        print(f"  CPU: {cpu:.1f} s this process{server} = {work:.1f} s; on {cores} cores the work alone needs "
              f"{work / cores:.1f} s = {work / cores / floor:.1f}x the floor")

    print("\nstage                                   calls   seconds")
    for phase in ("prepare", "chunks", "run"):
        for (p, label), seconds in sorted(clock.seconds.items(), key=lambda item: -item[1]):
            if p == phase:
                print(f"  {phase:<8} {label:<30} {clock.calls[(p, label)]:>5} {seconds:9.1f}")
    if clock.chunk_seconds:
        ordered = sorted(clock.chunk_seconds)
        print(f"  per chunk: median {ordered[len(ordered) // 2]:.1f} s, max {ordered[-1]:.1f} s "
              f"over {len(ordered)} chunks")
    if clock.slow_sql:
        print(f"\nstatements slower than {SLOW_SQL_SECONDS:.0f} s (phase, seconds, SQL):")
        for seconds, phase, sql in clock.slow_sql:
            print(f"  {phase:<8} {seconds:6.1f}  {sql}")
    rows = run.rows_written
    print(f"\nrun {run.pk} {run.status}: {rows:,} value rows in {total:.1f} s ({rows / total:,.0f} rows/s, "
          f"{transactions / total:,.0f} transactions/s)")
    if disk_before is not None:
        # A run that replaces one of the same as-of date frees rows VACUUM may reuse later.
        grown = disk_after[0] - disk_before[0]
        print(f"disk of {CustomerValue._meta.db_table} (heap + TOAST + its {disk_after[1]} indexes): "
              f"{disk_before[0] / 1e6:,.1f} MB before the run, {disk_after[0] / 1e6:,.1f} MB after: "
              f"{grown / 1e6:,.1f} MB for this run = {grown / max(rows, 1):,.0f} bytes per value row "
              f"(heap {(disk_after[2] - disk_before[2]) / 1e6:,.1f} MB, indexes {(disk_after[3] - disk_before[3]) / 1e6:,.1f} MB)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    note = f" (the seed before it peaked at {seeded_rss:,.0f} MiB)" if args.seed else ""
    print(f"peak memory: {peak:,.0f} MiB this process{note}, {children:,.0f} MiB child processes; "
          f"load average {os.getloadavg()[0]:.2f}")
    if not args.workers:
        print(f"  the peak was reached in: {clock.peak_step} ({clock.peak:,.0f} MiB)")
    for name, mib in sorted(worker_peaks.items()):
        print(f"  peak memory of {name}: {mib:,.0f} MiB")


if __name__ == "__main__":
    main()
