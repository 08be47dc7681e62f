"""bench/bench_dashboard.py must measure pages, not redirects, and leave the shared cache alone."""

import importlib.util
from pathlib import Path

import pytest
from django.core.cache import cache
from django.test import Client

pytestmark = pytest.mark.django_db


def bench_module():
    path = Path(__file__).resolve().parent.parent / "bench" / "bench_dashboard.py"
    spec = importlib.util.spec_from_file_location("bench_dashboard", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_page_that_does_not_answer_200_stops_the_bench(client, manager, settings):
    bench = bench_module()
    client.force_login(manager)
    with pytest.raises(SystemExit, match="answered 404"):
        bench.timed_get(client, "/no-such-page/")


def test_https_requests_are_not_redirected_when_debug_is_off(manager, settings):
    bench = bench_module()
    settings.DEBUG = False
    settings.SECURE_SSL_REDIRECT = True
    client = Client(HTTP_HOST="localhost")
    client.force_login(manager)
    assert client.get("/settings/").status_code == 301  # what the old bench timed as a page
    seconds, status, _queries, _size = bench.timed_get(client, "/settings/")
    assert status == 200 and seconds > 0


def test_the_bench_clears_its_own_cache_not_the_shared_one(monkeypatch):
    bench = bench_module()
    cache.set("shared-entry", "kept")
    monkeypatch.setattr(bench, "measure", lambda args: bench.cache.clear())  # what each cold request does
    monkeypatch.setattr("sys.argv", ["bench_dashboard.py"])
    bench.main()
    assert cache.get("shared-entry") == "kept"
