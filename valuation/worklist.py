"""The reasons to act on a customer, found once per run and stored (WorkItem).

While a run is finished, its value rows are compared with the previous run's (both by
as-of date) and every reason found is written as one WorkItem with the money at
stake, so a rep's worklist is a single indexed read at any number of customers. The same
step stores a summary of what changed for the managers' home page in the run's company
figures ("changes").

| reason         | when                                                            | at stake (order)        |
|----------------|-----------------------------------------------------------------|-------------------------|
| win_back       | valuable, P(alive) fell below 0.5 or by 0.15 or more since the   | previous CLV            |
|                | previous run                                                    |                         |
| renegotiate    | in the problem group                                            | value to the customer   |
| segment_down   | classic value went from high to low                             | CLV lost                |
| segment_up     | classic value went from low to high (a thank-you)               | CLV gained              |
| service_spend  | value to the customer rose by half or more, above the segment   | the rise                |
|                | line                                                            |                         |
| lost_valuable  | lost in the last 12 months, a B-or-better yearly margin before   | lifetime margin         |
| detractor      | valuable, latest NPS answer of the last 12 months 0-6            | CLV                     |

"Valuable" means high classic value (segments check potential or investment) in either run.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pandas as pd
from django.db import DatabaseError, connection, transaction
from django.db.models import Case, F, FloatField, Sum, Value, When
from django.db.models.functions import Cast

from core import copy_text
from core.own_connection import in_background
from customers.models import Customer, SurveyAnswer
from services.models import ServiceEvent
from services.selectors import VALUE_FIELD, CostHistory

from . import history
from .figure_rules import AT_RISK_P_ALIVE
from .models import CustomerValue, Segment, ValuationRun, WorkItem
from .selectors import completed_runs_newest_first, previous_completed_run

logger = logging.getLogger(__name__)

SHARP_P_ALIVE_DROP = 0.15
SERVICE_SPEND_RISE = 0.5
DETRACTOR_MAX_SCORE = 6
HIGH_CLASSIC = {Segment.POTENTIAL.value, Segment.INVESTMENT.value}
WRITE_BATCH = 5000
VALUE_COLUMNS = ["customer_id", "segment", "clv", "p_alive", "value_to_customer", "margin_window",
                 "margin_lifetime", "profit_after_services"]
# Reasons about free services only: what inside sales, who sees no money, may be shown.
SERVICE_REASONS = (WorkItem.Reason.RENEGOTIATE, WorkItem.Reason.SERVICE_SPEND)


MONEY_COLUMNS = ["clv", "value_to_customer", "margin_window", "margin_lifetime", "profit_after_services"]


def _fetch(queryset) -> list[tuple]:
    """The queryset's rows as plain tuples straight from the cursor: the ORM's per-row work
    was most of the time for millions of rows."""
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _values(run: ValuationRun) -> pd.DataFrame:
    """The run's figures as floats: cast in SQL, since a million Decimal objects cost ~2 GB.
    PostgreSQL sends them as CSV through COPY (a million rows 2.2-2.4 s, row by row 4.1-4.3 s),
    read back to the same floats (PostgreSQL writes the shortest exact text of each)."""
    rows = (
        CustomerValue.objects.filter(run=run)
        .annotate(**{f"{name}_f": Cast(name, FloatField()) for name in MONEY_COLUMNS})
        .values_list(*[f"{c}_f" if c in MONEY_COLUMNS else c for c in VALUE_COLUMNS])
        .order_by()
    )
    if connection.vendor == "postgresql":
        frame = pd.read_csv(
            copy_text.copy_out_csv(connection.ops.compose_sql(*rows.query.sql_with_params())),
            names=VALUE_COLUMNS, keep_default_na=False, na_values={"p_alive": [""]},
            dtype={"customer_id": np.int64, "segment": str},
        ).set_index("customer_id")
    else:
        frame = pd.DataFrame.from_records(_fetch(rows), columns=VALUE_COLUMNS).set_index("customer_id")
    frame[MONEY_COLUMNS] = frame[MONEY_COLUMNS].astype("float64")
    return frame


def find_work_items(latest: pd.DataFrame, previous: pd.DataFrame | None, *, customers: pd.DataFrame,
                    thresholds: dict, as_of: dt.date, detractors: pd.Series) -> pd.DataFrame:
    """The reasons of the module's table, one row per (customer, reason): customer_id, reason,
    amount, before, after, fingerprint. Pure pandas, for the run and for tests.

    ``customers``: status and lost_on by customer id; ``detractors``: the latest score of the
    last 12 months by customer id (answers 0-6 only).
    """
    cur = latest
    prev = previous.reindex(cur.index) if previous is not None else pd.DataFrame(index=cur.index, columns=cur.columns)
    has_prev = prev["segment"].notna()
    info = customers.reindex(cur.index)
    lost_on = pd.to_datetime(info["lost_on"])
    lost = (info["status"] == Customer.Status.LOST) & (lost_on <= pd.Timestamp(as_of))
    active = ~lost
    valuable = cur["segment"].isin(HIGH_CLASSIC) | prev["segment"].isin(HIGH_CLASSIC)
    found = []

    def add(mask, reason, amount, before, after, fingerprint):
        """`fingerprint`: a value, or a function of the mask giving the chosen rows' texts
        (built for those rows only: text for all million rows took ~2 s)."""
        mask = mask.fillna(False).astype(bool)
        if not mask.any():
            return
        if callable(fingerprint):
            fingerprint = fingerprint(mask).reindex(cur.index)
        found.append(pd.DataFrame({
            "customer_id": cur.index[mask], "reason": reason,
            "amount": pd.Series(amount, index=cur.index)[mask].astype(float).abs().to_numpy(),
            "before": pd.Series(before, index=cur.index)[mask].astype(float).to_numpy(),
            "after": pd.Series(after, index=cur.index)[mask].astype(float).to_numpy(),
            "fingerprint": pd.Series(fingerprint, index=cur.index)[mask].astype(str).to_numpy(),
        }))

    p_prev = prev["p_alive"].astype(float)
    falling = has_prev & ((p_prev >= AT_RISK_P_ALIVE) | (p_prev - cur["p_alive"] >= SHARP_P_ALIVE_DROP))
    at_risk = valuable & active & (cur["p_alive"] < AT_RISK_P_ALIVE) & falling
    add(at_risk, WorkItem.Reason.WIN_BACK, prev["clv"].astype(float), p_prev, cur["p_alive"],
        # P(alive) is empty where the model's fit was not used ("not claimed"): no fingerprint digit.
        lambda m: "p" + (cur["p_alive"][m].astype(float) * 10).fillna(-1).astype(int).astype(str))

    add(active & (cur["segment"] == Segment.PROBLEM), WorkItem.Reason.RENEGOTIATE, cur["value_to_customer"],
        prev["value_to_customer"].astype(float), cur["value_to_customer"], "problem")

    was_high = prev["segment"].isin(HIGH_CLASSIC)
    is_high = cur["segment"].isin(HIGH_CLASSIC)
    def moved(m):
        return prev["segment"][m].astype(str) + ">" + cur["segment"][m].astype(str)

    change = cur["clv"] - prev["clv"].astype(float)
    add(has_prev & was_high & ~is_high, WorkItem.Reason.SEGMENT_DOWN, change, prev["clv"].astype(float), cur["clv"],
        moved)
    add(has_prev & ~was_high & is_high & active, WorkItem.Reason.SEGMENT_UP, change, prev["clv"].astype(float),
        cur["clv"], moved)

    spend_prev = prev["value_to_customer"].astype(float)
    rise = cur["value_to_customer"] - spend_prev
    rising = has_prev & active & (rise > 0) & (rise >= SERVICE_SPEND_RISE * spend_prev) & (
        cur["value_to_customer"] > float(thresholds.get("value_to_threshold", 0.0)))
    add(rising, WorkItem.Reason.SERVICE_SPEND, rise, spend_prev, cur["value_to_customer"],
        lambda m: "x" + np.floor(np.log2(cur["value_to_customer"][m].clip(lower=1.0))).astype(int).astype(str))

    year_ago = pd.Timestamp(as_of) - pd.DateOffset(years=1)
    yearly = np.maximum(cur["margin_window"], prev["margin_window"].astype(float).fillna(0.0))
    lost_valuable = lost & (lost_on > year_ago) & (yearly >= float(thresholds.get("abc_b_min_margin", math.inf)))
    add(lost_valuable & (yearly > 0), WorkItem.Reason.LOST_VALUABLE, cur["margin_lifetime"], yearly,
        cur["margin_window"], lambda m: "lost" + lost_on[m].dt.strftime("%Y%m%d").fillna(""))

    score = detractors.reindex(cur.index)
    add(valuable & active & score.notna(), WorkItem.Reason.DETRACTOR, cur["clv"], None, score,
        lambda m: "s" + score[m].astype("Int64").astype(str))

    if not found:
        return pd.DataFrame(columns=["customer_id", "reason", "amount", "before", "after", "fingerprint"])
    return pd.concat(found, ignore_index=True)


def latest_detractor_scores(*, as_of: dt.date) -> pd.Series:
    """Per customer, the score of the latest answer of the 12 months to as_of, where it is 0-6."""
    since = (pd.Timestamp(as_of) - pd.DateOffset(years=1)).date()
    rows = (SurveyAnswer.objects.filter(answered_on__gt=since, answered_on__lte=as_of)
            .order_by("customer_id", "answered_on", "id").values_list("customer_id", "score"))
    # Plain tuples from the cursor, the last row per customer kept (ascending order): row by
    # row through the ORM took ~2 s for the ~450k answers of a million customers.
    answers = pd.DataFrame.from_records(_fetch(rows), columns=["customer_id", "score"])
    latest = answers.drop_duplicates("customer_id", keep="last")
    series = pd.Series(latest["score"].to_numpy(dtype="float64"),
                       index=pd.Index(latest["customer_id"].to_numpy(dtype="int64")), dtype="float64")
    return series[series <= DETRACTOR_MAX_SCORE]


def service_spend_by_type(*, as_of: dt.date, months: int = 12) -> list[dict]:
    """Standard cost of free services per type in the window to as_of and the window before."""
    start = (pd.Timestamp(as_of) - pd.DateOffset(months=months)).date()
    before = (pd.Timestamp(as_of) - pd.DateOffset(months=2 * months)).date()
    value = F("quantity") * CostHistory.load().unit_cost_expression()
    rows = (
        ServiceEvent.objects.filter(date__gt=before, date__lte=as_of)
        .values(code=F("service_type__code"), name=F("service_type__name"), name_de=F("service_type__name_de"),
                order=F("service_type__sort_order"))
        .annotate(
            current=Sum(Case(When(date__gt=start, then=value), default=Value(0), output_field=VALUE_FIELD)),
            previous=Sum(Case(When(date__lte=start, then=value), default=Value(0), output_field=VALUE_FIELD)),
        )
        .order_by("order", "code")
    )
    return [{"code": r["code"], "name": r["name"], "name_de": r["name_de"], "current": float(r["current"] or 0),
             "previous": float(r["previous"] or 0)} for r in rows]


def change_summary(latest: pd.DataFrame, previous: pd.DataFrame | None, items: pd.DataFrame) -> dict:
    """What changed since the previous run, for the managers' home page (JSON-ready)."""
    if previous is None:
        return {}
    columns = ["segment", "profit_after_services", "clv"]
    both = latest[columns].join(previous[columns].add_suffix("_prev"), how="inner")
    moves = both[both["segment"] != both["segment_prev"]].groupby(["segment_prev", "segment"]).size()
    new_losses = both[(both["profit_after_services"] < 0) & (both["profit_after_services_prev"] >= 0)]
    win_back = items[items["reason"] == WorkItem.Reason.WIN_BACK] if len(items) else items
    return {
        "segment_moves": [{"from": a, "to": b, "customers": int(n)} for (a, b), n in moves.items()],
        "moved_customers": int(moves.sum()) if len(moves) else 0,
        "value_at_risk": round(float(win_back["amount"].sum()) if len(win_back) else 0.0, 2),
        "at_risk_customers": int(len(win_back)),
        "new_loss_makers": int(len(new_losses)),
        "new_loss_amount": round(float(new_losses["profit_after_services"].sum()), 2),
        "clv_change": round(float(both["clv"].sum() - both["clv_prev"].sum()), 2),
    }


