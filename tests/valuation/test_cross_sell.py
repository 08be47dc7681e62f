"""Cross-sell hints on a hand-made company where the answer is known."""

import datetime as dt
import itertools
from decimal import Decimal

import pandas as pd
import pytest

from customers.models import Customer, Transaction
from tests.cockpit.factories import CustomerValueFactory, ValuationRunFactory
from valuation import run_summary
from valuation.cross_sell import cross_sell_hints, rebuild_peer_categories
from valuation.models import PeerCategory

pytestmark = pytest.mark.django_db
AS_OF = dt.date(2026, 6, 30)


EXTERNAL_IDS = itertools.count(1)


def buy(customer, product, margin, days_ago=30):
    Transaction.objects.create(customer=customer, external_id=f"T{next(EXTERNAL_IDS)}", date=AS_OF - dt.timedelta(days=days_ago),
                               revenue=Decimal(margin) * 2, cost_of_goods=Decimal(margin), product=product)


def test_hints_name_what_peers_buy_and_this_customer_does_not():
    run = ValuationRunFactory(as_of=AS_OF, settings={"window_months": 12})
    peers = [Customer.objects.create(number=f"P{i}", name=f"Peer {i}", industry="Packaging") for i in range(8)]
    target = Customer.objects.create(number="T", name="Target", industry="Packaging")
    elsewhere = [Customer.objects.create(number=f"X{i}", name=f"Other {i}", industry="Food") for i in range(6)]
    for customer in [*peers, target, *elsewhere]:
        CustomerValueFactory(run=run, customer=customer, abc_class="B")
    big = Customer.objects.create(number="A1", name="Big", industry="Packaging")
    CustomerValueFactory(run=run, customer=big, abc_class="A")
    for i, peer in enumerate(peers):
        buy(peer, "Seal kit", 100)                 # all 8 peers: the target buys it too
        if i < 6:
            buy(peer, "Maintenance contract", 400)   # 6 of 8 peers
        if i < 3:
            buy(peer, "Gearbox", 900)               # 3 of 8 (37.5 %)
        if i < 1:
            buy(peer, "Laser cutting system", 5000)  # 1 of 8: below the 25 % line
    buy(peers[0], "Maintenance contract", 400, days_ago=60)  # a second purchase: 800 for that peer
    buy(peers[7], "Grinding wheels", 50, days_ago=500)       # outside the window: not counted
    buy(target, "Seal kit", 80)
    buy(target, "Gearbox", 10, days_ago=900)                 # bought long ago: never a hint
    for other in elsewhere:
        buy(other, "Hydraulic oil 20 l", 70)                 # another industry
    buy(big, "Industrial robot cell", 9000)                  # another size class

    assert rebuild_peer_categories() > 0
    value = target.values.get(run=run)
    hints = cross_sell_hints(customer=target, value=value)
    assert [hint.category for hint in hints] == ["Maintenance contract"]
    hint = hints[0]
    assert (hint.buyers, hint.peers) == (6, 9)  # 9 valued customers of that industry and class
    assert hint.margin_per_buyer == Decimal("466.67")  # (7 x 400) / 6 buyers
    # A peer who bought nothing of it gets the gearbox too, never what it already buys.
    peer_hints = [h.category for h in cross_sell_hints(customer=peers[7], value=peers[7].values.get(run=run))]
    assert peer_hints == ["Maintenance contract", "Gearbox"]
    assert "Seal kit" not in peer_hints


def test_peers_counted_from_the_runs_rows_equal_the_stored_count():
    """The finish counts the peers from the rows the summary read: the same categories."""
    run = ValuationRunFactory(as_of=AS_OF, settings={"window_months": 12})
    for i in range(12):
        customer = Customer.objects.create(number=f"C{i}", name=f"C {i}", industry=["Steel", "Food", ""][i % 3])
        CustomerValueFactory(run=run, customer=customer, abc_class="ABC"[i % 2])
        buy(customer, ["Seal kit", "Gearbox"][i % 2], 10 * (i + 1))
    fields = ("industry", "abc_class", "category", "buyers", "peers", "margin_per_buyer")
    assert rebuild_peer_categories() > 0
    stored = sorted(PeerCategory.objects.values_list(*fields))
    rows = run_summary.summary_rows(run=run)
    assert rebuild_peer_categories(run_id=run.pk, peers=run_summary.peer_counts(rows)) == len(stored)
    assert sorted(PeerCategory.objects.values_list(*fields)) == stored
    assert {peers for *_k, peers, _m in stored} == {2}  # 4 customers per industry, 2 per class


