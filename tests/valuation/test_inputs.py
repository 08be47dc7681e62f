"""The SQL aggregation the nightly run uses must give exactly what the pure engine computes
from raw rows (the engine's definitions are the contract)."""

import datetime as dt
import time
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from services.models import ServiceEvent, ServiceType, StandardCost
from services.selectors import service_event_value
from tests.factories import CustomerFactory, ServiceEventFactory, TransactionFactory
from valuation import customer_days, selectors, services
from valuation.engine import backtest_calibration_end as engine_backtest_calibration_end
from valuation.engine.settings import EngineSettings
from valuation.engine.summary import summarise_services, summarise_transactions

pytestmark = pytest.mark.django_db

AS_OF = dt.date(2026, 6, 30)
SETTINGS = EngineSettings(window_months=12)


@pytest.fixture
def history():
    """Three customers: several lines on one day, a purchase exactly on the window start
    (outside), negative margins, one customer without purchases, one lost."""
    a, b, c = CustomerFactory(), CustomerFactory(), CustomerFactory(status="lost", lost_on=dt.date(2026, 1, 31))
    CustomerFactory()  # never bought
    rows = [
        (a, "2024-01-10", "100.00", "60.00"), (a, "2024-01-10", "50.50", "20.25"),
        (a, "2025-06-30", "300.00", "100.00"),  # window start day: outside the window
        (a, "2025-07-01", "200.00", "210.00"), (a, "2026-06-30", "80.00", "40.00"),
        (a, "2026-07-01", "999.00", "0.00"),  # after as-of: ignored
        (b, "2026-03-03", "1000.00", "700.00"),
        (c, "2023-02-01", "10.00", "1.00"), (c, "2023-02-15", "20.00", "2.00"), (c, "2023-02-15", "5.00", "0.50"),
    ]
    for customer, day, revenue, cost in rows:
        TransactionFactory(customer=customer, date=dt.date.fromisoformat(day), revenue=Decimal(revenue),
                           cost_of_goods=Decimal(cost))
    return [a, b, c]


def test_sql_summary_equals_engine_summary(history):
    aggregates = selectors.transaction_summary(as_of=AS_OF, window_months=12)
    ids = sorted(aggregates.index)
    from_sql = selectors.engine_summary(aggregates, customer_ids=ids)

    raw = selectors.transactions_frame(until=dt.date(2030, 1, 1))
    from_engine = summarise_transactions(raw, AS_OF, SETTINGS).loc[ids]

    pd.testing.assert_frame_equal(
        from_sql[from_engine.columns], from_engine, check_dtype=False, check_index_type=False, atol=1e-9
    )
    a = from_sql.loc[history[0].pk]
    assert a["purchase_days"] == 4 and a["frequency"] == 3
    assert a["revenue_window"] == pytest.approx(280.00)  # 2025-06-30 lies outside the window
    assert a["margin_window"] == pytest.approx(-10 + 40)
    assert a["mean_repeat_margin"] == pytest.approx((200 + -10 + 40) / 3)
    assert a["age_weeks"] == pytest.approx((AS_OF - dt.date(2024, 1, 10)).days / 7)


def test_customers_without_purchases_get_zero_rows(history):
    customers = selectors.customer_frame(as_of=AS_OF)
    aggregates = selectors.transaction_summary(as_of=AS_OF, window_months=12)
    summary = selectors.engine_summary(aggregates, customer_ids=customers["customer_id"])
    assert len(summary) == 4
    never = summary.loc[customers["customer_id"].iloc[-1]]
    assert never["purchase_days"] == 0 and never["revenue_lifetime"] == 0
    numbers = summary.drop(columns=["first_purchase", "last_purchase"])
    assert not numbers.isna().any().any()
    active = customers.set_index("customer_id")["active"]
    assert not active[history[2].pk] and active[history[0].pk]