def _cents(value: float) -> Decimal:
    return Decimal(repr(round(float(value), 2))).quantize(Decimal("0.01"))


def _write_items(run_id: int, items: pd.DataFrame, *, table: str | None = None) -> None:
    """PostgreSQL: one COPY (400k items: bulk_create took ~3 minutes, most of it building
    objects and SQL), into ``table`` when given; other databases: bulk_create."""
    if items.empty:
        return
    if connection.vendor == "postgresql":
        n = len(items)
        columns = {
            "run_id": copy_text.integers(np.full(n, run_id)),
            "customer_id": copy_text.integers(items["customer_id"].to_numpy()),
            "reason": copy_text.strings(items["reason"].astype(str).to_numpy()),
            "amount": copy_text.money(items["amount"].to_numpy(dtype=float), exact=_cents),
            "before": copy_text.floats(items["before"].to_numpy(dtype=float), null_nan=True),
            "after": copy_text.floats(items["after"].to_numpy(dtype=float), null_nan=True),
            "fingerprint": copy_text.strings(items["fingerprint"].str.slice(0, 64).to_numpy()),
        }
        quote = connection.ops.quote_name
        sql = f"COPY {quote(table or WorkItem._meta.db_table)} ({', '.join(quote(c) for c in columns)}) FROM STDIN"
        with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
            copy.write(copy_text.block(list(columns.values())))
        return
    WorkItem.objects.bulk_create(
        (WorkItem(run_id=run_id, customer_id=int(row.customer_id), reason=row.reason, amount=_cents(row.amount),
                  before=None if pd.isna(row.before) else float(row.before),
                  after=None if pd.isna(row.after) else float(row.after), fingerprint=row.fingerprint[:64])
         for row in items.itertuples(index=False)),
        batch_size=WRITE_BATCH,
    )