def test_the_sums_follow_the_classes_given_in_place_of_the_runs_rows():
    """An in-process run reads the peers' sums before its rows are written, from the classes it
    scored: the same sums as from the written rows, and grouped by the classes given."""
    from valuation.cross_sell import peer_category_sums
    from valuation.models import CustomerValue

    run = ValuationRunFactory(as_of=AS_OF, settings={"window_months": 12})
    for i in range(12):
        customer = Customer.objects.create(number=f"C{i}", name=f"C {i}", industry=["Steel", "Food"][i % 2])
        CustomerValueFactory(run=run, customer=customer, abc_class="AB"[i % 3 == 0])
        buy(customer, ["Seal kit", "Gearbox"][i % 4 < 2], 10 * (i + 1))
    written = sorted(peer_category_sums(run_id=run.pk, as_of=AS_OF, window_months=12))
    classes = pd.Series(dict(CustomerValue.objects.filter(run=run).values_list("customer_id", "abc_class")))
    assert sorted(peer_category_sums(run_id=run.pk, as_of=AS_OF, window_months=12, classes=classes)) == written
    assert {abc for _i, abc, *_rest in written} == {"A", "B"}

    everyone_c = peer_category_sums(run_id=run.pk, as_of=AS_OF, window_months=12, classes=classes.map(lambda _: "C"))
    assert {abc for _i, abc, *_rest in everyone_c} == {"C"}
    assert sum(buyers for *_k, buyers, _m in everyone_c) == 12
    assert sum(margin for *_k, margin in everyone_c) == sum(margin for *_k, margin in written) == 78_000  # cents


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_the_nightly_run_stores_the_peers_a_fresh_count_finds():
    """The finish reads the peers' sums on a connection of its own (PostgreSQL) while it writes
    the summary; what it stores equals counting them afresh from the run's rows."""
    from tests.valued_company import AS_OF as RUN_AS_OF
    from valuation import services

    customers = _buying_company(buyers=60, seed=5)
    Customer.objects.filter(pk__in=[c.pk for c in customers[::2]]).update(industry="Food")
    run = services.run_valuation(as_of=RUN_AS_OF)
    fields = ("industry", "abc_class", "category", "buyers", "peers", "margin_per_buyer")
    stored = sorted(PeerCategory.objects.filter(run=run).values_list(*fields))
    assert {category for _i, _a, category, *_rest in stored} == {"Seal kit", "Gearbox"}
    assert {industry for industry, *_rest in stored} == {"Steel", "Food"}

    assert rebuild_peer_categories() == len(stored)
    assert sorted(PeerCategory.objects.filter(run=run).values_list(*fields)) == stored


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_the_run_stores_its_peers_when_no_second_connection_is_to_be_had(monkeypatch):
    """The peers' sums are read on a connection of their own: when the server refuses one
    (too many clients), they are read on the run's own connection, not left out."""
    import threading

    from django.db import OperationalError, connection

    from tests.valued_company import AS_OF as RUN_AS_OF
    from tests.valued_company import simulated_company
    from valuation import cross_sell, services

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: SQLite reads everything on the run's connection")
    simulated_company(buyers=40, seed=5, service_every_days=30, service_offset_days=5, industry="Steel")
    Transaction.objects.update(product="Seal kit")
    sums = cross_sell.peer_category_sums
    refused = []

    def on_the_main_connection_only(**kwargs):
        if threading.current_thread() is not threading.main_thread():
            refused.append(True)
            raise OperationalError("sorry, too many clients already")
        return sums(**kwargs)

    monkeypatch.setattr(cross_sell, "peer_category_sums", on_the_main_connection_only)
    run = services.run_valuation(as_of=RUN_AS_OF)
    assert run.status == "completed" and refused
    assert PeerCategory.objects.filter(run=run, category="Seal kit").exists()


def test_only_the_latest_run_keeps_peer_categories_a_back_fill_changes_nothing():
    """A back-filled run (an earlier date) neither stores peer categories nor drops the latest
    run's; those equal counting afresh from the latest run's rows."""
    from tests.valued_company import AS_OF as RUN_AS_OF
    from valuation import services

    _buying_company(buyers=30, seed=7)
    latest = services.run_valuation(as_of=RUN_AS_OF)
    fields = ("industry", "abc_class", "category", "buyers", "peers", "margin_per_buyer")
    stored = sorted(PeerCategory.objects.filter(run=latest).values_list(*fields))
    assert {category for _i, _a, category, *_rest in stored} == {"Seal kit", "Gearbox"}
    back_fill = services.run_valuation(as_of=RUN_AS_OF - dt.timedelta(days=60))
    assert back_fill.status == "completed"
    assert not PeerCategory.objects.filter(run=back_fill).exists()
    assert sorted(PeerCategory.objects.filter(run=latest).values_list(*fields)) == stored
    assert rebuild_peer_categories() == len(stored)
    assert sorted(PeerCategory.objects.filter(run=latest).values_list(*fields)) == stored


def _buying_company(*, buyers: int, seed: int) -> list[Customer]:
    """A simulated company of one industry whose customers bought seal kits, every third a gearbox."""
    from tests.valued_company import simulated_company

    customers = simulated_company(buyers=buyers, seed=seed, service_every_days=30, service_offset_days=5,
                                  industry="Steel")
    Transaction.objects.update(product="Seal kit")
    Transaction.objects.filter(customer__in=customers[::3]).update(product="Gearbox")
    return customers
