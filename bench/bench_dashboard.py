"""Time the first view of the dashboard for every kind of filter and the home page of every
role against the configured database, each next to two floors measured in the same run: one
scan of the latest run's value rows and the cheapest page (a form on the base template).

A user is logged in with Django's test Client (no web server). Before each dashboard view the
cache is cleared, so every figure is computed (the first view of a filter after a run); the
cache is a LocMem cache of this process, never the shared database cache of the web
processes. Any answer other than 200 stops the bench with an error. p50 and p95 are printed
with the number of SQL queries and the load average.

    python bench/bench_dashboard.py --cold 7 --repeat 15
    python bench/bench_dashboard.py --synthetic 100000     # throw-away data, rolled back

A million customers on PostgreSQL, kept (about 25 minutes on a loaded 2-core machine):

    DATABASE_URL=postgres://.../db python bench/bench_rep_day.py --customers 1000000 --repeat 5
    DATABASE_URL=postgres://.../db python bench/bench_dashboard.py --add-activity
    DATABASE_URL=postgres://.../db python bench/bench_dashboard.py

bench_rep_day.py makes the customers, two runs of value rows and the work items in SQL;
--add-activity adds a transaction and a service event per customer, an inside-sales user and a
user without a role, and writes the latest run's summary. With --synthetic N the bench adds N
customers, two completed runs of value rows and a year of service events inside one
transaction and rolls it back at the end.
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
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone

from bench._people import manager_user
from customers.models import Customer
from customers.roles import Role
from services.models import ServiceEvent, ServiceType
from valuation.models import CustomerValue, RunSummary, ValuationRun
from valuation.run_summary import write_run_summary

BATCH = 5000
OWNERS = 40  # sales reps of the synthetic data: books of n/40 customers
SEGMENTS = ["uncritical", "problem", "potential", "investment"]


class Rollback(Exception):
    pass


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


def add_activity(*, transactions_per_customer: int = 1, events_per_customer: int = 1) -> None:
    """Transactions and service events over two years for every customer already there (in SQL,
    hashed figures), the users of the other roles, and the latest run's summary.

    For a database seeded by bench_rep_day.py (customers and two runs of value rows): the pages'
    cost depends on row counts and indexes, not on the figures.
    """
    from customers.models import Transaction

    run = ValuationRun.objects.filter(status="completed").order_by("-as_of", "-pk").first()
    as_of = run.as_of
    with connection.cursor() as cursor:
        if Transaction.objects.exists():
            transactions_per_customer = events_per_customer = 0  # added before: users and summary only
        started = time.perf_counter()
        cursor.execute("""
            INSERT INTO customers_transaction (customer_id, external_id, date, revenue, cost_of_goods, product, channel)
            SELECT c.id, 'T' || c.id || '-' || k, %s::date - ((abs(hashint8(c.id * 31 + k)) %% 730)::int),
                   (abs(hashint8(c.id * 17 + k)) %% 500000) / 100.0, (abs(hashint8(c.id * 17 + k)) %% 300000) / 100.0,
                   '', ''
            FROM customers_customer c, generate_series(1, %s) k
        """, [as_of, transactions_per_customer])
        print(f"transactions: {cursor.rowcount:,} in {time.perf_counter() - started:.1f} s", flush=True)
        started = time.perf_counter()
        cursor.execute("""
            INSERT INTO services_serviceevent (customer_id, service_type_id, date, quantity, note, created_at, updated_at)
            SELECT c.id, t.ids[1 + (abs(hashint8(c.id * 13 + k)) %% array_length(t.ids, 1))],
                   %s::date - ((abs(hashint8(c.id * 7 + k)) %% 730)::int), 1 + (abs(hashint8(c.id + k)) %% 3),
                   '', now(), now()
            FROM customers_customer c, generate_series(1, %s) k,
                 (SELECT array_agg(id ORDER BY id) AS ids FROM services_servicetype) t
        """, [as_of, events_per_customer])
        print(f"service events: {cursor.rowcount:,} in {time.perf_counter() - started:.1f} s", flush=True)
        cursor.execute("ANALYZE")
    from tests.conftest import make_user

    for username, role in (("bench_inside", Role.INSIDE_SALES), ("bench_plain", None)):
        if not get_user_model().objects.filter(username=username).exists():
            make_user(role, username=username)
    started = time.perf_counter()
    write_run_summary(run_id=run.pk)
    print(f"run summary of run {run.pk}: {time.perf_counter() - started:.1f} s", flush=True)


CHEAPEST_PAGE = "/account/password/"  # a form and the base template: the floor of any page


def dashboard_filters() -> dict[str, str]:
    """Every kind of filter the dashboard form offers, with values that have customers."""
    sample = (Customer.objects.exclude(region="").exclude(industry="").filter(owner__isnull=False)
              .values("owner_id", "region", "industry").first())
    filters = {"dashboard, every customer": ""}
    if sample is None:
        return filters
    owner, region, industry = sample["owner_id"], sample["region"], sample["industry"]
    books = {
        "owner": {"owner": owner},
        "region": {"region": region},
        "industry": {"industry": industry},
        "owner+region": {"owner": owner, "region": region},
        "region+industry": {"region": region, "industry": industry},
        "owner+region+industry": {"owner": owner, "region": region, "industry": industry},
    }
    for name, query in books.items():
        filters[f"dashboard, {name}"] = urlencode(query)
    earlier = list(ValuationRun.objects.filter(status="completed").order_by("-as_of", "-pk").values_list("pk", flat=True))
    if len(earlier) > 2:  # another comparison than the default one (the default is the last)
        filters["dashboard, compare with another run"] = urlencode({"compare": earlier[1]})
    return filters


def role_users() -> dict[str, object]:
    """One user per role with a home page: a rep, a manager, inside sales, a user without a role."""
    users = get_user_model().objects
    found = {}
    for role in (Role.SALES_REP, Role.MANAGER, Role.INSIDE_SALES):
        user = users.filter(groups__name=role.value, is_superuser=False).order_by("pk").first()
        if user is not None:
            found[str(role.value)] = user
    plain = users.filter(groups__isnull=True, is_superuser=False).order_by("pk").first()
    if plain is not None:
        found["no role"] = plain
    return found


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def measure(args) -> None:
    client = Client(HTTP_HOST="localhost")  # an allowed host of the default settings
    client.force_login(manager_user(args.username, create=True))
    run = ValuationRun.objects.filter(status="completed").order_by("-as_of", "-finished_at", "-pk").first()
    customers = CustomerValue.objects.filter(run=run).count()
    runs = ValuationRun.objects.filter(status="completed").count()
    print(f"database: {connection.vendor}; {Customer.objects.count():,} customers, {runs} completed runs, "
          f"{customers:,} value rows in the latest, summary: {RunSummary.objects.filter(run=run).exists()}; "
          f"load average {load()}")
    timed_get(client, "/settings/")  # warm imports, templates and the policy row
    timed_get(client, CHEAPEST_PAGE)
    print(f"{'first view (cache cleared before each)':<44} {'p50':>9} {'p95':>9}   floors in the same run: "
          f"one scan of the run's value rows / cheapest page ({CHEAPEST_PAGE})")
    for name, query in dashboard_filters().items():
        cold, scans, cheapest = [], [], []
        for _ in range(args.cold):
            scans.append(scan_floor(run))
            cheapest.append(timed_get(client, CHEAPEST_PAGE)[0])
            cache.clear()  # the bench's own LocMem cache (see main): the page computes every figure again
            cold.append(timed_get(client, f"/dashboard/?{query}" if query else "/dashboard/"))
        summarise(name, cold, scans, cheapest)
    nps_as_of_run(args, run, client)
    for role, user in role_users().items():
        home = Client(HTTP_HOST="localhost")
        home.force_login(user)
        timed_get(home, "/")
        samples, scans, cheapest = [], [], []
        for _ in range(args.repeat):
            scans.append(scan_floor(run))
            cheapest.append(timed_get(home, CHEAPEST_PAGE)[0])
            cache.clear()
            samples.append(timed_get(home, "/"))
        summarise(f"home page, {role}", samples, scans, cheapest)
    print(f"load average {load()}")


def nps_as_of_run(args, run: ValuationRun, client: Client) -> None:
    """The dashboard's NPS figures (company, by segment, trend) over the 12 months before the
    run's date, read as the page reads them: by segment from the run's own counts where its
    summary has them. The page's window ends today: where the data's answers end earlier (the
    synthetic 1M data's end in mid-2025) it is empty and the first views above do not pay for
    them. The page caches these figures for five minutes, whatever the filter."""
    from cockpit.nps import company_nps, nps_trend, segment_nps, stored_segment_counts

    samples, scans, cheapest, counted = [], [], [], None
    for _ in range(args.cold):
        scans.append(scan_floor(run))
        cheapest.append(timed_get(client, CHEAPEST_PAGE)[0])
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            counted = stored_segment_counts(run)
            company_nps(today=run.as_of), nps_trend(today=run.as_of)
            segment_nps(run=run, today=run.as_of, counted=counted)
            samples.append((time.perf_counter() - started, 200, len(queries), 0))
    how = "the run's counts" if counted is not None else "joined now"  # the run counted none
    summarise(f"NPS as of the run's date, {how}", samples, scans, cheapest)


def summarise(name: str, samples: list[tuple], scans: list[float], cheapest: list[float]) -> None:
    seconds = [s[0] for s in samples]
    p50, scan, page = statistics.median(seconds), statistics.median(scans), statistics.median(cheapest)
    print(f"{name:<44} {p50 * 1000:7.1f} ms {percentile(seconds, 0.95) * 1000:7.1f} ms   "
          f"scan {scan * 1000:6.1f} ms ({p50 / scan:4.2f}x)  cheapest {page * 1000:5.1f} ms ({p50 / page:5.1f}x)  "
          f"queries={','.join(map(str, sorted({s[2] for s in samples})))}  n={len(samples)}  load {load()}",
          flush=True)


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
    parser.add_argument("--username")
    parser.add_argument("--synthetic", type=int, default=0, help="add N throw-away customers (rolled back)")
    parser.add_argument("--without-summary", action="store_true",
                        help="measure the value-row path: the latest run's summary is deleted, then restored (rolled back)")
    parser.add_argument("--add-activity", action="store_true",
                        help="add transactions, service events and users to a database seeded by bench_rep_day.py")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    if args.add_activity:
        add_activity()
        return
    with override_settings(CACHES=BENCH_CACHES):
        if not (args.synthetic or args.without_summary):
            measure(args)
            return
        try:
            with transaction.atomic():
                if args.synthetic:
                    synthesise(args.synthetic)
                if args.without_summary:
                    RunSummary.objects.all().delete()
                measure(args)
                raise Rollback
        except Rollback:
            pass


if __name__ == "__main__":
    main()
