"""Cross-sell hints on a hand-made company where the answer is known."""

import datetime as dt
import itertools
from decimal import Decimal

import pytest

from customers.models import Customer, Transaction
from tests.cockpit.factories import CustomerValueFactory, ValuationRunFactory
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


def test_peers_counted_from_classes_not_yet_written_equal_the_count_from_the_rows():
    """The nightly run counts the peers from the classes it holds in memory, before its rows are
    written (peer_figures): the same categories as counting them from the written rows."""
    import pandas as pd

    from valuation.cross_sell import PeerFigures, peer_figures, store_peer_categories

    run = ValuationRunFactory(as_of=AS_OF, settings={"window_months": 12})
    customers = []
    for i in range(12):
        customers.append(Customer.objects.create(number=f"C{i}", name=f"C {i}", industry=["Steel", "Food", ""][i % 3]))
        CustomerValueFactory(run=run, customer=customers[-1], abc_class="ABC"[i % 2])
        buy(customers[-1], ["Seal kit", "Gearbox"][i % 2], 10 * (i + 1))
    buy(customers[0], "Gearbox", 5, days_ago=400)  # before the window
    fields = ("industry", "abc_class", "category", "buyers", "peers", "margin_per_buyer")
    assert rebuild_peer_categories() > 0
    stored = sorted(PeerCategory.objects.values_list(*fields))
    assert {peers for *_k, peers, _m in stored} == {2}  # 4 customers per industry, 2 per class
    classes = pd.Series(dict(run.values.values_list("customer_id", "abc_class")))
    figures = peer_figures(classes=classes, as_of=AS_OF, window_months=12)
    assert isinstance(figures, PeerFigures)
    store_peer_categories(run_id=run.pk, figures=figures)
    assert sorted(PeerCategory.objects.values_list(*fields)) == stored
    # A longer window counts the older purchase too.
    longer = peer_figures(classes=classes, as_of=AS_OF, window_months=24).sums
    assert sorted(set(longer) - set(figures.sums)) == [("Steel", "A", "Gearbox", 1, 5)]


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_the_nightly_run_stores_the_peers_a_fresh_count_finds(monkeypatch):
    """The run counts the peers' figures while it fits and scores (on a connection of its own on
    PostgreSQL), from the ABC classes the window margins give; what it stores equals counting
    them afresh from the run's written rows."""
    from tests.valued_company import AS_OF as RUN_AS_OF
    from tests.valued_company import simulated_company
    from valuation import cross_sell, services

    sums = cross_sell.peer_category_sums

    customers = simulated_company(buyers=60, seed=5, service_every_days=30, service_offset_days=5, industry="Steel")
    Customer.objects.filter(pk__in=[c.pk for c in customers[::2]]).update(industry="Food")
    Transaction.objects.update(product="Seal kit")
    Transaction.objects.filter(customer__in=customers[::3]).update(product="Gearbox")
    finish_reads = []
    monkeypatch.setattr(cross_sell, "peer_category_sums",
                        lambda **kwargs: finish_reads.append(kwargs) or sums(**kwargs))
    run = services.run_valuation(as_of=RUN_AS_OF)
    assert finish_reads == []  # counted while the run was prepared: the finish reads no transactions
    monkeypatch.undo()
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
    figures = cross_sell.peer_figures
    refused = []

    def on_the_main_connection_only(**kwargs):
        if threading.current_thread() is not threading.main_thread():
            refused.append(True)
            raise OperationalError("sorry, too many clients already")
        return figures(**kwargs)

    monkeypatch.setattr(cross_sell, "peer_figures", on_the_main_connection_only)
    run = services.run_valuation(as_of=RUN_AS_OF)
    assert run.status == "completed" and refused
    assert PeerCategory.objects.filter(run=run, category="Seal kit").exists()


def _company_with_peers():
    from tests.valued_company import simulated_company

    customers = simulated_company(buyers=30, seed=7, service_every_days=30, service_offset_days=5, industry="Steel")
    Transaction.objects.update(product="Seal kit")
    Transaction.objects.filter(customer__in=customers[::3]).update(product="Gearbox")
    return customers


def test_only_the_latest_run_keeps_peer_categories_a_back_fill_keeps_none():
    """Each run counts its peers while it is prepared; when it completes, the latest run's stay
    and a back-filled run (an earlier date) drops its own."""
    from tests.valued_company import AS_OF as RUN_AS_OF
    from valuation import services

    _company_with_peers()
    latest = services.run_valuation(as_of=RUN_AS_OF)
    fields = ("industry", "abc_class", "category", "buyers", "peers", "margin_per_buyer")
    stored = sorted(PeerCategory.objects.filter(run=latest).values_list(*fields))
    assert {category for _i, _a, category, *_rest in stored} == {"Seal kit", "Gearbox"}
    back_fill = services.run_valuation(as_of=RUN_AS_OF - dt.timedelta(days=60))
    assert back_fill.status == "completed"
    assert not PeerCategory.objects.filter(run=back_fill).exists()
    assert sorted(PeerCategory.objects.filter(run=latest).values_list(*fields)) == stored
    # What the run stored equals counting afresh from its written rows.
    assert rebuild_peer_categories() == len(stored)
    assert sorted(PeerCategory.objects.filter(run=latest).values_list(*fields)) == stored


def test_a_run_that_fails_keeps_no_peer_categories(monkeypatch):
    from tests.valued_company import AS_OF as RUN_AS_OF
    from valuation import run_summary, services

    _company_with_peers()

    def broken(**kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(run_summary, "write_run_summary", broken)
    with pytest.raises(RuntimeError):
        services.run_valuation(as_of=RUN_AS_OF)
    assert not PeerCategory.objects.exists()
