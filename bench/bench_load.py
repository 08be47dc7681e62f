"""Load test: gunicorn on loopback, concurrent users on the cockpit and the API.

Serves the project with gunicorn on 127.0.0.1 (a free port), logs in one manager session and
one API token, then runs N concurrent users for a bounded time, each looping over: a random
customer's cockpit, the customer list with a filter, and two API lists. Prints requests per
second and p50/p95/p99 latency per kind of request, plus the data size it ran against.

    DATABASE_URL=postgres://... python bench/bench_load.py --users 8 --seconds 30 --workers 3

Production settings by default (DEBUG=false, static files from collectstatic's manifest,
which is built into STATIC_ROOT first if missing); a throw-away SECRET_KEY is generated when
none is set, ALLOWED_HOSTS defaults to 127.0.0.1 and SECURE_SSL_REDIRECT to false (plain
HTTP on loopback). DEBUG=true in the environment measures the development settings instead.

Traffic goes to loopback only and stops by itself after --seconds.
"""

import argparse
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
sys.path.insert(0, str(ROOT))
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


def prepare(username: str) -> tuple[list[int], str, dict]:
    """Customer ids to visit, an API token, and the data size (in this process, via the ORM)."""
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    from customers.models import Customer, Transaction
    from services.models import ServiceEvent

    user = get_user_model().objects.get(username=username)
    # 2,000 random customers without ORDER BY random() over every customer.
    first = Customer.objects.order_by("pk").values_list("pk", flat=True).first()
    last = Customer.objects.order_by("-pk").values_list("pk", flat=True).first()
    ids = []
    if first is not None:
        guesses = random.Random(1).sample(range(first, last + 1), min(last - first + 1, 4000))
        ids = list(Customer.objects.filter(pk__in=guesses).values_list("id", flat=True)[:2000])
    token, _ = Token.objects.get_or_create(user=user)
    size = {
        "customers": Customer.objects.count(),
        "transactions": Transaction.objects.count(),
        "service events": ServiceEvent.objects.count(),
    }
    if not settings.DEBUG and not (Path(settings.STATIC_ROOT) / "staticfiles.json").exists():
        # The manifest storage answers 500 for any {% static %} missing from the manifest.
        call_command("collectstatic", "--noinput", verbosity=0)
    return ids, token.key, size


def login(port: int, username: str, password: str) -> str:
    """A session cookie from the real login form."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/login/")
    response = conn.getresponse()
    body = response.read().decode()
    csrf_cookie = re.search(r"csrftoken=([^;]+)", response.getheader("Set-Cookie", "")).group(1)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', body).group(1)
    form = urlencode({"username": username, "password": password, "csrfmiddlewaretoken": token})
    conn.request("POST", "/login/", form, {
        "Content-Type": "application/x-www-form-urlencoded", "Cookie": f"csrftoken={csrf_cookie}",
        "Referer": f"http://127.0.0.1:{port}/login/",
    })
    response = conn.getresponse()
    response.read()
    session = re.search(r"sessionid=([^;]+)", response.getheader("Set-Cookie", "") or "")
    if response.status != 302 or not session:
        raise SystemExit(f"login as {username} failed ({response.status})")
    return f"csrftoken={csrf_cookie}; sessionid={session.group(1)}"


def user_loop(port, cookie, token, ids, deadline, results, errors, seed):
    rng = random.Random(seed)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    requests = [
        ("cockpit", lambda: f"/customers/{rng.choice(ids)}/", {"Cookie": cookie}),
        ("customer list (filtered)", lambda: f"/customers/?segment={rng.choice(['problem', 'investment'])}&sort=-clv", {"Cookie": cookie}),
        ("API values", lambda: f"/api/v1/values/?page={rng.randint(1, 20)}", {"Authorization": f"Token {token}"}),
        ("API customers", lambda: f"/api/v1/customers/?page={rng.randint(1, 20)}", {"Authorization": f"Token {token}"}),
    ]
    while time.monotonic() < deadline:
        kind, path, headers = rng.choice(requests)
        started = time.monotonic()
        try:
            conn.request("GET", path(), headers=headers)
            response = conn.getresponse()
            response.read()
            ok = response.status == 200
        except (OSError, http.client.HTTPException):
            ok = False
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        elapsed = time.monotonic() - started
        (results if ok else errors)[kind].append(elapsed)


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
    args = parser.parse_args()

    ids, token, size = prepare(args.username)
    load_before = os.getloadavg()
    if not ids:
        raise SystemExit("No customers: seed the database first (python manage.py seed_demo --customers 100000).")
    port = free_port()
    env = dict(os.environ)  # the same settings as prepare() used
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "cvm.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", str(args.workers), "--timeout", "60", "--log-level", "warning"],
        cwd=ROOT, env=env,
    )
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
            discard = defaultdict(list)
            warm = [threading.Thread(target=user_loop, args=(port, cookie, token, ids, time.monotonic() + args.warmup,
                                                             discard, discard, 1000 + n)) for n in range(args.users)]
            for thread in warm:
                thread.start()
            for thread in warm:
                thread.join()
        results, errors = defaultdict(list), defaultdict(list)
        deadline = time.monotonic() + args.seconds
        threads = [
            threading.Thread(target=user_loop, args=(port, cookie, token, ids, deadline, results, errors, n))
            for n in range(args.users)
        ]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.monotonic() - started
    finally:
        server.terminate()
        server.wait(timeout=30)

    total = sum(len(v) for v in results.values())
    print(f"data: {size['customers']:,} customers, {size['transactions']:,} transactions, "
          f"{size['service events']:,} service events")
    print(f"settings: DEBUG={os.environ['DEBUG']}, database {os.environ.get('DATABASE_URL', 'SQLite').split('@')[-1]}")
    print(f"load: {args.users} concurrent users for {wall:.0f} s against gunicorn with {args.workers} workers "
          f"(load average {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after, on {os.cpu_count()} cores)")
    print(f"throughput: {total / wall:.1f} requests/s, {sum(len(v) for v in errors.values())} errors")
    print(f"{'request':<26}{'count':>8}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}")
    for kind, values in sorted(results.items()):
        print(f"{kind:<26}{len(values):>8}{percentile(values, .5) * 1000:>10.0f}"
              f"{percentile(values, .95) * 1000:>10.0f}{percentile(values, .99) * 1000:>10.0f}")
    everything = [v for values in results.values() for v in values]
    if everything:
        print(f"{'all':<26}{len(everything):>8}{statistics.median(everything) * 1000:>10.0f}"
              f"{percentile(everything, .95) * 1000:>10.0f}{percentile(everything, .99) * 1000:>10.0f}")


if __name__ == "__main__":
    main()