def test_service_value_in_sql_matches_events_valued_one_by_one():
    hotline = ServiceType.objects.get(code="hotline")
    training = ServiceType.objects.get(code="training")
    StandardCost.objects.create(service_type=hotline, valid_from=dt.date(2026, 1, 1), cost_per_unit=Decimal("80"))
    customer = CustomerFactory()
    for day, service_type, quantity in [
        ("2025-06-30", hotline, "3"),  # outside the window
        ("2025-12-31", hotline, "1.5"), ("2026-01-01", hotline, "0.25"), ("2026-05-05", training, "2"),
    ]:
        ServiceEventFactory(customer=customer, service_type=service_type, date=dt.date.fromisoformat(day),
                            quantity=Decimal(quantity))
    by_type = selectors.service_cost_by_type(as_of=AS_OF, window_months=12)
    totals = selectors.service_totals(by_type)

    events = pd.DataFrame(
        [
            {"customer_id": e.customer_id, "date": e.date, "service_type": e.service_type.code,
             "quantity": float(e.quantity), "unit": e.service_type.unit, "cost": float(service_event_value(e))}
            for e in ServiceEvent.objects.select_related("service_type")
        ]
    )
    engine_totals, _ = summarise_services(events, AS_OF, SETTINGS)
    assert totals.loc[customer.pk, "value_to_customer"] == pytest.approx(engine_totals.loc[customer.pk, "value_to_customer"])
    hotline_cost = float(StandardCost.objects.get(service_type=hotline, valid_from=dt.date(2000, 1, 1)).cost_per_unit)
    training_cost = float(StandardCost.objects.get(service_type=training).cost_per_unit)
    assert totals.loc[customer.pk, "value_to_customer"] == pytest.approx(1.5 * hotline_cost + 0.25 * 80 + 2 * training_cost)
    assert totals.loc[customer.pk, "service_count"] == 3
    # Hours across units: 1.75 hotline hours plus 2 training days of 8 hours (the default).
    assert totals.loc[customer.pk, "service_hours"] == pytest.approx(1.75 + 2 * 8)
    assert engine_totals.loc[customer.pk, "service_hours"] == pytest.approx(1.75 + 2 * 8)


def test_chunk_ranges_cover_every_scored_customer_once():
    ids = np.asarray([3, 5, 8, 13, 21, 34, 55], dtype=np.int64)
    ranges = services.chunk_ranges(ids, chunk_size=3)
    assert ranges == [(3, 8), (13, 34), (55, 55)]
    assert services.chunk_ranges(ids[1:6], chunk_size=2) == [(5, 8), (13, 21), (34, 34)]
    assert services.chunk_ranges(np.zeros(0, dtype=np.int64), chunk_size=2) == []


def raw_rows() -> pd.DataFrame:
    """Every transaction row as it is (no same-day merging): the engine's own input."""
    from customers.models import Transaction

    rows = Transaction.objects.values_list("customer_id", "date", "revenue", "cost_of_goods")
    frame = pd.DataFrame.from_records(list(rows), columns=["customer_id", "date", "revenue", "cost"])
    frame["date"] = pd.to_datetime(frame["date"])
    frame[["revenue", "cost"]] = frame[["revenue", "cost"]].astype(float)
    return frame


@pytest.fixture
def returns_and_outlier():
    """30 customers with three purchase days of margin 10, 20, 30 (90 positive days: a finite
    population fence); one with returns, a same-day credit note and zero rows; one with an
    absurd order."""
    plain = [CustomerFactory() for _ in range(30)]
    for customer in plain:
        for day, margin in (("2026-01-05", 10), ("2026-02-05", 20), ("2026-03-05", 30)):
            TransactionFactory(customer=customer, date=dt.date.fromisoformat(day), revenue=Decimal(margin * 2),
                               cost_of_goods=Decimal(margin))
    returner, outlier, big = CustomerFactory(), CustomerFactory(), CustomerFactory()
    for day, margin in (("2026-01-20", 5000), ("2026-02-20", 6000), ("2026-03-20", 7000)):
        TransactionFactory(customer=big, date=dt.date.fromisoformat(day), revenue=Decimal(margin * 2),
                           cost_of_goods=Decimal(margin))
    rows = [
        (returner, "2026-01-10", "100.00", "60.00"),   # purchase day 1: margin 40
        (returner, "2026-01-10", "-20.00", "-12.00"),  # same-day credit note: not a purchase, margin -8
        (returner, "2026-02-10", "-50.00", "-30.00"),  # a return on its own day: no purchase day
        (returner, "2026-03-10", "0.00", "0.00"),      # zero row: no purchase day
        (returner, "2026-04-10", "200.00", "120.00"),  # purchase day 2: margin 80
        (outlier, "2026-01-15", "40.00", "20.00"), (outlier, "2026-02-15", "1000000000.00", "0.00"),
    ]
    for customer, day, revenue, cost in rows:
        TransactionFactory(customer=customer, date=dt.date.fromisoformat(day), revenue=Decimal(revenue),
                           cost_of_goods=Decimal(cost))
    return returner, outlier, big


