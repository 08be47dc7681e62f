"""Time the cockpit pages against the configured database (SQLite file or DATABASE_URL).

Logs each user in with Django's test Client (no web server) and measures:
- the cockpit of many random customers the user may see (p50/p95),
- the customer list: default, with filters (segment, region+industry), sorted by value
  columns, searched by name and by number, and a deep page,
- the value statement (HTML, PDF) and the service-log page,
and prints the number of SQL queries each page ran, the data size and the load average.

    DATABASE_URL=postgres://... python bench/bench_pages.py --customers 300 --repeat 7
    python bench/bench_pages.py --username manager --username rep4

It reads only (a login session is the one write). Each --username is measured in turn
(default: the first superuser or member of the "manager" group).
"""

import argparse
import logging
import os
import random
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cvm.settings")

import django

django.setup()

from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from bench._people import manager_user
from customers.access import visible_customers
from customers.models import Customer, Transaction
from customers.roles import role_of
from services.models import ServiceEvent


def timed_get(client: Client, url: str) -> tuple[float, int, int]:
    """Seconds, status code and SQL queries of one GET."""
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        response = client.get(url)
        if hasattr(response, "streaming_content"):
            b"".join(response.streaming_content)
        seconds = time.perf_counter() - started
    return seconds, response.status_code, len(queries)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]


def report(name: str, samples: list[tuple[float, int, int]]) -> None:
    if not samples:
        print(f"{name:<34} (no sample)")
        return
    seconds = [s for s, _status, _q in samples]
    statuses = sorted({status for _s, status, _q in samples})
    queries = sorted({q for _s, _status, q in samples})
    print(
        f"{name:<34} n={len(samples):>4}  p50={statistics.median(seconds) * 1000:8.1f} ms  "
        f"p95={percentile(seconds, 0.95) * 1000:8.1f} ms  max={max(seconds) * 1000:8.1f} ms  "
        f"queries={','.join(map(str, queries))}  status={','.join(map(str, statuses))}"
    )


def cockpit_ids(user, count: int, *, seed: int = 7) -> list[int]:
    """`count` random ids of customers this user may see, without ORDER BY random() over 1M rows."""
    visible = visible_customers(user=user)
    first = visible.order_by("pk").values_list("pk", flat=True).first()
    last = visible.order_by("-pk").values_list("pk", flat=True).first()
    if first is None:
        return []
    rng = random.Random(seed)
    ids: set[int] = set()
    for _attempt in range(20):
        guesses = rng.sample(range(first, last + 1), min(last - first + 1, max(50, count * 8)))
        ids |= set(visible.filter(pk__in=guesses).values_list("pk", flat=True))
        if len(ids) >= count:
            break
    chosen = sorted(ids)
    rng.shuffle(chosen)
    return chosen[:count]


def measure_user(user, args) -> None:
    host = next((h for h in settings.ALLOWED_HOSTS if h != "*" and not h.startswith(".")), "localhost")
    client = Client(HTTP_HOST=host)
    client.force_login(user)
    ids = cockpit_ids(user, args.customers)
    if not ids:
        print(f"{user.username}: sees no customers")
        return
    visible = visible_customers(user=user)
    sample = visible.filter(pk=ids[0]).values("region", "industry", "number", "name").first()
    name_word = max(sample["name"].split(), key=len)
    print(f"\n== {user.username} ({role_of(user).value if role_of(user) else '-'}): "
          f"{visible.count():,} visible customers; {len(ids)} cockpits; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    # Warm up: imports, template loading, the first connection, the filter choices cache.
    for url in (reverse("customers:detail", args=[ids[0]]), reverse("customers:list")):
        _seconds, status, _queries = timed_get(client, url)
        if status != 200:
            sys.exit(f"GET {url} answered {status}: check ALLOWED_HOSTS and the login.")

    report("cockpit /customers/<id>/", [timed_get(client, reverse("customers:detail", args=[pk])) for pk in ids])

    list_url = reverse("customers:list")
    lists = {
        "list (name order)": list_url,
        "list segment=problem (name order)": f"{list_url}?segment=problem",
        "list segment=investment by -clv": f"{list_url}?segment=investment&sort=-clv",
        "list segment=problem by -clv": f"{list_url}?segment=problem&sort=-clv",
        "list region+industry filter": f"{list_url}?{urlencode({'region': sample['region'], 'industry': sample['industry']})}",
        "list sorted by -clv": f"{list_url}?sort=-clv",
        "list sorted by -margin_window": f"{list_url}?sort=-margin_window",
        "list sorted by -value_to_customer": f"{list_url}?sort=-value_to_customer",
        "list sorted by segment": f"{list_url}?sort=segment",
        # Every other value column the list sorts by (each walks its own index of the run).
        "list sorted by clv": f"{list_url}?sort=clv",
        "list sorted by -revenue_window": f"{list_url}?sort=-revenue_window",
        "list sorted by -profit_after_services": f"{list_url}?sort=-profit_after_services",
        "list sorted by p_alive": f"{list_url}?sort=p_alive",
        "list sorted by -service_count": f"{list_url}?sort=-service_count",
        "list sorted by abc_class": f"{list_url}?sort=abc_class",
        "list segment=investment by -value_to_customer": f"{list_url}?segment=investment&sort=-value_to_customer",
        "list search by number prefix": f"{list_url}?q={sample['number'][:5]}",
        "list search by full number": f"{list_url}?q={sample['number']}",
        "list search by name word": f"{list_url}?{urlencode({'q': name_word})}",
        "list page 40": f"{list_url}?page=40",
    }
    for name, url in lists.items():
        report(name, [timed_get(client, url) for _ in range(args.repeat)])

    if args.statements:
        statements = ids[: args.statements]
        report("statement (HTML)", [timed_get(client, reverse("customers:statement", args=[pk])) for pk in statements])
        report("statement (PDF)", [timed_get(client, reverse("customers:statement", args=[pk]) + "?format=pdf")
                                   for pk in statements[:3]])
    report("service log page", [timed_get(client, reverse("services:log")) for _ in range(args.repeat)])
    search = reverse("services:customer-search")
    report("customer search ?q=", [timed_get(client, f"{search}?q={sample['number'][:4]}") for _ in range(args.repeat)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=200, help="random cockpits to open per user")
    parser.add_argument("--repeat", type=int, default=5, help="repetitions of each list request")
    parser.add_argument("--statements", type=int, default=20, help="value statements to render (0: skip)")
    parser.add_argument("--username", action="append", help="a user to measure as (repeatable)")
    args = parser.parse_args()
    logging.getLogger("weasyprint").setLevel(logging.WARNING)

    users = [manager_user(name) for name in args.username] if args.username else [manager_user(None)]
    print(f"database: {connection.vendor} {connection.settings_dict['NAME']}; "
          f"{Customer.objects.count():,} customers, {Transaction.objects.count():,} transactions, "
          f"{ServiceEvent.objects.count():,} service events")
    for user in users:
        measure_user(user, args)


if __name__ == "__main__":
    main()
