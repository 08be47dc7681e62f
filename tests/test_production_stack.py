"""The production stack as users run it: compose file, deploy settings, an interrupted import."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from django.db import connection

from tests.conftest import require_service

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_the_five_services_with_health_checks(compose):
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "web", "worker", "beat"}
    for name in ("postgres", "redis", "web", "worker"):
        assert "healthcheck" in services[name], name
    for name, service in services.items():
        assert service.get("restart") == "unless-stopped", name
    assert {"postgres-data", "redis-data"} <= set(compose["volumes"])


def test_compose_runs_the_right_processes(compose):
    services = compose["services"]
    web = " ".join(services["web"]["command"]) if isinstance(services["web"]["command"], list) else services["web"]["command"]
    assert "gunicorn cvm.wsgi:application" in web and "migrate" in web and "collectstatic" in web
    assert services["worker"]["command"][:4] == ["celery", "-A", "cvm", "worker"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "cvm", "beat"]
    assert services["beat"]["deploy"]["replicas"] == 1  # exactly one beat


def test_compose_wires_the_app_to_postgres_and_redis(compose):
    for name in ("web", "worker", "beat"):
        service = compose["services"][name]
        env = service["environment"]
        assert env["DATABASE_URL"].startswith("postgres://") and "@postgres:5432/" in env["DATABASE_URL"]
        assert env["REDIS_URL"] == "redis://redis:6379/0"
        assert env["CVM_CACHE_URL"] == "redis://redis:6379/1"  # the shared cache apart from Celery's queue
        assert env["DEBUG"] == "false"
        assert service["env_file"] == ".env"
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
    example = (ROOT / ".env.example").read_text()
    for variable in ("SECRET_KEY", "ALLOWED_HOSTS", "POSTGRES_PASSWORD"):
        assert f"{variable}=" in example


def production_env(**extra) -> dict:
    # nothing of the test run's own environment (browser tests allow async-unsafe calls)
    skip = ("DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DJANGO_ALLOW_ASYNC_UNSAFE", "FAST_PASSWORD_HASHER")
    env = {k: v for k, v in os.environ.items() if not k.startswith(skip)}
    # a database that does not exist yet: the checks must not need one
    env.update(DEBUG="false", ALLOWED_HOSTS="cvm.example.com", SQLITE_PATH="/nonexistent/cvm.sqlite3", **extra)
    env.pop("DATABASE_URL", None)
    return env


def test_deploy_check_passes_with_production_settings():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=production_env(SECRET_KEY="x7Qp2vLm9sTz4RbN8wYc1KdF6hJg3UeA5oXi0PqW2nVt-8sKe3LwQ0zR5mT"),
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=production_env(),
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_an_import_killed_half_way_leaves_nothing_behind(tmp_path):
    """SIGKILL the import command in the middle of a large file: not one row is kept."""
    from customers.models import Customer, Transaction

    require_service(connection.vendor == "postgresql", "PostgreSQL (a child process cannot share SQLite's test database)")
    Customer.objects.bulk_create(Customer(number=f"K{i:04d}", name=f"K {i}") for i in range(50))
    path = tmp_path / "big.csv"
    with path.open("w") as out:
        out.write("external_id,customer_number,date,revenue,cost_of_goods\n")
        for i in range(300_000):
            out.write(f"BIG-{i},K{i % 50:04d},2025-{1 + i % 12:02d}-{1 + i % 28:02d},{100 + i % 97}.50,60.00\n")
    db = connection.settings_dict
    env = dict(os.environ)
    if connection.vendor == "postgresql":
        env["DATABASE_URL"] = f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    else:
        env["SQLITE_PATH"] = db["NAME"]
    process = subprocess.Popen(
        [sys.executable, "manage.py", "import_csv", "transactions", str(path)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    # Wait for the first progress line: rows are being written inside the transaction.
    started = time.monotonic()
    line = ""
    while time.monotonic() - started < 120:
        line = process.stdout.readline()
        if not line or "rows" in line.lower():
            break
    time.sleep(0.3)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, "the import finished before it could be interrupted"
    assert Transaction.objects.count() == 0
    assert not Transaction.objects.filter(external_id__startswith="BIG-").exists()
