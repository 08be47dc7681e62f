"""Planner settings for one query: in effect inside, back to the defaults afterwards."""

import pytest
from django.db import connection

from core.planner import planner_settings

pytestmark = [pytest.mark.django_db, pytest.mark.services]


def _setting(name: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SHOW {name}")
        return cursor.fetchone()[0]


@pytest.fixture
def postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: elsewhere planner_settings does nothing")


def test_settings_hold_inside_and_are_back_to_their_defaults_after(postgresql):
    """Inside the test's transaction, where a SET LOCAL would otherwise hold to its end."""
    before = _setting("work_mem"), _setting("enable_sort")
    with planner_settings(work_mem="'64MB'", enable_sort="off"):
        assert (_setting("work_mem"), _setting("enable_sort")) == ("64MB", "off")
    assert (_setting("work_mem"), _setting("enable_sort")) == before


def test_an_error_inside_rolls_the_settings_back_with_it(postgresql):
    before, seen = _setting("enable_sort"), []

    def failing_query():
        with planner_settings(enable_sort="off"):
            seen.append(_setting("enable_sort"))
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        failing_query()
    assert seen == ["off"] and _setting("enable_sort") == before


def test_a_setting_that_is_not_a_plain_value_is_refused(postgresql):
    with pytest.raises(ValueError, match="unexpected planner setting"), planner_settings(work_mem="1; DROP TABLE x"):
        pass


def test_a_callers_own_settings_are_put_back_not_the_servers_defaults(postgresql):
    """Inside a caller that set its own value for the transaction (or an outer
    planner_settings), the inner query's settings end with the caller's value again."""
    default = _setting("work_mem")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL work_mem = '32MB'")
    with planner_settings(work_mem="'64MB'"):
        assert _setting("work_mem") == "64MB"
    assert _setting("work_mem") == "32MB" != default
    with planner_settings(enable_sort="off"):
        with planner_settings(enable_sort="off", jit="off"):
            pass
        assert _setting("enable_sort") == "off"
