"""Time the cockpit pages against the configured database (SQLite file or DATABASE_URL).

Logs a manager in with Django's test Client (no web server) and measures:
- the customer cockpit of many customers (p50/p95),
- the customer list: default, with filters, sorted by CLV, and a deep page,
- the value statement (HTML) and the service-log page,
and prints the number of SQL queries each page ran.

    DATABASE_URL=postgres://... python bench/bench_pages.py --customers 200 --repeat 3

It reads only (a login session is the one write). The manager login is taken from
--username (default: the first superuser or member of the "manager" group).
"""

import argparse
import logging
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cvm.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Q  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.urls import reverse  # noqa: E402

from customers.models import Customer  # noqa: E402
from customers.roles import Role  # noqa: E402


def manager_user(username: str | None):
    users = get_user_model().objects
    if username:
        return users.get(username=username)
    user = users.filter(Q(is_superuser=True) | Q(groups__name=Role.MANAGER.value)).order_by("pk").first()
    if user is None:
        sys.exit("No manager found: pass --username or run `manage.py seed_demo` first.")
    return user


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
    seconds = [s for s, _status, _q in samples]
    statuses = sorted({status for _s, status, _q in samples})
    queries = sorted({q for _s, _status, q in samples})
    print(
        f"{name:<34} n={len(samples):>4}  p50={statistics.median(seconds) * 1000:8.1f} ms  "
        f"p95={percentile(seconds, 0.95) * 1000:8.1f} ms  max={max(seconds) * 1000:8.1f} ms  "
        f"queries={','.join(map(str, queries))}  status={','.join(map(str, statuses))}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=200, help="cockpits to open (spread over the id range)")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions of each list request")
    parser.add_argument("--username", help="a manager's username")
    args = parser.parse_args()

    # A host the settings allow, so the bench runs against production-like settings too.
    host = next((h for h in settings.ALLOWED_HOSTS if h != "*" and not h.startswith(".")), "localhost")
    client = Client(HTTP_HOST=host)
    client.force_login(manager_user(args.username))
    logging.getLogger("weasyprint").setLevel(logging.WARNING)

    bounds = Customer.objects.order_by("pk").values_list("pk", flat=True)
    first, last = bounds.first(), Customer.objects.order_by("-pk").values_list("pk", flat=True).first()
    if first is None:
        sys.exit("No customers in this database.")
    step = max(1, (last - first) // max(1, args.customers))
    ids = list(
        Customer.objects.filter(pk__in=range(first, last + 1, step)).order_by("pk").values_list("pk", flat=True)[
            : args.customers
        ]
    )
    sample = Customer.objects.filter(pk=ids[len(ids) // 2]).values("region", "industry", "number").first()
    print(f"database: {connection.vendor} {connection.settings_dict['NAME']}; customers {first}..{last}; "
          f"{len(ids)} cockpits\n")

    # Warm up: imports, template loading, the first connection.
    for url in (reverse("customers:detail", args=[ids[0]]), reverse("customers:list")):
        _seconds, status, _queries = timed_get(client, url)
        if status != 200:
            sys.exit(f"GET {url} answered {status}: check ALLOWED_HOSTS and the manager login.")

    report("cockpit /customers/<id>/", [timed_get(client, reverse("customers:detail", args=[pk])) for pk in ids])

    list_url = reverse("customers:list")
    lists = {
        "list (name order)": list_url,
        "list region+industry filter": f"{list_url}?region={sample['region']}&industry={sample['industry']}",
        "list segment=problem by -clv": f"{list_url}?segment=problem&sort=-clv",
        "list sorted by -clv": f"{list_url}?sort=-clv",
        "list sorted by -value_to_customer": f"{list_url}?sort=-value_to_customer",
        "list search by number prefix": f"{list_url}?q={sample['number'][:4]}",
        "list page 40": f"{list_url}?page=40",
    }
    for name, url in lists.items():
        report(name, [timed_get(client, url) for _ in range(args.repeat)])

    statements = ids[: max(1, min(len(ids), 50))]
    report("statement (HTML)", [timed_get(client, reverse("customers:statement", args=[pk])) for pk in statements])
    report("statement (PDF)", [timed_get(client, reverse("customers:statement", args=[pk]) + "?format=pdf")
                               for pk in statements[:5]])
    report("service log page", [timed_get(client, reverse("services:log")) for _ in range(args.repeat)])
    search = reverse("services:customer-search")
    report("customer search ?q=", [timed_get(client, f"{search}?q={sample['number'][:3]}") for _ in range(args.repeat)])


if __name__ == "__main__":
    main()