def compared_values(run: ValuationRun) -> tuple[int, pd.DataFrame] | None:
    """(run id, values) of the run the worklist will compare ``run`` with once it completes
    as the latest (previous_completed_run), for rebuild_work_items' ``previous_values``."""
    previous = previous_completed_run(run)
    return None if previous is None else (previous.pk, _values(previous))


def rebuild_work_items(*, run_id: int | None = None, latest_values: pd.DataFrame | None = None,
                       customers: pd.DataFrame | None = None,
                       previous_values: tuple[int, pd.DataFrame] | None = None,
                       detractors: pd.Series | None = None, spend: list[dict] | None = None) -> int:
    """Find the reasons for the latest run against the one before it and store them.

    The nightly finish stages its items before the run completes (stage_work_items) and
    rebuilds here only when they could not be installed; a run that is not one of the two
    latest by as-of date (a back-fill of an older date) changes nothing. Items of older runs are dropped.
    `latest_values` and `customers` (the run's rows as _values and the customers' status and
    lost date read them) save reading them again when the caller has them: used only when
    `run_id` is the latest run. `previous_values` (compared_values, read ahead by the run) is
    used when it is the values of the run compared with. `detractors` and `spend`
    (latest_detractor_scores and service_spend_by_type of `run_id`'s as-of date, read ahead
    by the run) likewise when `run_id` is the latest. Returns the number of items written.
    """
    runs = list(completed_runs_newest_first().only("pk", "as_of", "thresholds", "company")[:2])
    if not runs or (run_id is not None and run_id not in {run.pk for run in runs}):
        return 0
    latest = runs[0]
    staged = _stage(latest, runs[1] if len(runs) > 1 else None, mine=run_id == latest.pk,
                    latest_values=latest_values, customers=customers, previous_values=previous_values,
                    detractors=detractors, spend=spend)
    return _install(staged, latest)


