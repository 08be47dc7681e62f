"""Worklists: reasons found per run, role rules, done and snoozed items, constant queries."""

import datetime as dt

import pandas as pd
import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from cockpit import worklist
from customers.models import Customer
from customers.roles import Role
from tests.conftest import RATE_LIMIT_QUERIES, make_user
from valuation.models import CustomerValue, ValuationRun, WorkItem, WorkItemDismissal
from valuation.worklist import find_work_items, rebuild_work_items

AS_OF = dt.date(2026, 6, 30)
THRESHOLDS = {"abc_a_min_margin": 5000.0, "abc_b_min_margin": 1000.0, "classic_threshold": 2000.0,
              "value_to_threshold": 300.0}
COLUMNS = ["segment", "clv", "p_alive", "value_to_customer", "margin_window", "margin_lifetime",
           "profit_after_services"]


def frame(rows: dict) -> pd.DataFrame:
    return pd.DataFrame.from_dict(rows, orient="index", columns=COLUMNS).rename_axis("customer_id")


def test_each_reason_on_a_hand_made_company():
    previous = frame({
        1: ["investment", 9000.0, 0.8, 500.0, 4000.0, 20000.0, 3500.0],   # P(alive) falls below 0.5
        2: ["uncritical", 500.0, 0.9, 400.0, 300.0, 900.0, -100.0],       # now problem group
        3: ["potential", 6000.0, 0.9, 100.0, 3000.0, 9000.0, 2900.0],     # moves down to uncritical
        4: ["uncritical", 800.0, 0.9, 50.0, 500.0, 1000.0, 450.0],        # moves up to potential
        5: ["investment", 7000.0, 0.9, 400.0, 3000.0, 9000.0, 2600.0],    # services rise 400 -> 900
        6: ["potential", 5000.0, 0.7, 0.0, 2500.0, 30000.0, 2500.0],      # lost in May
        7: ["investment", 8000.0, 0.9, 600.0, 3000.0, 9000.0, 2400.0],    # detractor
        8: ["uncritical", 100.0, 0.3, 0.0, 50.0, 100.0, 50.0],            # nothing to do
    })
    latest = frame({
        1: ["investment", 5000.0, 0.4, 500.0, 3000.0, 20500.0, 2500.0],
        2: ["problem", 400.0, 0.9, 800.0, 300.0, 1200.0, -500.0],
        3: ["uncritical", 1500.0, 0.8, 100.0, 1000.0, 9500.0, 900.0],
        4: ["potential", 2500.0, 0.9, 50.0, 1200.0, 1700.0, 1150.0],
        5: ["investment", 7100.0, 0.9, 900.0, 3000.0, 9500.0, 2100.0],
        6: ["potential", 4000.0, 0.6, 0.0, 2500.0, 30000.0, 2500.0],
        7: ["investment", 8000.0, 0.9, 600.0, 3000.0, 9500.0, 2400.0],
        8: ["uncritical", 100.0, 0.25, 0.0, 50.0, 100.0, 50.0],
    })
    customers = pd.DataFrame({"status": ["active"] * 8, "lost_on": [None] * 8}, index=range(1, 9))
    customers.loc[6, ["status", "lost_on"]] = ["lost", dt.date(2026, 5, 15)]
    items = find_work_items(latest, previous, customers=customers, thresholds=THRESHOLDS, as_of=AS_OF,
                            detractors=pd.Series({7: 3.0, 8: 2.0}))
    found = {(row.customer_id, row.reason): row.amount for row in items.itertuples()}
    assert found == {
        (1, "win_back"): 9000.0,
        (2, "renegotiate"): 800.0,
        (2, "service_spend"): 400.0,  # 400 -> 800, also a problem-group customer
        (3, "segment_down"): 4500.0,
        (4, "segment_up"): 1700.0,
        (5, "service_spend"): 500.0,
        (6, "lost_valuable"): 30000.0,
        (7, "detractor"): 8000.0,
    }