def test_sql_summary_follows_the_input_rules_like_the_engine(returns_and_outlier):
    """Returns, zero rows and an outlier: the database summary (PostgreSQL's query, SQLite's
    path) equals the engine's summary of the single rows, and hand-worked figures."""
    returner, outlier, big = returns_and_outlier
    from_sql = selectors.transaction_summary(as_of=AS_OF, window_months=12)
    from_engine = summarise_transactions(raw_rows(), AS_OF, SETTINGS, input_rule_columns=True)
    pd.testing.assert_frame_equal(from_sql.sort_index(), from_engine.sort_index(), check_dtype=False,
                                  check_index_type=False, rtol=1e-12, atol=1e-6)

    r = from_sql.loc[returner.pk]
    assert r["purchase_days"] == 2 and r["frequency"] == 1  # the return and zero days are no purchases
    assert r["returned_revenue"] == pytest.approx(70.0)
    assert r["margin_lifetime"] == pytest.approx(40 - 8 - 20 + 0 + 80)
    kept = (40 - 8 - 20 + 80) / (40 + 80)  # returns reduce spend pro rata
    assert r["mean_repeat_margin"] == pytest.approx(kept * 80)
    assert r["mean_purchase_margin"] == pytest.approx(kept * 120 / 2)
    assert r["recency_weeks"] == pytest.approx((dt.date(2026, 4, 10) - dt.date(2026, 1, 10)).days / 7)

    # Fence: quartiles of ln margin over 90 days of 10/20/30, the outlier's two days and the
    # returner's two: exp(Q3 + 3 IQR). The outlier has too few days for an own fence.
    import numpy as np
    logs = np.log([10.0] * 30 + [20.0] * 30 + [30.0] * 30 + [40.0, 80.0, 20.0, 1e9, 5000.0, 6000.0, 7000.0])
    q1, q3 = np.quantile(logs, [0.25, 0.75])
    fence = np.exp(q3 + 3 * (q3 - q1))
    assert selectors.purchase_day_fence(as_of=AS_OF) == pytest.approx(fence)
    o = from_sql.loc[outlier.pk]
    assert o["capped_purchase_days"] == 1
    assert o["mean_repeat_margin"] == pytest.approx(fence)  # the 1e9 day capped at the fence
    assert o["margin_lifetime"] == pytest.approx(20 + 1e9)  # history stays uncapped
    # A large customer whose every order is large: above the population fence, below its own
    # (10 x its median 6000), so nothing is capped.
    assert fence < 5000
    b = from_sql.loc[big.pk]
    assert b["capped_purchase_days"] == 0 and b["mean_repeat_margin"] == pytest.approx(6500.0)


def test_a_customer_range_caps_against_the_whole_company(returns_and_outlier):
    _, outlier, big = returns_and_outlier
    whole = selectors.transaction_summary(as_of=AS_OF, window_months=12)
    fence = selectors.purchase_day_fence(as_of=AS_OF)
    part = selectors.transaction_summary(as_of=AS_OF, window_months=12, id_range=(outlier.pk, big.pk), fence=fence)
    pd.testing.assert_frame_equal(part, whole.loc[[outlier.pk, big.pk]], check_dtype=False, check_index_type=False)