@dataclass
class StagedWorkItems:
    """A run's items, found and (PostgreSQL) loaded into a table of their own, out of sight,
    until they are installed as the worklist."""
    run_id: int
    previous_id: int | None  # the run they were compared with
    count: int
    changes: dict
    loaded: str | None  # the loaded table (PostgreSQL)
    items: pd.DataFrame | None  # where none was loaded (SQLite): written when installed


def stage_work_items(run: ValuationRun, **given) -> StagedWorkItems | None:
    """The items ``run`` will have as the latest run, found and loaded while it is finished:
    once it completes, install_work_items only swaps them in. None when a completed run is
    newer (a back-fill changes no worklist here). ``given``: as rebuild_work_items takes them."""
    if completed_runs_newest_first().filter(as_of__gt=run.as_of).exists():
        return None
    return _stage(run, previous_completed_run(run), mine=True, **given)


def install_work_items(staged: StagedWorkItems) -> int | None:
    """Make staged items the worklist, now that their run has completed; the number of items.
    None when their run and the one they were compared with are no longer the two latest
    runs, or their loaded table is gone: they are dropped, and the caller rebuilds."""
    runs = list(completed_runs_newest_first().only("pk", "company")[:2])
    compared = [staged.run_id] + ([staged.previous_id] if staged.previous_id is not None else [])
    runs_changed = [run.pk for run in runs] != compared
    still_loaded = staged.loaded is None or staged.loaded in _loaded_tables()
    if runs_changed or not still_loaded:
        why = [reason for reason, applies in (("the latest runs changed meanwhile", runs_changed),
                                               ("their loaded table is gone", not still_loaded)) if applies]
        logger.info("The work items staged for run %s are found again: %s", staged.run_id, " and ".join(why))
        discard_work_items(staged)
        return None
    try:
        return _install(staged, runs[0])
    except DatabaseError:  # e.g. their table dropped since the check by another load: found again
        logger.warning("Installing the work items staged for run %s failed; found again", staged.run_id,
                       exc_info=True)
        discard_work_items(staged)
        return None