@pytest.mark.django_db
def test_rep_sees_own_items_done_and_snoozed_stay_hidden_until_something_changes(two_runs):
    rep, other, inside, manager = (make_user(Role.SALES_REP), make_user(Role.SALES_REP),
                                   make_user(Role.INSIDE_SALES), make_user(Role.MANAGER))
    ids = list(Customer.objects.order_by("pk").values_list("pk", flat=True))
    Customer.objects.filter(pk__in=ids[::2]).update(owner=rep)
    Customer.objects.filter(pk__in=ids[1::2]).update(owner=other)
    assert rebuild_work_items() > 0
    mine = worklist.worklist(user=rep, limit=500)
    assert mine and all(entry.item.customer.owner_id == rep.pk for entry in mine)
    amounts = [entry.item.amount for entry in mine]
    assert amounts == sorted(amounts, reverse=True)
    assert all(entry.line for entry in mine)
    assert {e.reason for e in worklist.worklist(user=inside, limit=500)} <= {"renegotiate", "service_spend"}
    assert len(worklist.worklist(user=manager, limit=1000)) == WorkItem.objects.count()

    first, second = mine[0].item, mine[1].item
    worklist.dismiss(user=rep, item=first)
    worklist.dismiss(user=rep, item=second, snooze_days=14)
    shown = {(e.item.customer_id, e.reason) for e in worklist.worklist(user=rep, limit=500)}
    assert (first.customer_id, first.reason) not in shown and (second.customer_id, second.reason) not in shown
    # Still hidden after the next rebuild with the same situation...
    rebuild_work_items()
    shown = {(e.item.customer_id, e.reason) for e in worklist.worklist(user=rep, limit=500)}
    assert (first.customer_id, first.reason) not in shown
    # ...back when the situation changes, and after the snooze.
    WorkItem.objects.filter(customer_id=first.customer_id, reason=first.reason).update(fingerprint="changed")
    later = dt.date.today() + dt.timedelta(days=15)
    shown = {(e.item.customer_id, e.reason) for e in worklist.worklist(user=rep, limit=500, today=later)}
    assert (first.customer_id, first.reason) in shown and (second.customer_id, second.reason) in shown
    assert WorkItemDismissal.objects.count() == 2


# Home page and worklist API per role, beyond the API's rate-limit queries; the same with one
# work item as with the whole company's.
HOME_QUERIES = {Role.SALES_REP: 5, Role.MANAGER: 5, Role.INSIDE_SALES: 7}
WORKLIST_API_QUERIES = 5
VALUE_CHANGE_API_QUERIES = 7


def home_and_worklist_counts(users) -> dict:
    counts = {}
    for role, user in users.items():
        client = Client()
        client.force_login(user)
        with CaptureQueriesContext(connection) as home:
            assert client.get("/").status_code == 200
        with CaptureQueriesContext(connection) as api:
            assert client.get("/api/v1/worklist/").status_code == 200
        counts[role] = (len(home), len(api) - RATE_LIMIT_QUERIES)
    return counts


@pytest.mark.django_db
def test_home_pages_and_api_keep_constant_queries(two_runs, django_assert_num_queries):
    rep, manager, inside = make_user(Role.SALES_REP), make_user(Role.MANAGER), make_user(Role.INSIDE_SALES)
    users = {Role.SALES_REP: rep, Role.MANAGER: manager, Role.INSIDE_SALES: inside}
    Customer.objects.update(owner=rep)
    rebuild_work_items()
    many = home_and_worklist_counts(users)
    assert WorkItem.objects.count() > 1
    WorkItem.objects.exclude(pk=WorkItem.objects.order_by("pk").first().pk).delete()
    one = home_and_worklist_counts(users)
    expected = {role: (HOME_QUERIES[role], WORKLIST_API_QUERIES) for role in users}
    assert (many, one) == (expected, expected)
    client = Client()
    client.force_login(rep)
    customer = Customer.objects.first()
    with django_assert_num_queries(VALUE_CHANGE_API_QUERIES + RATE_LIMIT_QUERIES):
        data = client.get(f"/api/v1/customers/{customer.pk}/value-change/").json()
    assert sum(float(d["amount"]) for d in data["drivers"]) == pytest.approx(
        float(data["current_clv"]) - float(data["previous_clv"]), abs=1e-9)
    inside_client = Client()
    inside_client.force_login(inside)
    assert inside_client.get(f"/api/v1/customers/{customer.pk}/value-change/").status_code == 403
    other = make_user(Role.SALES_REP)
    other_client = Client()
    other_client.force_login(other)
    assert other_client.get(f"/api/v1/customers/{customer.pk}/value-change/").status_code == 404
    assert other_client.get("/api/v1/worklist/").json()["items"] == []