def test_one_pass_gives_what_the_separate_reads_give(history, monkeypatch):
    """The run reads the transactions once (run_transaction_inputs): its as-of and back-test
    summaries, fences, holdout and revenue by period equal the separate queries', also when
    the engine takes the customers in several blocks."""
    monkeypatch.setattr(selectors, "DAYS_PER_BLOCK", 2)
    TransactionFactory(customer=history[0], date=dt.date(2026, 5, 2), revenue=Decimal("-40.00"),
                       cost_of_goods=Decimal("-25.00"))  # a credit note
    TransactionFactory(customer=history[1], date=dt.date(2026, 3, 3), revenue=Decimal("0.00"),
                       cost_of_goods=Decimal("0.00"))  # a zero row on a purchase day
    ends = [dt.date(2023, 6, 30), dt.date(2024, 6, 30), dt.date(2025, 6, 30), AS_OF]
    reads = selectors.run_transaction_inputs(as_of=AS_OF, window_months=12, holdout_weeks=26, period_ends=ends)
    calibration_end = reads.calibration_end  # from the oldest day the pass read
    first = selectors.first_transaction_day(until=AS_OF)
    assert calibration_end == engine_backtest_calibration_end(first, AS_OF, 26) is not None

    def same(left, right):
        pd.testing.assert_frame_equal(left.sort_index(), right.sort_index()[left.columns], check_dtype=False,
                                      check_index_type=False, check_freq=False, atol=1e-9)

    fence = selectors.purchase_day_fence(as_of=AS_OF)
    assert reads.fence == fence or (reads.fence == pytest.approx(fence))
    same(reads.summary, selectors.transaction_summary(as_of=AS_OF, window_months=12, fence=fence))
    calibration = selectors.transaction_summary(as_of=calibration_end, window_months=12)
    same(reads.calibration, calibration[calibration["purchase_days"] > 0])
    same(reads.holdout, selectors.holdout_outcome(after=calibration_end, until=AS_OF))
    separate = selectors.revenue_by_customer_period(period_ends=ends)
    key = ["customer_id", "date"]
    pd.testing.assert_frame_equal(reads.revenue_by_period.sort_values(key).reset_index(drop=True),
                                  separate.sort_values(key).reset_index(drop=True), check_dtype=False,
                                  check_index_type=False)
    assert reads.transaction_count == selectors.transaction_count(until=AS_OF) == 11
    a = reads.summary.loc[history[0].pk]
    assert a["returned_revenue"] == pytest.approx(40.0) and a["purchase_days"] == 4