def discard_work_items(staged: StagedWorkItems | None) -> None:
    """Drop the loaded table of items that will not be installed (their run did not complete,
    the runs compared changed, or the install failed)."""
    if staged is not None and staged.loaded is not None:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP TABLE IF EXISTS "{staged.loaded}"')


def _stage(latest: ValuationRun, previous: ValuationRun | None, *, mine: bool,
           latest_values: pd.DataFrame | None = None, customers: pd.DataFrame | None = None,
           previous_values: tuple[int, pd.DataFrame] | None = None,
           detractors: pd.Series | None = None, spend: list[dict] | None = None) -> StagedWorkItems:
    """Find ``latest``'s items against ``previous`` and load them (PostgreSQL). ``mine``: the
    given figures are ``latest``'s (rebuild_work_items)."""
    # Two small grouped reads on connections of their own while this one reads the runs' values.
    read_detractors = (None if mine and detractors is not None
                       else in_background(lambda: latest_detractor_scores(as_of=latest.as_of)))
    read_spend = (None if previous is None or (mine and spend is not None)
                  else in_background(lambda: service_spend_by_type(as_of=latest.as_of)))
    given = latest_values is not None and customers is not None and mine
    cur = latest_values if given else _values(latest)
    if previous is None:
        prev = None
    elif previous_values is not None and previous_values[0] == previous.pk:
        prev = previous_values[1]
    else:
        prev = _values(previous)
    if not given:
        customers = pd.DataFrame.from_records(
            _fetch(Customer.objects.values_list("id", "status", "lost_on").order_by()),
            columns=["customer_id", "status", "lost_on"],
        ).set_index("customer_id")
    if read_detractors is not None:
        detractors = read_detractors.result()
    items = find_work_items(cur, prev, customers=customers, thresholds=latest.thresholds or {},
                            as_of=latest.as_of, detractors=detractors)
    changes = change_summary(cur, prev, items)
    if changes:
        changes |= {"previous_run": previous.pk, "previous_as_of": previous.as_of.isoformat(),
                    "service_spend": spend if read_spend is None else read_spend.result()}
    loaded = _load_partition(latest.pk, items) if history.is_partitioned(PARENT) else None
    return StagedWorkItems(run_id=latest.pk, previous_id=previous.pk if previous is not None else None,
                           count=len(items), changes=changes, loaded=loaded, items=None if loaded else items)