@pytest.mark.django_db
def test_done_button_hides_the_item(two_runs):
    rep = make_user(Role.SALES_REP)
    Customer.objects.update(owner=rep)
    rebuild_work_items()
    client = Client()
    client.force_login(rep)
    item = worklist.worklist(user=rep)[0].item
    assert client.post(f"/worklist/{item.pk}/dismiss/", {"action": "done"}).status_code == 302
    assert f"/worklist/{item.pk}/dismiss/" not in client.get("/").content.decode()
    stranger = make_user(Role.SALES_REP)
    client.force_login(stranger)
    assert client.post(f"/worklist/{item.pk}/dismiss/", {"action": "done"}).status_code == 404


@pytest.mark.django_db
def test_no_home_page_reads_the_transactions(two_runs):
    """The start page of every role comes from the run's stored results: it never counts or
    sums the transactions, which at a million customers are tens of millions of rows."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from customers.models import Transaction

    rep = make_user(Role.SALES_REP)
    Customer.objects.update(owner=rep)
    rebuild_work_items()
    superuser = make_user(None, username="root", is_superuser=True)
    for user in (rep, make_user(Role.MANAGER), make_user(Role.INSIDE_SALES), make_user(None), superuser):
        client = Client()
        client.force_login(user)
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/").status_code == 200
        assert not [q["sql"] for q in captured if Transaction._meta.db_table in q["sql"]], user.username


def test_inside_sales_list_has_its_own_index():
    """The partial index serves inside sales' list only if its condition names the same reasons."""
    from valuation.models import WorkItem
    from valuation.worklist import SERVICE_REASONS

    index = next(i for i in WorkItem._meta.indexes if i.name == "work_item_service_amount_idx")
    assert set(dict(index.condition.children)["reason__in"]) == {str(reason) for reason in SERVICE_REASONS}


@pytest.mark.django_db
def test_the_finish_finds_the_same_items_from_the_rows_it_read_as_from_the_database(two_runs):
    """The run's finish gives the worklist the value rows the summary read (money in cents):
    the items equal those found from the stored values and customers."""
    fields = ("customer_id", "reason", "amount", "before", "after", "fingerprint")
    from_finish = sorted(WorkItem.objects.values_list(*fields))
    assert from_finish and any(reason == "lost_valuable" for _c, reason, *_ in from_finish)
    rebuild_work_items()
    assert sorted(WorkItem.objects.values_list(*fields)) == from_finish


@pytest.mark.services
@pytest.mark.django_db
def test_the_values_read_by_copy_equal_those_read_row_by_row(two_runs, monkeypatch):
    """PostgreSQL reads a run's values for the worklist as CSV through COPY: the same frame, to
    the last bit of every float, as the rows through the driver (the path other databases take)."""
    from valuation import worklist as valuation_worklist

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: other databases take the ORM path on both sides")

    for run in two_runs:
        read = valuation_worklist._values(run).sort_index()
        with monkeypatch.context() as patched:
            patched.setattr(connection, "vendor", "other")
            by_rows = valuation_worklist._values(run).sort_index()
        assert len(read) == len(by_rows) > 0 and read["p_alive"].isna().sum() == by_rows["p_alive"].isna().sum()
        pd.testing.assert_frame_equal(read, by_rows, check_exact=True)