def _days_by_plain_group_by(until: dt.date) -> pd.DataFrame:
    """The reference: the plain GROUP BY, fetched row by row (numeric sums, dates)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(customer_days.day_sql() + " ORDER BY customer_id, date", [until])
        rows = cursor.fetchall()
    frame = pd.DataFrame.from_records(rows, columns=customer_days.DAY_COLUMNS)
    frame["day"] = [(day - customer_days.EPOCH).days for day in frame["day"]]
    return frame.astype({"customer_id": "int64", "day": "int32", "rows": "int32", "other_rows": "int32",
                         "purchase_revenue": float, "purchase_cost": float, "other_revenue": float,
                         "other_cost": float})


@pytest.mark.services
@pytest.mark.django_db(transaction=True)  # committed rows: the other parts read on their own connections
@pytest.mark.parametrize("block_bytes", [48, 150, customer_days.BLOCK_BYTES])  # one day, about three, all
def test_packed_parallel_pass_equals_the_plain_group_by(block_bytes, monkeypatch):
    from django.db import connection, transaction

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: SQLite runs the plain GROUP BY")
    until = dt.date(2026, 6, 30)
    customers = [CustomerFactory() for _ in range(6)]
    CustomerFactory()  # never bought: no days
    rows = [
        (0, "2026-01-10", "100.00", "60.00"), (0, "2026-01-10", "0.10", "0.03"),  # two purchase rows
        (0, "2026-01-10", "-20.00", "-12.00"),  # a same-day credit note
        (0, "2026-02-10", "-50.00", "-30.00"),  # a return on its own day
        (0, "2026-03-10", "0.00", "0.00"), (0, "2026-03-10", "0.00", "0.00"),  # zero rows only
        (0, "2026-04-10", "200.00", "120.00"), (0, "2026-07-01", "999.00", "1.00"),  # after until
        (1, "2025-12-31", "0.10", "0.20"), (1, "2025-12-31", "0.20", "0.10"),
        (2, "1969-12-31", "15.00", "5.00"),  # before 1970: a negative day number
        (3, "2026-06-30", "12345678.91", "0.00"), (3, "2026-06-30", "-12345678.91", "0.00"),
        (4, "2026-05-01", "1.00", "2.00"),
    ]
    rows += [(5, dt.date(2026, 1, 1) + dt.timedelta(days=k), f"{k}.{k:02d}", "1.00") for k in range(40)]
    for index, day, revenue, cost in rows:
        day = day if isinstance(day, dt.date) else dt.date.fromisoformat(day)
        TransactionFactory(customer=customers[index], date=day, revenue=Decimal(revenue), cost_of_goods=Decimal(cost))
    expected = _days_by_plain_group_by(until)
    assert len(expected) == 4 + 1 + 1 + 1 + 1 + 40

    def same(frame):
        assert list(frame.columns) == customer_days.DAY_COLUMNS
        assert frame.dtypes.to_dict() == expected.dtypes.to_dict()
        pd.testing.assert_frame_equal(frame, expected, check_exact=False, rtol=1e-12, atol=1e-9)

    same(customer_days.transaction_days(until=until, parts=1, block_bytes=block_bytes))
    same(customer_days.transaction_days(until=until, block_bytes=block_bytes))  # the two default parts
    # Told once every day is received, outside the parts' snapshot transaction: reads started
    # then get connections of their own (inside it they would run on this one, one after the other).
    told = []
    same(customer_days.transaction_days(until=until, block_bytes=block_bytes,
                                        received=lambda: told.append(connection.in_atomic_block)))
    assert told == [False]
    # Cuts right at customers with several days: each range starts exactly at its cut.
    ids = sorted(c.pk for c in customers)
    monkeypatch.setattr(customer_days, "_customer_splits", lambda parts: [ids[1], ids[5]])
    same(customer_days.transaction_days(until=until, parts=3, block_bytes=block_bytes))
    # Inside a transaction only this connection sees its rows: one part, the uncommitted row included.
    with transaction.atomic():
        TransactionFactory(customer=customers[4], date=dt.date(2026, 5, 2), revenue=Decimal("3.00"),
                           cost_of_goods=Decimal("1.00"))
        inside = customer_days.transaction_days(until=until, block_bytes=block_bytes)
        expected = _days_by_plain_group_by(until)
        same(inside)
        assert len(inside) == 4 + 1 + 1 + 1 + 2 + 40


@pytest.mark.services
@pytest.mark.django_db(transaction=True)  # VACUUM runs outside a transaction
def test_the_nightly_reads_of_every_transaction_take_the_index_alone():
    """The one pass and the cross-sell sums read every transaction of a million customers: on
    PostgreSQL from the (customer, date) index alone, which holds every column they use, so
    that where the rows lie (a daily feed leaves them in date order, not by customer) does not
    matter. At 1M customers with the rows in date order the one pass took 19.6-22.1 s by the
    index and the rows, 13.4 s by the index alone (on one connection, EXPLAIN ANALYZE). Seq
    scans are priced out, as on a table of millions of rows; a column added to either query
    that the index lacks fails this test."""
    from django.db import connection

    from core.planner import planner_settings
    from tests.cockpit.factories import ValuationRunFactory
    from valuation import cross_sell

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: SQLite has no INCLUDE columns")
    index = "txn_customer_date_sums_idx"
    customers = [CustomerFactory(industry="Steel") for _ in range(3)]
    for k, customer in enumerate(customers):
        TransactionFactory(customer=customer, date=AS_OF - dt.timedelta(days=10 + k), revenue=Decimal("10.00"),
                           cost_of_goods=Decimal("4.00"), product="Gearbox")
    with connection.cursor() as cursor:
        # Marks the pages seen by all, which prices the index alone below the index and the rows;
        # another session's snapshot (an autovacuum's) can hold that back for a moment.
        for _attempt in range(20):
            cursor.execute("VACUUM ANALYZE customers_transaction")
            # By its oid: the browser tests keep a copy of the same name in a schema of their own.
            cursor.execute("SELECT relallvisible = relpages, reloptions FROM pg_class "
                           "WHERE oid = 'customers_transaction'::regclass")
            all_visible, options = cursor.fetchone()
            if all_visible:
                break
            time.sleep(0.5)
        assert all_visible
        assert "autovacuum_vacuum_insert_scale_factor=0.01" in options

    def plan(cursor, sql, params=None):
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())

    with (customer_days._day_scan_settings(), planner_settings(enable_seqscan="off"),
          connection.cursor() as cursor):
        one_pass = plan(cursor, customer_days._packed_sql(until=AS_OF, lower=None, upper=None))
    assert f"Index Only Scan using {index}" in one_pass, one_pass

    plans = []

    def explain_the_sums(execute, sql, params, many, context):
        if "GROUP BY c.industry" in sql and not sql.startswith("EXPLAIN"):  # under the sums' own settings
            plans.append(plan(context["cursor"], sql, params))
        return execute(sql, params, many, context)

    run = ValuationRunFactory(as_of=AS_OF, settings={"window_months": 12})
    classes = pd.Series({customer.pk: "A" for customer in customers})
    with connection.execute_wrapper(explain_the_sums):
        sums = cross_sell.peer_category_sums(run_id=run.pk, as_of=AS_OF, window_months=12, classes=classes)
    assert sums == [("Steel", "A", "Gearbox", 3, 1800)]
    assert len(plans) == 1 and f"Index Only Scan using {index}" in plans[0], plans


def test_customer_frame_gives_each_customers_attributes_as_stored():
    """PostgreSQL reads the customers through COPY, other databases through the ORM: either
    way the frame holds each customer's lost day, referrer, wallet to the
    cent and acquisition day, and who is active on the as-of date."""
    referrer = CustomerFactory(yearly_wallet=Decimal("1234567.89"), acquired_on=None)
    lost_before = CustomerFactory(status="lost", lost_on=dt.date(2026, 1, 31), referred_by=referrer)
    lost_after = CustomerFactory(status="lost", lost_on=dt.date(2026, 7, 2), yearly_wallet=Decimal("0.07"))
    active = CustomerFactory()
    frame = selectors.customer_frame(as_of=AS_OF).set_index("customer_id")
    assert frame.index.tolist() == sorted([referrer.pk, lost_before.pk, lost_after.pk, active.pk])
    assert frame.loc[referrer.pk, "wallet"] == 1234567.89 and pd.isna(frame.loc[lost_before.pk, "wallet"])
    assert frame.loc[lost_after.pk, "wallet"] == 0.07
    assert frame.loc[lost_before.pk, "referred_by"] == referrer.pk and pd.isna(frame.loc[referrer.pk, "referred_by"])
    assert frame["active"].to_dict() == {referrer.pk: True, lost_before.pk: False, lost_after.pk: True,
                                         active.pk: True}
    assert frame.loc[lost_before.pk, "lost_on"] == pd.Timestamp("2026-01-31")
    assert frame.loc[lost_after.pk, "lost_on"] == pd.Timestamp("2026-07-02")
    assert pd.isna(frame.loc[active.pk, "lost_on"]) and pd.isna(frame.loc[referrer.pk, "lost_on"])
    assert pd.isna(pd.to_datetime(frame.loc[referrer.pk, "acquisition_date"]))
    assert pd.to_datetime(frame.loc[lost_before.pk, "acquisition_date"]) == pd.Timestamp("2024-01-15")
    within = selectors.customer_frame(as_of=AS_OF, id_range=(lost_before.pk, lost_after.pk))
    assert within["customer_id"].tolist() == [lost_before.pk, lost_after.pk]
