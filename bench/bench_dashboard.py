"""Time the manager pages (segment dashboard, settings) against the configured database.

A manager is logged in with Django's test Client (no web server); each dashboard is fetched
--cold times right after clearing the cache (every figure computed) and --repeat times warm
(a completed run's figures come from the cache); the median, p95 and the number of SQL
queries are printed. The cache is a LocMem cache of this process, never the shared database
cache of the web processes. Any answer other than 200 stops the bench with an error. The last dashboard is a sales rep's book (owner filter).

    python bench/bench_dashboard.py --repeat 7
    python bench/bench_dashboard.py --synthetic 100000     # throw-away data, rolled back
    DATABASE_URL=postgres://... python bench/bench_dashboard.py --synthetic 200000

Without --synthetic it reads what is there (the latest completed valuation run; the login
session is the one write). With --synthetic N it adds N customers, two completed runs of
value rows and a year of service events inside one transaction and rolls it back at the end,
so the database is left as it was.
"""

import argparse
import datetime as dt
import logging
import os
import random
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cvm.settings")

import django

django.setup()

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Count, Q
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone

from customers.models import Customer
from customers.roles import Role
from services.models import ServiceEvent, ServiceType
from valuation.dashboard import write_run_summary
from valuation.models import CustomerValue, RunSummary, ValuationRun

BATCH = 5000
OWNERS = 40  # sales reps of the synthetic data: books of n/40 customers
SEGMENTS = ["uncritical", "problem", "potential", "investment"]


class Rollback(Exception):
    pass


def manager_user(username: str | None):
    users = get_user_model().objects
    if username:
        return users.get(username=username)
    user = users.filter(Q(is_superuser=True) | Q(groups__name=Role.MANAGER.value)).order_by("pk").first()
    if user is None:
        user = users.create(username=f"bench-manager-{os.getpid()}", is_superuser=True)
    return user


class PageFailed(SystemExit):
    """A page answered something other than 200: its time would measure a redirect or an error."""


# The bench's own cache: the configured one is the shared database cache of every web
# process, which "cold" requests must neither clear nor fill.
BENCH_CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "bench-dashboard"}}


def timed_get(client: Client, url: str) -> tuple[float, int, int, int]:
    """Seconds, status, SQL queries and response size of one GET; fails unless the page says 200.

    Requests go as HTTPS, as behind the production proxy: with DEBUG off every plain-HTTP
    request is answered by a redirect, which is not the page.
    """
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        response = client.get(url, secure=True)
        seconds = time.perf_counter() - started
    if response.status_code != 200:
        raise PageFailed(f"{url} answered {response.status_code}, not 200: nothing measured")
    return seconds, response.status_code, len(queries), len(response.content)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))]


def report(name: str, samples: list[tuple[float, int, int, int]]) -> None:
    seconds = [s[0] for s in samples]
    print(
        f"{name:<38} n={len(samples):>3}  p50={statistics.median(seconds) * 1000:8.1f} ms  "
        f"p95={percentile(seconds, 0.95) * 1000:8.1f} ms  queries={','.join(map(str, sorted({s[2] for s in samples})))}  "
        f"status={','.join(map(str, sorted({s[1] for s in samples})))}  size={samples[-1][3] / 1024:.0f} KB"
    )