@pytest.mark.services
@pytest.mark.django_db
def test_a_rebuild_replaces_the_latest_runs_partition_whole(two_runs):
    """PostgreSQL keeps each run's items as a partition of their own: a rebuild loads a fresh
    one and drops the earlier whole (items written through the ORM, in the default partition,
    go too). The items are the same, one per customer and reason, and no loading table is left."""
    from django.db import IntegrityError, transaction

    from valuation import history
    from valuation import worklist as valuation_worklist

    if not history.is_partitioned(valuation_worklist.PARENT):
        pytest.skip("PostgreSQL only: SQLite keeps the plain table")
    first, second = two_runs
    fields = ("run_id", "customer_id", "reason", "amount", "before", "after", "fingerprint")
    stored = sorted(WorkItem.objects.values_list(*fields))
    assert stored and {run_id for run_id, *_ in stored} == {second.pk}
    stray = WorkItem.objects.create(run=first, customer_id=stored[0][1], reason="renegotiate", amount=1,
                                    fingerprint="stray")

    def tables() -> dict[str, bool]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT c.relname, EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid) "
                           "FROM pg_class c WHERE c.relkind = 'r' AND c.relname LIKE 'valuation\\_workitem\\_%%'")
            return dict(cursor.fetchall())

    assert tables() == {"valuation_workitem_default": True, f"valuation_workitem_r{second.pk}": True}
    assert rebuild_work_items() == len(stored)
    assert sorted(WorkItem.objects.values_list(*fields)) == stored
    assert not WorkItem.objects.filter(pk=stray.pk).exists()
    assert tables() == {"valuation_workitem_default": True, f"valuation_workitem_r{second.pk}": True}
    with connection.cursor() as cursor:  # the parent's four and one on id; the unique one as its constraint
        cursor.execute("SELECT COUNT(*) FROM pg_indexes WHERE tablename = %s", [f"valuation_workitem_r{second.pk}"])
        assert cursor.fetchone()[0] == 5
        cursor.execute("SELECT COUNT(*) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'u'",
                       [f"valuation_workitem_r{second.pk}"])
        assert cursor.fetchone()[0] == 1
    with pytest.raises(IntegrityError), transaction.atomic():
        WorkItem.objects.create(run=second, customer_id=stored[0][1], reason=stored[0][2], amount=1, fingerprint="x")


@pytest.mark.services
@pytest.mark.django_db
def test_items_of_a_customer_deleted_before_the_attach_are_left_out(two_runs):
    """A customer deleted between finding the items and attaching them (its items are in the
    loaded table, which no delete reaches) must not fail the worklist's attach."""
    from valuation import history
    from valuation import worklist as valuation_worklist

    if not history.is_partitioned(valuation_worklist.PARENT):
        pytest.skip("PostgreSQL only: SQLite keeps the plain table")
    _first, second = two_runs
    items = pd.DataFrame.from_records(
        WorkItem.objects.values_list("customer_id", "reason", "amount", "before", "after", "fingerprint"),
        columns=["customer_id", "reason", "amount", "before", "after", "fingerprint"])
    gone = int(items["customer_id"].iloc[0])
    loaded = valuation_worklist._load_partition(second.pk, items)
    Customer.objects.filter(pk=gone).delete()
    valuation_worklist._replace_partitions(second.pk, loaded)
    kept = WorkItem.objects.filter(run=second)
    assert kept.count() == (items["customer_id"] != gone).sum() > 0
    assert not kept.filter(customer_id=gone).exists()


