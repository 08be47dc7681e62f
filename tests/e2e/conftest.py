"""Browser tests: Playwright driving Debian's Chromium (no browser downloads)."""

import os
import shutil
import sqlite3
import time
from io import StringIO
from pathlib import Path

import pytest

from tests.conftest import require_service

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]
# Screenshots for a person to look at; not committed.
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"

# pytest-django's live_server with Playwright's sync API runs inside an event loop.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def browser():
    require_service(Path(CHROMIUM).exists(), "Chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="en-US", accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    context.close()


@pytest.fixture
def login(page, live_server):
    """Log in through the real login form; returns a function taking a user."""

    def _login(user, password="secret-pass-123"):
        page.goto(f"{live_server.url}/login/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", password)
        page.click("main button[type=submit]")  # the header holds the language buttons
        page.wait_for_url(f"{live_server.url}/")
        return page

    return _login


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


# --- the demo `make run` builds ------------------------------------------------------------------


class DatabaseSnapshot:
    """Every model table's rows, kept aside once and put back before each test that wants them.

    Browser tests are transactional: the database is emptied after each. Seeding the demo takes
    minutes, copying it back well under a second or two. SQLite: the whole database through
    sqlite3's backup API. PostgreSQL: a copy of each table in a schema of its own, copied back
    after emptying the tables, then the id sequences moved past the restored ids.
    """

    SCHEMA = "e2e_demo_snapshot"

    def __init__(self, connection):
        self.connection = connection
        self.tables = connection.introspection.django_table_names(only_existing=True, include_views=False)
        connection.ensure_connection()
        if connection.vendor == "sqlite":
            self.copy = sqlite3.connect(":memory:", check_same_thread=False)
            connection.connection.backup(self.copy)
            return
        with connection.cursor() as cursor:
            cursor.execute(f"DROP SCHEMA IF EXISTS {self.SCHEMA} CASCADE; CREATE SCHEMA {self.SCHEMA}")
            for table in self.tables:
                cursor.execute(f'CREATE TABLE {self.SCHEMA}."{table}" AS TABLE "{table}"')

    def restore(self) -> None:
        from django.apps import apps
        from django.core.management.color import no_style
        from django.db import transaction

        connection = self.connection
        connection.ensure_connection()
        if connection.vendor == "sqlite":
            self.copy.backup(connection.connection)
            return
        quoted = ", ".join(f'"{table}"' for table in self.tables)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {quoted} CASCADE")
            for table in self.tables:
                # Generated columns (the transactions' cents) take no values: the database makes them.
                cursor.execute(
                    "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute "
                    "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = ''",
                    [f'"{table}"'],
                )
                columns = cursor.fetchone()[0]
                cursor.execute(f'INSERT INTO "{table}" ({columns}) SELECT {columns} FROM {self.SCHEMA}."{table}"')
            for statement in connection.ops.sequence_reset_sql(no_style(), apps.get_models()):
                cursor.execute(statement)


@pytest.fixture(scope="session")
def demo_snapshot(django_db_setup, django_db_blocker):
    """The demo exactly as `make run` builds it (`seed_demo --if-empty` with its defaults, then
    `recompute_values --if-missing`), seeded once per test session and kept as a snapshot; the
    database is emptied again for the tests that build their own data. Returns the as-of date."""
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from customers.roles import install_role_groups
    from services.catalogue import install_catalogue
    from services.models import ServiceType, StandardCost

    with django_db_blocker.unblock():
        started = time.monotonic()
        # What the migrations of `make migrate` leave in a fresh database.
        install_role_groups(Group)
        install_catalogue(ServiceType, StandardCost)
        call_command("seed_demo", "--if-empty", stdout=StringIO())
        call_command("recompute_values", "--if-missing", stdout=StringIO())
        snapshot = DatabaseSnapshot(connection)
        call_command("flush", interactive=False, verbosity=0)
        print(f"\ndemo seeded and kept in {time.monotonic() - started:.0f} s")
    return snapshot, timezone.localdate()


@pytest.fixture
def demo(transactional_db, demo_snapshot):
    """The demo of `make run` in the test database (restored from the session's snapshot)."""
    snapshot, as_of = demo_snapshot
    snapshot.restore()
    return as_of
