"""Server time of the rep's-day pages at scale on PostgreSQL: home (rep, manager), the worklist
API and the value-change API, with two valuation runs of N customers made in SQL.

    DATABASE_URL=postgres://... python bench/bench_rep_day.py --customers 1000000

Needs an empty, migrated PostgreSQL database (it refuses one that holds customers unless
--reuse). Value rows are synthetic (generate_series with hashed figures): this measures the
reads, whose cost depends on row counts and indexes, not on the figures.
"""

import argparse
import datetime as dt
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cvm.settings")

import django

django.setup()

from django.conf import settings
from django.db import connection
from django.test import Client

from customers.models import Customer
from customers.roles import Role
from tests.conftest import make_user
from valuation.engine import BgNbdParams, EngineSettings, GammaGammaParams, ValuationModels
from valuation.engine.fit_quality import gate
from valuation.models import ValuationRun
from valuation.worklist import rebuild_work_items

AS_OF = dt.date(2026, 6, 30)
PREVIOUS = dt.date(2026, 5, 31)
SEGMENTS = "ARRAY['uncritical','problem','potential','investment']"


def seed(n: int, reps: list) -> None:
    rep_ids = "ARRAY[" + ",".join(str(r.pk) for r in reps) + "]"
    purchase = BgNbdParams(r=0.8, alpha=6.0, a=0.6, b=3.0)
    fit = ValuationModels(model="bgnbd", purchase=purchase, gamma_gamma=GammaGammaParams(p=4.0, q=3.0, v=120.0),
                          bgnbd=purchase, population_margin=180.0, fit_quality=gate([], [])).to_dict()
    runs = [ValuationRun.objects.create(as_of=day, status=ValuationRun.Status.COMPLETED, stage="done",
                                        finished_at=dt.datetime(2026, 7, 1, tzinfo=dt.UTC), parameters=fit,
                                        settings=EngineSettings().to_dict(),
                                        thresholds={"abc_a_min_margin": 5000, "abc_b_min_margin": 1000,
                                                    "classic_threshold": 2000, "value_to_threshold": 300})
            for day in (PREVIOUS, AS_OF)]
    with connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute(f"""
            INSERT INTO customers_customer (number, name, industry, region, owner_id, acquisition_channel, status,
                                            lost_on, is_demo, created_at, updated_at)
            SELECT 'B' || lpad(g::text, 8, '0'), 'Bench ' || g, 'Industry ' || (g %% 8), 'Region ' || (g %% 6),
                   ({rep_ids})[1 + g %% {len(reps)}], 'direct_sales',
                   CASE WHEN g %% 97 = 0 THEN 'lost' ELSE 'active' END,
                   CASE WHEN g %% 97 = 0 THEN DATE '2026-06-15' END, false, now(), now()
            FROM generate_series(1, %s) g
        """, [n])
        print(f"customers: {time.perf_counter() - started:.1f} s", flush=True)
        for k, run in enumerate(runs):
            started = time.perf_counter()
            # Hashed figures per customer; the second run moves some of them (k).
            cursor.execute(f"""
                INSERT INTO valuation_customervalue (run_id, customer_id, revenue_lifetime, margin_lifetime,
                    revenue_window, margin_window, profit_after_services, abc_class, purchase_days, p_alive,
                    expected_purchases, clv, clv_low, clv_high, is_thin, referral_value, value_to_customer,
                    service_count, service_hours, value_to_by_type, segment, recency_weeks, age_weeks,
                    mean_repeat_margin, basis)
                SELECT %s, c.id, h.m * 3, h.m, h.m * 0.3, h.m * 0.1, h.m * 0.1 - h.v,
                       CASE WHEN h.m > 40000 THEN 'A' WHEN h.m > 15000 THEN 'B' ELSE 'C' END,
                       1 + (h.x %% 40), h.p, 3.0, h.m * 0.2, 0, h.m * 0.4, false, 0, h.v, h.x %% 9, 0, '{{}}'::jsonb,
                       ({SEGMENTS})[1 + ((h.x / 7 + %s * (h.x %% 5 / 4)) %% 4)],
                       (h.x %% 100)::float, 100 + (h.x %% 50)::float, 150.0,
                       CASE WHEN c.status = 'lost' THEN 'lost' ELSE 'model' END
                FROM customers_customer c,
                     LATERAL (SELECT abs(hashint8(c.id)) AS x) r,
                     LATERAL (SELECT (r.x %% 50000)::numeric AS m, ((r.x / 50000) %% 2000)::numeric AS v,
                                     ((r.x %% 1000) / 1000.0) * (1 - 0.3 * %s * (r.x %% 3 / 2)) AS p, r.x AS x) h
            """, [run.pk, k, k])
            print(f"value rows of run {k + 1}: {time.perf_counter() - started:.1f} s", flush=True)
        cursor.execute("ANALYZE")


def timed(client: Client, url: str, repeat: int) -> tuple[float, float]:
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(url)
        seconds.append(time.perf_counter() - started)
        assert response.status_code == 200, (url, response.status_code)
    seconds.sort()
    return statistics.median(seconds) * 1000, seconds[int(0.95 * (len(seconds) - 1))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--reuse", action="store_true", help="Measure the data already there.")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("Set DATABASE_URL to a PostgreSQL database.")
    settings.ALLOWED_HOSTS = ["*"]
    if not args.reuse:
        if Customer.objects.exists():
            sys.exit("The database holds customers; use an empty one or --reuse.")
        from django.contrib.auth.models import Group

        from customers.roles import install_role_groups

        install_role_groups(Group)
        reps = [make_user(Role.SALES_REP, username=f"bench_rep{i}") for i in range(5)]
        make_user(Role.MANAGER, username="bench_manager")
        seed(args.customers, reps)
        started = time.perf_counter()
        items = rebuild_work_items()
        print(f"work items: {items:,} in {time.perf_counter() - started:.1f} s", flush=True)
    from django.contrib.auth import get_user_model

    User = get_user_model()
    rep, manager = User.objects.get(username="bench_rep0"), User.objects.get(username="bench_manager")
    customers = list(Customer.objects.filter(owner=rep).order_by("?").values_list("pk", flat=True)[: args.repeat])
    for user in (rep, manager):
        client = Client()
        client.force_login(user)
        for url in ("/", "/api/v1/worklist/"):
            median, p95 = timed(client, url, args.repeat)
            print(f"{user.username:14} {url:28} median {median:6.1f} ms  p95 {p95:6.1f} ms", flush=True)
    client = Client()
    client.force_login(rep)
    seconds = []
    for pk in customers:
        started = time.perf_counter()
        assert client.get(f"/api/v1/customers/{pk}/value-change/").status_code == 200
        seconds.append(time.perf_counter() - started)
    seconds.sort()
    print(f"{rep.username:14} {'value-change (distinct ids)':28} median {statistics.median(seconds) * 1000:6.1f} ms  "
          f"p95 {seconds[int(0.95 * (len(seconds) - 1))] * 1000:6.1f} ms")


if __name__ == "__main__":
    main()