@pytest.mark.django_db
def test_values_read_ahead_are_used_only_for_the_run_compared_with(two_runs):
    """The nightly run reads the values its work items compare with while it scores
    (compared_values): used when they are the compared run's, ignored otherwise."""
    from valuation import worklist as valuation_worklist

    first, second = two_runs
    fields = ("customer_id", "reason", "amount", "before", "after", "fingerprint")
    stored = sorted(WorkItem.objects.values_list(*fields))
    compared = valuation_worklist.compared_values(second)
    assert compared[0] == first.pk
    assert rebuild_work_items(run_id=second.pk, previous_values=compared) == len(stored)
    assert sorted(WorkItem.objects.values_list(*fields)) == stored

    nobody_before = compared[1].iloc[:0]  # as if the compared run had valued no customer
    rebuild_work_items(run_id=second.pk, previous_values=(second.pk, nobody_before))  # not the compared run's
    assert sorted(WorkItem.objects.values_list(*fields)) == stored
    rebuild_work_items(run_id=second.pk, previous_values=(first.pk, nobody_before))
    assert not WorkItem.objects.filter(reason__in=["segment_down", "segment_up", "win_back"]).exists()
    assert {reason for _c, reason, *_ in stored} & {"segment_down", "segment_up", "win_back"}


@pytest.mark.django_db
def test_detractors_and_service_spend_read_ahead_are_used_only_for_the_latest_run(two_runs):
    """The nightly run reads the NPS detractors and the service spend of its as-of date while it
    scores: its work items use them; a rebuild for another run reads its own."""
    from valuation import worklist as valuation_worklist

    first, second = two_runs
    fields = ("customer_id", "reason", "amount", "before", "after", "fingerprint")
    stored = sorted(WorkItem.objects.values_list(*fields))
    spend = ValuationRun.objects.get(pk=second.pk).company["changes"]["service_spend"]
    valued = CustomerValue.objects.filter(run=second).values_list("customer_id", flat=True)
    everyone_unhappy = pd.Series(0.0, index=pd.Index(list(valued), dtype="int64"))
    marker = [{"code": "read-ahead", "current": "1.00", "previous": "0.00"}]

    rebuild_work_items(run_id=second.pk, detractors=everyone_unhappy, spend=marker)
    assert WorkItem.objects.filter(reason="detractor").count() > sum(1 for _c, reason, *_ in stored if reason == "detractor")
    assert ValuationRun.objects.get(pk=second.pk).company["changes"]["service_spend"] == marker

    rebuild_work_items(run_id=second.pk, detractors=valuation_worklist.latest_detractor_scores(as_of=second.as_of),
                       spend=valuation_worklist.service_spend_by_type(as_of=second.as_of))
    assert sorted(WorkItem.objects.values_list(*fields)) == stored
    rebuild_work_items(run_id=first.pk, detractors=everyone_unhappy, spend=marker)  # not the latest run: read again
    assert sorted(WorkItem.objects.values_list(*fields)) == stored
    assert ValuationRun.objects.get(pk=second.pk).company["changes"]["service_spend"] == spend


def _loading_tables() -> list[str]:
    from valuation import worklist as valuation_worklist

    return valuation_worklist._loaded_tables() if connection.vendor == "postgresql" else []


@pytest.mark.django_db
def test_items_found_before_the_run_completed_are_those_a_rebuild_finds(company, monkeypatch):
    """The nightly finish finds and loads its work items while the run's rows are attached,
    and installs them once the run completes: the worklist is the one found afterwards."""
    from tests.valued_company import PREVIOUS_AS_OF
    from valuation import services
    from valuation import worklist as valuation_worklist

    first = services.run_valuation(as_of=PREVIOUS_AS_OF)
    rebuilt = []
    monkeypatch.setattr(valuation_worklist, "rebuild_work_items", lambda **kwargs: rebuilt.append(kwargs))
    second = services.run_valuation(as_of=AS_OF)
    monkeypatch.undo()
    assert rebuilt == []  # installed as staged, not found again
    assert ValuationRun.objects.get(pk=second.pk).company["changes"]["previous_run"] == first.pk
    fields = ("customer_id", "reason", "amount", "before", "after", "fingerprint")
    installed = sorted(WorkItem.objects.values_list(*fields))
    changes = ValuationRun.objects.get(pk=second.pk).company["changes"]
    assert installed and set(WorkItem.objects.values_list("run_id", flat=True)) == {second.pk}
    assert _loading_tables() == []
    assert rebuild_work_items() == len(installed)
    assert sorted(WorkItem.objects.values_list(*fields)) == installed
    assert ValuationRun.objects.get(pk=second.pk).company["changes"] == changes