def synthesise(n: int) -> None:
    """n customers with values in two completed runs and about n/2 service events."""
    rng = random.Random(42)
    started = time.perf_counter()
    prefix = f"BENCH{os.getpid()}-"
    regions, industries = ["North", "South", "East", "West"], ["Steel", "Food", "Glass", "Paper", "Chemicals"]
    owners = get_user_model().objects.bulk_create(
        get_user_model()(username=f"{prefix}rep{k}") for k in range(OWNERS)
    )
    customers = []
    for lo in range(0, n, BATCH):
        customers += Customer.objects.bulk_create(
            Customer(number=f"{prefix}{i}", name=f"Bench customer {i}", region=regions[i % 4],
                     industry=industries[i % 5], owner=owners[(i * 7) % OWNERS])
            for i in range(lo, min(n, lo + BATCH))
        )
    today = timezone.localdate()
    runs = [
        ValuationRun.objects.create(as_of=today - dt.timedelta(days=days), status="completed", stage="done",
                                    finished_at=timezone.now() - dt.timedelta(days=days), rows_written=n,
                                    settings={"classic_value": "clv", "horizon_months": 36, "window_months": 12},
                                    thresholds={"classic_threshold": 2000.0, "value_to_threshold": 150.0})
        for days in (120, 0)
    ]
    for run in runs:
        rows = []
        for customer in customers:
            margin = Decimal(round(rng.lognormvariate(7, 1.3), 2))
            services = Decimal(round(rng.choice([0.0, rng.lognormvariate(5, 1.4)]), 2))
            clv = Decimal(round(float(margin) * rng.uniform(0.1, 4), 2))
            segment = SEGMENTS[(clv >= 2000) * 2 + (services >= 150)]
            rows.append(CustomerValue(
                run=run, customer=customer, revenue_lifetime=margin * 10, margin_lifetime=margin * 3,
                revenue_window=margin * 4, margin_window=margin, value_to_customer=services,
                profit_after_services=margin - services, abc_class=rng.choice("ABCCC"), p_alive=rng.random(),
                expected_purchases=rng.uniform(0, 5), clv=clv, clv_low=clv / 2, clv_high=clv * 2, segment=segment,
            ))
            if len(rows) >= BATCH:
                CustomerValue.objects.bulk_create(rows)
                rows = []
        CustomerValue.objects.bulk_create(rows)
    if connection.vendor == "postgresql":
        # Rows inserted by this still-open transaction are in no statistics yet: without this
        # the planner expects empty tables and joins by nested loops (seconds per figure).
        with connection.cursor() as cursor:
            for model in (Customer, CustomerValue):
                cursor.execute(f"ANALYZE {model._meta.db_table}")
    started_summary = time.perf_counter()
    write_run_summary(run_id=runs[-1].pk)
    print(f"run summary of the latest run written in {time.perf_counter() - started_summary:.2f} s")
    types = list(ServiceType.objects.all())
    events = [
        ServiceEvent(customer=rng.choice(customers), service_type=rng.choice(types),
                     date=today - dt.timedelta(days=rng.randrange(0, 730)), quantity=Decimal(1))
        for _ in range(n // 2)
    ]
    for lo in range(0, len(events), BATCH):
        ServiceEvent.objects.bulk_create(events[lo:lo + BATCH])
    print(f"synthetic data: {n} customers, 2 runs, {len(events)} service events "
          f"in {time.perf_counter() - started:.1f} s (rolled back at the end)")


def measure(args) -> None:
    client = Client(HTTP_HOST="localhost")  # an allowed host of the default settings
    client.force_login(manager_user(args.username))
    run = ValuationRun.objects.filter(status="completed").order_by("-finished_at", "-pk").first()
    customers = CustomerValue.objects.filter(run=run).count()
    runs = ValuationRun.objects.filter(status="completed").count()
    print(f"database: {connection.vendor}; {Customer.objects.count():,} customers, {runs} completed runs, "
          f"{customers:,} value rows in the latest; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    pages = {
        "dashboard": "/dashboard/",
        "dashboard, filtered (region)": "/dashboard/?region=North",
        "dashboard, filtered (region+industry)": "/dashboard/?region=North&industry=Steel",
    }
    sample = Customer.objects.exclude(region="").exclude(industry="").values("region", "industry").first()
    if sample:
        pages["dashboard, filtered (region)"] = f"/dashboard/?{urlencode({'region': sample['region']})}"
        pages["dashboard, filtered (region+industry)"] = f"/dashboard/?{urlencode(sample)}"
    # A sales rep's book: the manager's dashboard filtered by that owner (reps cannot open it).
    rep = Customer.objects.filter(owner__isnull=False).values("owner_id").annotate(n=Count("pk")).order_by("n").first()
    if rep and args.owner is None:
        args.owner = rep["owner_id"]
    if args.owner is not None:
        owned = Customer.objects.filter(owner_id=args.owner).count()
        pages[f"dashboard, owner {args.owner} ({owned:,} customers)"] = f"/dashboard/?owner={args.owner}"
    timed_get(client, "/settings/")  # warm imports, templates and the policy row
    summary = RunSummary.objects.filter(run=run).first()
    variants = [("", summary)]
    if summary is not None and args.without_summary_too and args.synthetic:  # rolled back afterwards
        variants.append((" without summary", None))
    for suffix, chosen in variants:
        if chosen is None and summary is not None:
            RunSummary.objects.filter(run=run).delete()  # the value-row path (inside --synthetic's rollback)
        for name, url in pages.items():
            cold = []
            floors = []
            for _ in range(args.cold):
                floors.append(scan_floor(run))
                cache.clear()  # the bench's own LocMem cache (see main): the page computes every figure again
                cold.append(timed_get(client, url))
            report(f"{name}{suffix} [cold]", cold)
            print(f"{'':<38} floor, one scan of the run's value rows: p50={statistics.median(floors) * 1000:8.1f} ms; "
                  f"cold p50 / floor = {statistics.median(s[0] for s in cold) / statistics.median(floors):.2f}; "
                  f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
            timed_get(client, url)
            report(f"{name}{suffix} [warm]", [timed_get(client, url) for _ in range(args.repeat)])
    report("settings", [timed_get(client, "/settings/") for _ in range(args.repeat)])


def scan_floor(run: ValuationRun) -> float:
    """Seconds of one scan of the run's value rows (a sum over a column no index holds)."""
    with connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute(f"SELECT COUNT(*), SUM(margin_lifetime) FROM {CustomerValue._meta.db_table} WHERE run_id = %s",
                       [run.pk])
        cursor.fetchall()
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=7, help="warm requests per page")
    parser.add_argument("--cold", type=int, default=3, help="requests per page after clearing the cache")
    parser.add_argument("--owner", type=int, help="owner id for the rep's view (default: the smallest book)")
    parser.add_argument("--username")
    parser.add_argument("--synthetic", type=int, default=0, help="add N throw-away customers (rolled back)")
    parser.add_argument("--without-summary-too", action="store_true",
                        help="with --synthetic: measure again after removing the run's summary (value-row path)")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    with override_settings(CACHES=BENCH_CACHES):
        if not args.synthetic:
            measure(args)
            return
        try:
            with transaction.atomic():
                synthesise(args.synthetic)
                measure(args)
                raise Rollback
        except Rollback:
            pass


if __name__ == "__main__":
    main()
