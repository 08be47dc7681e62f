"""Load test: gunicorn on loopback, concurrent users on the cockpit and the API.

Serves the project with gunicorn on 127.0.0.1 (a free port), logs in one manager session and
one API token, then runs N concurrent users for a bounded time. In the same run it measures,
one after the other:

1. the floor: the same users on a trivial view (the login page, anonymous: one template, no
   query beyond the session);
2. the mix (--mix full, the default): a random customer's cockpit, the customer list with a
   filter, a search of the list by name or number, the logging form's customer search, the
   dashboard, the home page, logging a service (a POST of the logging form, answered by a
   redirect) and two API lists. --mix basic is the mix of the first version of this script
   (cockpit, filtered list, two API lists), to compare with it.

Prints requests per second and p50/p95/p99 latency per kind of request for both, the mix's
throughput as a share of the floor's, the errors (any other answer than the expected one),
the load average and the data size it ran against.

    DATABASE_URL=postgres://... python bench/bench_load.py --users 8 --seconds 30 --workers 3

--project serves another checkout of the project with the same script (the same floor, mixes
and report), e.g. the first version on its own database, to compare on the same machine:

    DATABASE_URL=postgres://.../old python bench/bench_load.py --mix basic --project ../cvm-first

Production settings by default (DEBUG=false, static files from collectstatic's manifest,
which is built into STATIC_ROOT first if missing); a throw-away SECRET_KEY is generated when
none is set, ALLOWED_HOSTS defaults to 127.0.0.1 and SECURE_SSL_REDIRECT to false (plain
HTTP on loopback). DEBUG=true in the environment measures the development settings instead.
The POSTs add service events to the database (a few hundred per run).

Traffic goes to loopback only and stops by itself after --seconds (twice: floor and mix).
"""

import argparse
import datetime as dt
import http.client
import os
import random
import re
import secrets
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cvm.settings")
os.environ.setdefault("DEBUG", "false")
if os.environ["DEBUG"].lower() in ("0", "false", "no", "off"):
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1")
    os.environ.setdefault("SECURE_SSL_REDIRECT", "false")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(username: str) -> tuple[list[int], str, dict, dict]:
    """Customer ids to visit, an API token, the data size, and what the mix needs besides:
    customer numbers and names to search and log for, the active service types (in this
    process, via the ORM)."""
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    from customers.models import Customer, Transaction
    from services.models import ServiceEvent, ServiceType

    user = get_user_model().objects.get(username=username)
    # 2,000 random customers without ORDER BY random() over every customer.
    first = Customer.objects.order_by("pk").values_list("pk", flat=True).first()
    last = Customer.objects.order_by("-pk").values_list("pk", flat=True).first()
    ids = []
    if first is not None:
        guesses = random.Random(1).sample(range(first, last + 1), min(last - first + 1, 4000))
        ids = list(Customer.objects.filter(pk__in=guesses).values_list("id", flat=True)[:2000])
    picked = list(Customer.objects.filter(pk__in=ids[:500]).values_list("number", "name"))
    extra = {
        "numbers": [number for number, _ in picked],
        "name_prefixes": sorted({name[:3] for _, name in picked if len(name) >= 3}),
        "number_prefixes": sorted({number[:-2] for number, _ in picked if len(number) > 3}),
        "service_types": list(ServiceType.objects.filter(active=True).values_list("pk", flat=True)),
    }
    token, _ = Token.objects.get_or_create(user=user)
    size = {
        "customers": Customer.objects.count(),
        "transactions": Transaction.objects.count(),
        "service events": ServiceEvent.objects.count(),
    }
    if not settings.DEBUG and not (Path(settings.STATIC_ROOT) / "staticfiles.json").exists():
        # The manifest storage answers 500 for any {% static %} missing from the manifest.
        call_command("collectstatic", "--noinput", verbosity=0)
    return ids, token.key, size, extra


