"""Deny by default: walk every URL pattern as an anonymous user, as a user without a role and
as each role. Anonymous users reach nothing but the login; a login without a role reaches
nothing but the start page; nobody ever gets a server error."""

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from tests.conftest import make_user
from tests.factories import CustomerFactory, ServiceEventFactory, UserFactory

pytestmark = pytest.mark.django_db

# Reachable without logging in, on purpose.
# The password-reset pages serve users who cannot log in.
PASSWORD_RESET = {"account/password-reset/", "account/password-reset/sent/", "account/password-reset/done/"}
# The reset link's page (uid and token in the path, filled here with the sample id).
RESET_LINK = re.compile(r"^account/password-reset/\d+/\d+/$")
PUBLIC = {"login/", "logout/", "i18n/setlang/", "admin/login/", "admin/logout/", *PASSWORD_RESET}
# Reachable for a logged-in user without any role: the start page tells them to ask a manager.
# ... and their own password and API tokens (which reach nothing without a role).
ROLELESS_OK = {"", "logout/", "i18n/setlang/", "login/", "admin/login/", "admin/logout/", *PASSWORD_RESET,
               "account/password/", "account/password/done/", "account/tokens/"}
GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")


def reachable_without_login(path: str) -> bool:
    return path in PUBLIC or bool(RESET_LINK.match(path))


def concrete(route: str, sample_id: int) -> str | None:
    """A requestable path for a route, with every parameter filled by a sample value."""
    if "format" in route:
        return None  # DRF's .json/.api suffix variants of routes already covered
    route = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: "de" if "lang" in m.group(1) else str(sample_id), route)
    route = GROUP.sub(str(sample_id), route)
    route = route.replace("^", "").replace("$", "").replace("\\", "").replace("/?", "/")
    if any(ch in route for ch in "()[]*+?|"):
        return None
    return route


def all_routes() -> list[str]:
    routes = []

    def walk(patterns, prefix):
        for p in patterns:
            if isinstance(p, URLResolver):
                walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern):
                routes.append(prefix + str(p.pattern))

    walk(get_resolver().url_patterns, "")
    return sorted(set(routes))


def requestable(sample_id: int) -> list[str]:
    paths = {concrete(route, sample_id) for route in all_routes()}
    return sorted(p for p in paths if p is not None and not p.startswith("admin/"))


@pytest.fixture
def data(rep):
    customer = CustomerFactory(owner=rep)
    ServiceEventFactory(customer=customer, logged_by=rep)
    return customer


def test_the_walk_covers_the_application(data):
    paths = requestable(data.pk)
    assert len(paths) >= 20
    assert any(p.startswith("api/") for p in paths)
    assert any(p.startswith("customers/") for p in paths)


def test_anonymous_users_reach_nothing_but_the_login(client, data):
    for path in requestable(data.pk):
        if reachable_without_login(path):
            continue
        response = client.get("/" + path)
        if path.startswith("api/"):
            assert response.status_code in (401, 403), path
        else:
            assert response.status_code == 302 and "/login/" in response["Location"], (path, response.status_code)


def test_a_login_without_a_role_sees_nothing(client, data):
    client.force_login(UserFactory(username="nobody"))
    for path in requestable(data.pk):
        if path in ROLELESS_OK or reachable_without_login(path):
            continue
        response = client.get("/" + path)
        assert response.status_code in (302, 401, 403, 404, 405), (path, response.status_code)
        if response.status_code == 302:
            assert "/login/" in response["Location"], path


@pytest.mark.parametrize("role_fixture", ["rep", "other_rep", "inside_sales", "manager"])
def test_no_page_answers_with_a_server_error(client, data, role_fixture, request):
    client.force_login(request.getfixturevalue(role_fixture))
    client.raise_request_exception = False
    for path in requestable(data.pk):
        response = client.get("/" + path)
        assert response.status_code < 500, (path, response.status_code)


def test_admin_is_for_managers_only(client, manager):
    staff_rep = make_user(None, username="staffrep", is_staff=True)
    client.force_login(staff_rep)
    assert client.get("/admin/").status_code == 302
    client.force_login(manager)
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/services/standardcost/").status_code == 200