def _install(staged: StagedWorkItems, latest: ValuationRun) -> int:
    with transaction.atomic():
        if staged.loaded is not None:
            _replace_partitions(latest.pk, staged.loaded)
        else:
            WorkItem.objects.exclude(run=latest).delete()
            WorkItem.objects.filter(run=latest).delete()
            _write_items(latest.pk, staged.items)
        ValuationRun.objects.filter(pk=latest.pk).update(company={**(latest.company or {}), "changes": staged.changes})
    return staged.count


# PostgreSQL (migration 0016): each run's items are a partition of the work item table.
PARENT = WorkItem._meta.db_table
DEFAULT_PARTITION = f"{PARENT}_default"
_LOADING = rf"^{PARENT}_r[0-9]+_load$"  # a loaded table, not yet attached
# The parent's index definitions, made to build the same index on another table (whose matching
# indexes ATTACH then takes over instead of building its own).
_INDEX_HEAD = re.compile(r"^CREATE (UNIQUE )?INDEX \S+ ON (ONLY )?\S+ ")


def _partition_index_sql(table: str) -> list[str]:
    """The parent's indexes for ``table``, named by PostgreSQL. One that backs a constraint (the
    one item per customer and reason) is made as that constraint: ATTACH takes over no plain
    index for it and would build a second one, inside the transaction that holds the table."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.indexdef, pg_get_constraintdef(c.oid) FROM pg_indexes i "
            "LEFT JOIN pg_constraint c ON c.conindid = format('%%I.%%I', i.schemaname, i.indexname)::regclass "
            "WHERE i.schemaname = current_schema() AND i.tablename = %s ORDER BY i.indexname", [PARENT])
        found = cursor.fetchall()
    return [f'ALTER TABLE "{table}" ADD {constraint}' if constraint
            else _INDEX_HEAD.sub(lambda m: f'CREATE {m.group(1) or ""}INDEX ON "{table}" ', definition)
            for definition, constraint in found]


def _load_partition(run_id: int, items: pd.DataFrame) -> str:
    """The run's items in a table of their own, indexed like the parent, not yet attached: out
    of sight, no lock on the work items. Loaded tables not attached go first: left by a rebuild
    that stopped, or staged by a finish whose install then finds them gone and rebuilds."""
    table = f"{PARENT}_r{int(run_id)}_load"
    with connection.cursor() as cursor:
        for name in _loaded_tables():
            cursor.execute(f'DROP TABLE "{name}"')
        cursor.execute(f'CREATE TABLE "{table}" (LIKE "{PARENT}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)')
        # Lets ATTACH skip its scan of the rows.
        cursor.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT work_item_run CHECK (run_id = {int(run_id)})')
    _write_items(run_id, items, table=table)
    # On two connections, as a run's value indexes (inside a transaction other connections
    # would not see the table: one after the other on this one).
    history.build_indexes([f'CREATE UNIQUE INDEX ON "{table}" (id)', *_partition_index_sql(table)],
                          builders=1 if connection.in_atomic_block else history.INDEX_BUILDERS)
    return table


def _loaded_tables() -> list[str]:
    with connection.cursor() as cursor:
        return history.unattached_tables(cursor, _LOADING)


def _replace_partitions(run_id: int, loaded: str) -> None:
    """In the caller's transaction: every earlier item goes (partitions dropped whole, rows
    written through the ORM deleted) and the loaded table becomes the run's partition. The
    attach checks its foreign keys in one join, where a COPY into the table checked row by row."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # DROP TABLE, as ALTER TABLE, refuses pending checks
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass AND c.relname <> %s", [PARENT, DEFAULT_PARTITION])
        for (name,) in cursor.fetchall():
            cursor.execute(f'DROP TABLE "{name}"')
        cursor.execute(f'DELETE FROM "{DEFAULT_PARTITION}"')
        # The items of a customer deleted since they were found are dropped by the attach.
        partition = f"{PARENT}_r{int(run_id)}"
        cursor.execute(f'ALTER TABLE "{loaded}" RENAME TO "{partition}"')
        history.attach_partition(cursor, PARENT, partition, run_id=run_id)