def login(port: int, username: str, password: str) -> str:
    """A session cookie from the real login form."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/login/")
    response = conn.getresponse()
    body = response.read().decode()
    csrf_cookie = re.search(r"csrftoken=([^;]+)", response.getheader("Set-Cookie", "")).group(1)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', body).group(1)
    form = urlencode({"username": username, "password": password, "csrfmiddlewaretoken": token})
    conn.request(
        "POST",
        "/login/",
        form,
        {
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": f"csrftoken={csrf_cookie}",
            "Referer": f"http://127.0.0.1:{port}/login/",
        },
    )
    response = conn.getresponse()
    response.read()
    set_cookies = " ".join(value for name, value in response.getheaders() if name.lower() == "set-cookie")
    session = re.search(r"sessionid=([^;]+)", set_cookies)
    if response.status != 302 or not session:
        raise SystemExit(f"login as {username} failed ({response.status})")
    rotated = re.search(r"csrftoken=([^;]+)", set_cookies)  # login rotates the CSRF token
    return f"csrftoken={rotated.group(1) if rotated else csrf_cookie}; sessionid={session.group(1)}"


def csrf_of(cookie: str) -> str:
    return re.search(r"csrftoken=([^;]+)", cookie).group(1)


def trivial_requests(rng, port, cookie, token, ids, extra):
    """The floor: the login page, anonymous."""
    return [("trivial: login page", "GET", lambda: "/login/", {}, None, 200)]


def basic_requests(rng, port, cookie, token, ids, extra):
    """The mix of the first version of this script."""
    return [
        ("cockpit", "GET", lambda: f"/customers/{rng.choice(ids)}/", {"Cookie": cookie}, None, 200),
        (
            "customer list (filtered)",
            "GET",
            lambda: f"/customers/?segment={rng.choice(['problem', 'investment'])}&sort=-clv",
            {"Cookie": cookie},
            None,
            200,
        ),
        (
            "API values",
            "GET",
            lambda: f"/api/v1/values/?page={rng.randint(1, 20)}",
            {"Authorization": f"Token {token}"},
            None,
            200,
        ),
        (
            "API customers",
            "GET",
            lambda: f"/api/v1/customers/?page={rng.randint(1, 20)}",
            {"Authorization": f"Token {token}"},
            None,
            200,
        ),
    ]


def full_requests(rng, port, cookie, token, ids, extra):
    """The basic mix plus search, dashboard, home and logging a service."""
    today = dt.date.today().isoformat()
    prefixes = extra["name_prefixes"] + extra["number_prefixes"]

    def log_form():
        return urlencode(
            {
                "customer": rng.choice(extra["numbers"]),
                "service_type": rng.choice(extra["service_types"]),
                "date": today,
                "quantity": rng.choice(["1", "2", "0.5"]),
                "note": "load test",
                "csrfmiddlewaretoken": csrf_of(cookie),
            }
        )

    post_headers = {
        "Cookie": cookie,
        "Content-Type": "application/x-www-form-urlencoded",
        "Referer": f"http://127.0.0.1:{port}/services/log/",
    }
    return [
        *basic_requests(rng, port, cookie, token, ids, extra),
        (
            "list search",
            "GET",
            lambda: f"/customers/?{urlencode({'q': rng.choice(prefixes)})}",
            {"Cookie": cookie},
            None,
            200,
        ),
        (
            "logging form search",
            "GET",
            lambda: f"/services/customers/search/?{urlencode({'q': rng.choice(prefixes)})}",
            {"Cookie": cookie},
            None,
            200,
        ),
        ("dashboard", "GET", lambda: "/dashboard/", {"Cookie": cookie}, None, 200),
        ("home", "GET", lambda: "/", {"Cookie": cookie}, None, 200),
        ("log a service (POST)", "POST", lambda: "/services/log/", post_headers, log_form, 302),
    ]


MIXES = {"trivial": trivial_requests, "basic": basic_requests, "full": full_requests}


def user_loop(port, cookie, token, ids, deadline, results, errors, seed, mix="full", extra=None):
    rng = random.Random(seed)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    requests = MIXES[mix](rng, port, cookie, token, ids, extra)
    while time.monotonic() < deadline:
        kind, method, path, headers, body, expected = rng.choice(requests)
        started = time.monotonic()
        try:
            conn.request(method, path(), body=body() if body else None, headers=headers)
            response = conn.getresponse()
            response.read()
            ok = response.status == expected
            if not ok:
                errors[f"{kind}: HTTP {response.status}"].append(0)
        except (OSError, http.client.HTTPException) as error:
            ok = False
            errors[f"{kind}: {type(error).__name__}"].append(0)
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        elapsed = time.monotonic() - started
        if ok:
            results[kind].append(elapsed)


def run_users(args, port, cookie, token, ids, extra, mix, seconds, seed) -> tuple[dict, dict, float]:
    results, errors = defaultdict(list), defaultdict(list)
    deadline = time.monotonic() + seconds
    threads = [
        threading.Thread(
            target=user_loop, args=(port, cookie, token, ids, deadline, results, errors, seed + n, mix, extra)
        )
        for n in range(args.users)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors, time.monotonic() - started


def report(title: str, results: dict, errors: dict, wall: float, load: tuple) -> float:
    total = sum(len(v) for v in results.values())
    print(
        f"\n{title}: {total / wall:.1f} requests/s over {wall:.0f} s, {sum(len(v) for v in errors.values())} errors "
        f"(load average {load[0]:.1f} before, {os.getloadavg()[0]:.1f} after)"
    )
    for kind, values in sorted(errors.items()):
        print(f"  error {kind}: {len(values)}")
    print(f"{'request':<28}{'count':>8}{'req/s':>8}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}")
    for kind, values in sorted(results.items()):
        print(
            f"{kind:<28}{len(values):>8}{len(values) / wall:>8.1f}{percentile(values, 0.5) * 1000:>10.0f}"
            f"{percentile(values, 0.95) * 1000:>10.0f}{percentile(values, 0.99) * 1000:>10.0f}"
        )
    everything = [v for values in results.values() for v in values]
    if everything:
        print(
            f"{'all':<28}{len(everything):>8}{total / wall:>8.1f}{statistics.median(everything) * 1000:>10.0f}"
            f"{percentile(everything, 0.95) * 1000:>10.0f}{percentile(everything, 0.99) * 1000:>10.0f}"
        )
    return total / wall


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--workers", type=int, default=3, help="gunicorn worker processes")
    parser.add_argument("--warmup", type=float, default=5, help="seconds of untimed traffic first")
    parser.add_argument("--username", default="manager")
    parser.add_argument("--password", default="cvm-demo")
    parser.add_argument(
        "--mix",
        choices=("full", "basic"),
        default="full",
        help="full: cockpit, list, search, dashboard, home, log a service, API; basic: the first version's",
    )
    parser.add_argument("--no-floor", action="store_true", help="skip the trivial-view floor")
    parser.add_argument(
        "--project", type=Path, default=ROOT, help="the checkout to serve (default: this one), e.g. an older version"
    )
    args = parser.parse_args()
    project = args.project.resolve()
    sys.path.insert(0, str(project))

    ids, token, size, extra = prepare(args.username)
    if not ids:
        raise SystemExit("No customers: seed the database first (python manage.py seed_demo --customers 100000).")
    port = free_port()
    env = dict(os.environ)  # the same settings as prepare() used
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "cvm.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(args.workers),
            "--timeout",
            "60",
            "--log-level",
            "warning",
        ],
        cwd=project,
        env=env,
    )
    phases = []
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.2)
        cookie = login(port, args.username, args.password)
        if args.warmup > 0:
            # Each worker imports lazily and fills its own in-process caches on first use.
            run_users(args, port, cookie, token, ids, extra, args.mix, args.warmup, 1000)
        if not args.no_floor:
            load = os.getloadavg()
            phases.append(
                (
                    "floor (trivial view)",
                    *run_users(args, port, cookie, token, ids, extra, "trivial", args.seconds, 0),
                    load,
                )
            )
        load = os.getloadavg()
        phases.append(
            (f"mix ({args.mix})", *run_users(args, port, cookie, token, ids, extra, args.mix, args.seconds, 0), load)
        )
    finally:
        server.terminate()
        server.wait(timeout=30)

    print(
        f"data: {size['customers']:,} customers, {size['transactions']:,} transactions, "
        f"{size['service events']:,} service events"
    )
    print(f"project: {project}")
    print(f"settings: DEBUG={os.environ['DEBUG']}, database {os.environ.get('DATABASE_URL', 'SQLite').split('@')[-1]}")
    print(
        f"load: {args.users} concurrent users for {args.seconds:.0f} s per phase against gunicorn with "
        f"{args.workers} workers on {os.cpu_count()} cores"
    )
    throughput = {title: report(title, results, errors, wall, load) for title, results, errors, wall, load in phases}
    if len(phases) == 2:
        floor, mix = throughput.values()
        print(
            f"\nmix throughput {mix:.1f} requests/s = {mix / floor:.2f} x the trivial view's {floor:.1f} requests/s "
            f"in the same run"
        )
    if any(errors for _, _, errors, _, _ in phases):
        raise SystemExit("errors: see above")


if __name__ == "__main__":
    main()
