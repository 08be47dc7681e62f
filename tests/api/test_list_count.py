"""The lists' `count`: exact and fresh for short lists, kept briefly in the shared cache for long
ones (counting a million value rows on every page cost more than the page itself)."""

import datetime as dt
import time
from unittest import mock

import pytest
from django.core.cache import cache

from tests.factories import CustomerFactory

from .conftest import completed_run, value_row


def listed(client, url: str) -> dict:
    response = client.get(url)
    assert response.status_code == 200
    return response.json()


@pytest.mark.django_db
def test_short_lists_are_counted_exactly_on_every_request(clients, world, rep, settings):
    settings.CVM_API_EXACT_COUNT_UP_TO = 10
    assert listed(clients["rep"], "/api/v1/customers/")["count"] == 2
    CustomerFactory(owner=rep)
    assert listed(clients["rep"], "/api/v1/customers/")["count"] == 3
    assert listed(clients["manager"], "/api/v1/customers/")["count"] == 5


@pytest.mark.django_db
def test_a_long_list_keeps_its_count_for_a_while_and_pages_by_it(clients, world, rep, settings):
    settings.CVM_API_EXACT_COUNT_UP_TO = 3
    first = listed(clients["manager"], "/api/v1/customers/?page_size=2")
    assert first["count"] == 4
    assert first["next"].endswith("page=2&page_size=2")

    CustomerFactory(owner=rep, name="Zz added later")
    again = listed(clients["manager"], "/api/v1/customers/?page_size=2")
    assert again["count"] == 4  # counted a moment ago: the shared cache answers
    last = listed(clients["manager"], "/api/v1/customers/?page=2&page_size=2")
    assert last["next"] is None and len(last["results"]) == 2
    # Filtered and short: exact at once, beside the long list's kept count.
    assert listed(clients["manager"], "/api/v1/customers/?owner=rep_a")["count"] == 3

    cache.clear()  # what the cache's timeout does after CVM_API_COUNT_CACHE_SECONDS
    assert listed(clients["manager"], "/api/v1/customers/?page_size=2")["count"] == 5


@pytest.mark.django_db
def test_the_latest_values_list_counts_the_latest_run_only(clients, world, settings):
    settings.CVM_API_EXACT_COUNT_UP_TO = 2
    assert listed(clients["manager"], "/api/v1/values/")["count"] == 4
    newer = completed_run(dt.date(2025, 3, 31))
    for customer in [*world["mine"], world["theirs"][0]]:
        value_row(newer, customer)
    # Another run is another query: its count is not the kept one of the run before.
    body = listed(clients["manager"], "/api/v1/values/")
    assert body["count"] == 3
    assert {row["run"] for row in body["results"]} == {newer.pk}
    assert all(row["as_of"] == "2025-03-31" for row in body["results"])


@pytest.mark.django_db
def test_an_old_count_is_counted_again_by_one_request_while_the_others_keep_it(clients, world, rep, settings):
    settings.CVM_API_EXACT_COUNT_UP_TO = 3
    settings.CVM_API_COUNT_CACHE_SECONDS = 60
    assert listed(clients["manager"], "/api/v1/customers/?page_size=2")["count"] == 4
    CustomerFactory(owner=rep)
    later = time.time() + 61
    with mock.patch("core.api.time.time", return_value=later), mock.patch("core.api.cache.add", return_value=False):
        # Another request holds the recount: this one answers with the kept count.
        assert listed(clients["manager"], "/api/v1/customers/?page_size=2")["count"] == 4
    with mock.patch("core.api.time.time", return_value=later):
        assert listed(clients["manager"], "/api/v1/customers/?page_size=2")["count"] == 5
    CustomerFactory(owner=rep)
    with mock.patch("core.api.time.time", return_value=later + 30):
        assert listed(clients["manager"], "/api/v1/customers/?page_size=2")["count"] == 5  # fresh again
    with mock.patch("core.api.time.time", return_value=later + 61):
        assert listed(clients["manager"], "/api/v1/customers/?page_size=2")["count"] == 6
