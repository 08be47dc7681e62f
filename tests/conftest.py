import os

import pytest
from django.contrib.auth.models import Group

from customers.roles import Role

from .factories import UserFactory

IN_CI = os.environ.get("CI", "").lower() == "true"

# the `broker` fixture and real Celery workers for the integration and fault tests; the
# simulated company valued twice (`company`, `two_runs`) for the rep's-day tests
pytest_plugins = ["tests.workers", "tests.valued_company"]


@pytest.fixture(autouse=True)
def _empty_cache(request):
    """Ids repeat across tests (rolled back), so cached figures must not. The cache is a
    database table: only tests with database access touch it."""
    marker = request.node.get_closest_marker("django_db")
    names = set(request.fixturenames)
    if marker is None and not {"db", "transactional_db", "live_server"} & names:
        yield
        return
    transactional = bool({"transactional_db", "live_server"} & names) or bool(marker and marker.kwargs.get("transaction"))
    request.getfixturevalue("transactional_db" if transactional else "db")
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _plain_authentication(request, settings):
    """Django's test client logs in without a request, which django-axes refuses;
    tests marked ``axes`` keep the throttling on."""
    if "axes" not in request.keywords:
        settings.AXES_ENABLED = False
        settings.AUTHENTICATION_BACKENDS = [
            b for b in settings.AUTHENTICATION_BACKENDS if not b.startswith("axes.")
        ]


@pytest.fixture(autouse=True)
def _reference_data(request):
    """Transactional tests (browser, worker) flush the database, taking the groups and the
    service catalogue that migrations created; put them back for every such test."""
    if not {"transactional_db", "live_server"} & set(request.fixturenames):
        marker = request.node.get_closest_marker("django_db")
        if not (marker and marker.kwargs.get("transaction")):
            return
    request.getfixturevalue("transactional_db")
    from customers.roles import install_role_groups
    from services.catalogue import install_catalogue
    from services.models import ServiceType, StandardCost

    install_role_groups(Group)
    install_catalogue(ServiceType, StandardCost)


@pytest.fixture(autouse=True)
def _english_after_each_test():
    """A request in German leaves German active in the test's thread (LocaleMiddleware does not
    reset it); the next test starts in the project's language."""
    yield
    from django.conf import settings
    from django.utils import translation

    translation.activate(settings.LANGUAGE_CODE)


def require_service(available: bool, what: str) -> None:
    """In CI a missing service fails the test; on a laptop it skips with the reason."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"{what} is required in CI but was not found")
    pytest.skip(f"{what} not available")


def make_user(role: Role | None, **kwargs):
    user = UserFactory(**kwargs)
    if role is not None:
        user.groups.add(Group.objects.get(name=role.value))
    return user


@pytest.fixture
def manager(db):
    return make_user(Role.MANAGER, username="boss", is_staff=True)


@pytest.fixture
def inside_sales(db):
    return make_user(Role.INSIDE_SALES, username="inside1")


@pytest.fixture
def rep(db):
    return make_user(Role.SALES_REP, username="rep_a")


@pytest.fixture
def other_rep(db):
    return make_user(Role.SALES_REP, username="rep_b")


# What the API's rate limits cost each request with the database cache: the wrong-key check by
# address and the token's counter (get, count, savepoint, select, update).
RATE_LIMIT_QUERIES = 6