@pytest.mark.django_db
def test_staged_items_are_not_installed_once_a_newer_run_completed(two_runs, caplog):
    """Items staged for a run are installed only while it and the run they compare with are the
    two latest: a newer run completed meanwhile leaves the worklist to be found again."""
    from valuation import worklist as valuation_worklist

    first, second = two_runs
    staged = valuation_worklist.stage_work_items(second)
    assert staged.run_id == second.pk and staged.previous_id == first.pk and staged.count
    assert len(_loading_tables()) == (1 if connection.vendor == "postgresql" else 0)
    ValuationRun.objects.create(as_of=second.as_of + dt.timedelta(days=31), status=ValuationRun.Status.COMPLETED)
    before = sorted(WorkItem.objects.values_list("id", flat=True))
    with caplog.at_level("INFO", logger=valuation_worklist.logger.name):
        assert valuation_worklist.install_work_items(staged) is None
    assert "found again: the latest runs changed meanwhile" in caplog.text
    assert sorted(WorkItem.objects.values_list("id", flat=True)) == before
    assert _loading_tables() == []
    # A back-fill (an older as-of than a completed run) stages nothing.
    assert valuation_worklist.stage_work_items(first) is None


@pytest.mark.django_db
def test_a_run_of_the_same_day_again_installs_its_items_against_the_day_before(two_runs, monkeypatch):
    """Valuing the same day again replaces that day's run: the items staged against the run
    of the day before are installed once the replaced run is gone."""
    from valuation import services
    from valuation import worklist as valuation_worklist

    first, second = two_runs
    rebuilt = []
    monkeypatch.setattr(valuation_worklist, "rebuild_work_items", lambda **kwargs: rebuilt.append(kwargs))
    again = services.run_valuation(as_of=second.as_of)
    assert rebuilt == [] and not ValuationRun.objects.filter(pk=second.pk).exists()
    assert ValuationRun.objects.get(pk=again.pk).company["changes"]["previous_run"] == first.pk
    assert WorkItem.objects.exists() and set(WorkItem.objects.values_list("run_id", flat=True)) == {again.pk}


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_items_whose_loaded_table_went_before_the_install_are_found_again(company, monkeypatch, caplog):
    """Another load of work items drops every loaded table not attached, a finish's staged
    one too: the finish then finds its run's items again, and the worklist is still its run's."""
    from tests.valued_company import PREVIOUS_AS_OF
    from valuation import services
    from valuation import worklist as valuation_worklist

    if not valuation_worklist.history.is_partitioned(valuation_worklist.PARENT):
        pytest.skip("PostgreSQL only: SQLite loads no table")
    services.run_valuation(as_of=PREVIOUS_AS_OF)
    stage = valuation_worklist.stage_work_items

    def stage_then_lose_the_table(run, **given):
        staged = stage(run, **given)
        with connection.cursor() as cursor:
            cursor.execute(f'DROP TABLE "{staged.loaded}"')
        return staged

    monkeypatch.setattr(valuation_worklist, "stage_work_items", stage_then_lose_the_table)
    with caplog.at_level("INFO", logger=valuation_worklist.logger.name):
        second = services.run_valuation(as_of=AS_OF)
    monkeypatch.undo()
    assert "found again: their loaded table is gone" in caplog.text
    assert WorkItem.objects.exists() and set(WorkItem.objects.values_list("run_id", flat=True)) == {second.pk}
    assert "changes" in ValuationRun.objects.get(pk=second.pk).company
    assert _loading_tables() == []
