"""The run's summary: written once as a run finishes, just before it completes
(valuation.services.finish_run_if_complete; a run that then does not complete keeps none),
read by the dashboard (dashboard.run_figures) for the latest completed run.
"""

from __future__ import annotations

import datetime as dt
import json
import zlib
from decimal import Decimal

import numpy as np
import pandas as pd
from dateutil.relativedelta import relativedelta
from django.db import connection
from django.db.models import (
    BooleanField,
    Count,
    DecimalField,
    ExpressionWrapper,
    F,
    Q,
    QuerySet,
    Sum,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import TruncMonth

from core import copy_text
from core.own_connection import in_background
from core.planner import planner_settings
from customers.models import Customer, SurveyAnswer
from customers.nps import DETRACTOR_MAX, PROMOTER_MIN, window_start
from services.models import ServiceEvent
from services.selectors import CostHistory

from . import history
from .engine.money import to_cents
from .figure_rules import (
    A_TODAY_CLV_SHARE,
    ACTION_COLUMNS,
    ACTION_LIST_LENGTH,
    AT_RISK_P_ALIVE,
    SAMPLE_MODULUS,
    SAMPLE_MULTIPLIER,
    SEGMENT_KEYS,
    SEGMENTS,
    DashboardFilters,
    cockpit_url_template,
    completed_runs,
    default_comparison,
    month_starts,
    scatter_quotas,
    segment_table,
    service_cost_rows,
    whale_pick_ranks,
)
from .models import CustomerValue, RunSummary, RunSummaryCell, RunSummaryView, Segment, ValuationRun, ValueBasis

# --- per-run summaries ------------------------------------------------------------------------------
# Written once as a run finishes (valuation.services.finish_run_if_complete), so that the
# first view of any filter reads a few hundred summed cells and one stored view instead of
# scanning the run's value rows several times (at 1M customers the segment-migration join
# alone took 1.3-1.5 s, the whale-curve window 1.0-1.3 s).
#
# Cells (segment x earlier segment x owner x region x industry) hold everything that sums:
# the segment table, its totals and the migration counts. What does not sum, the whale
# curve, the scatter sample and the work lists, is computed here for every filter the
# dashboard offers: owner, region and industry each fixed or "every", 8 patterns, each
# filter a group of the run's rows. The run's rows are read once (one query) and grouped in
# memory (numpy), with the same orderings, ties and picks as the value-row figures above.
# A view stores no translated text: the whale points, the scatter's points (id, name, number,
# segment, amounts in cents), the work lists' customer ids, service cost per type and month.

FILTER_DIMENSIONS = ("owner_id", "region", "industry")
EVERY = {"owner_id": None, "region": "", "industry": ""}
# Money as integer cents in memory: sums and comparisons are exact, like the database's.
SUMMARY_ROW_COLUMNS = [
    "customer_id",
    "owner_id",
    "region",
    "industry",
    "name",
    "number",
    "status",
    "lost_on",
    "segment",
    "basis",
    "abc_class",
    "p_alive",
    "profit",
    "clv",
    "margin_window",
    "margin_lifetime",
    "value_to_customer",
    "revenue_window",
]
CENTS_COLUMNS = ["profit", "clv", "margin_window", "margin_lifetime", "value_to_customer", "revenue_window"]
_TEXT_COLUMNS = ("region", "industry", "status", "lost_on", "segment", "basis", "abc_class")


def write_run_summary(
    *, run_id: int, rows: dict[str, np.ndarray] | None = None, values: dict[str, np.ndarray] | None = None,
    service_costs=None,
) -> dict[str, np.ndarray]:
    """The run's summary cells and filter views; replaces any earlier summary of the run.

    Everything comes from the run's rows read once (summary_rows; pass them if at hand) and,
    for the migration counts, the earlier run's segments: cells and views are grouped in
    memory. Returns the rows, for the other figures the finish derives from them (work
    items, cross-sell peers). ``values``: the run's value columns when at hand (summary_rows).
    ``service_costs``: service_cost_views of the run being read
    elsewhere (a future; its ``result()`` is asked for once the views are grouped)."""
    from django.db import transaction

    run = ValuationRun.objects.get(pk=run_id)
    # A run of the same as-of date is replaced by this one right after: never the comparison.
    earlier = default_comparison(
        [run, *(other for other in completed_runs() if other.pk != run.pk and other.as_of != run.as_of)]
    )
    # The earlier run's segments on a connection of their own while this one reads the run's rows.
    earlier_segments = in_background(lambda: _segments_of(earlier)) if earlier is not None else None
    if rows is None:
        rows = summary_rows(run=run, values=values)
    before = _segments_before(rows["customer_id"], earlier_segments.result()) if earlier_segments is not None else None
    nps_by_segment = segment_nps_counts(rows=rows, as_of=run.as_of)
    with transaction.atomic():
        RunSummaryCell.objects.filter(run=run).delete()
        RunSummaryView.objects.filter(run=run).delete()
        RunSummaryCell.objects.bulk_create(summary_cell_rows(run=run, rows=rows, before=before), batch_size=2000)
        views = filter_views(
            rows=rows,
            horizon_months=run.engine_settings.horizon_months,
            classic_value=run.engine_settings.classic_value,
        )
        costs_by_view = service_costs.result() if service_costs is not None else service_cost_views(as_of=run.as_of)
        for key, costs in costs_by_view.items():
            views.setdefault(key, empty_view())["service_cost"] = costs
        RunSummaryView.objects.bulk_create(
            (
                RunSummaryView(run=run, owner_id=owner_id, region=region, industry=industry, packed=pack(figures))
                for (owner_id, region, industry), figures in views.items()
            ),
            batch_size=50,
        )
        del views
        RunSummary.objects.update_or_create(run=run, defaults={"earlier": earlier, "nps_by_segment": nps_by_segment})
        drop_other_summaries(run_id=run.pk)
    return rows


def segment_nps_counts(*, rows: dict[str, np.ndarray], as_of: dt.date) -> dict[str, dict[str, int]]:
    """Per segment of the run's rows: promoters, passives and detractors among their customers'
    answers of the 12 months up to the run's date. The answers are read once (from their
    date index alone) and given their customer's segment from the rows in memory: the same
    join in SQL, a year's answers to a million value rows, took a second on every dashboard
    refresh."""
    answers = SurveyAnswer.objects.filter(answered_on__gt=window_start(as_of), answered_on__lte=as_of)
    sql, params = answers.values_list("customer_id", "score").order_by().query.sql_with_params()
    with connection.cursor() as cursor:  # plain tuples: the ORM's per-row work doubled the time
        cursor.execute(sql, params)
        pairs = np.array(cursor.fetchall(), dtype=np.int64).reshape(-1, 2)
    order = np.argsort(rows["customer_id"], kind="stable")
    valued = rows["customer_id"][order]
    if not len(valued) or not len(pairs):
        return {}
    at, found = _find_sorted(valued, pairs[:, 0])  # answers of customers the run did not value count nowhere
    codes, segments = pd.factorize(rows["segment"][order][at[found]])
    scores = pairs[found, 1]
    kind = np.where(scores >= PROMOTER_MIN, 0, np.where(scores <= DETRACTOR_MAX, 2, 1))
    counts = np.bincount(codes * 3 + kind, minlength=3 * len(segments)).reshape(-1, 3)
    return {
        str(segment): {"promoters": int(row[0]), "passives": int(row[1]), "detractors": int(row[2])}
        for segment, row in zip(segments, counts, strict=True)
    }


def drop_other_summaries(*, run_id: int) -> None:
    """When the run is the latest completed run, every other run's summary goes.

    The dashboard shows the latest run only: older runs' summaries (their views hold the
    scatter points, up to ~100 MB at a million customers) go; such a run's figures, if it
    were ever shown again, come from its value rows. The nightly finish writes a run's summary
    before the run completes and calls this once it has."""
    latest = completed_runs(limit=1)
    if latest and latest[0].pk == run_id:
        for model in (RunSummaryView, RunSummaryCell, RunSummary):
            model.objects.exclude(run_id=run_id).delete()


def drop_summary(*, run_id: int) -> None:
    """The run's own summary, of a run that did not complete after it was written."""
    from django.db import transaction

    with transaction.atomic():
        for model in (RunSummaryView, RunSummaryCell, RunSummary):
            model.objects.filter(run_id=run_id).delete()


class EncodedJson(str):
    """A value already written as compact JSON text (a view's scatter points, see filter_views)."""


_ENCODED = "\x00encoded\x00"  # a stand-in no figure holds: json.dumps escapes it as \u0000


def pack(figures: dict) -> bytes:
    """A view's figures as stored: compact JSON, compressed. At a million customers the views
    hold ~60 MB of scatter points as JSON; as jsonb PostgreSQL spent longer parsing and
    compressing them than the rest of the summary took. Values given as EncodedJson go in as
    they are: the same text json.dumps would write for them."""
    encoded = [value for value in figures.values() if isinstance(value, EncodedJson)]
    if not encoded:
        return zlib.compress(json.dumps(figures, separators=(",", ":")).encode(), 1)
    plain = {key: _ENCODED if isinstance(value, EncodedJson) else value for key, value in figures.items()}
    parts = json.dumps(plain, separators=(",", ":")).split(json.dumps(_ENCODED))
    text = parts[0] + "".join(value + part for value, part in zip(encoded, parts[1:], strict=True))
    return zlib.compress(text.encode(), 1)


def _json_texts(column: np.ndarray) -> list[str]:
    """Each value of a column as json.dumps writes it (strings through the same escaping)."""
    escape = json.encoder.encode_basestring_ascii
    values = column.tolist()
    if column.dtype.kind in "iu":
        return list(map(str, values))
    return [escape(value) if type(value) is str else json.dumps(value) for value in values]


def unpack(packed: bytes | memoryview) -> dict:
    return json.loads(zlib.decompress(bytes(packed)))


def summary_cell_rows(*, run: ValuationRun, rows: dict[str, np.ndarray], before: np.ndarray | None) -> list:
    """RunSummaryCell per segment x earlier segment ("" when the customer was not in the earlier
    run, or there is none) x owner x region x industry: the run's rows summed in cents."""
    n = len(rows["customer_id"])
    if not n:
        return []
    profit = rows["profit"]

    def text(values: np.ndarray) -> pd.Series:  # kept as str objects: not converted to Arrow text
        return pd.Series(values, dtype=object, copy=False)

    frame = pd.DataFrame(
        {
            "segment": text(rows["segment"]),
            "before": text(before if before is not None else np.full(n, "", dtype=object)),
            "owner_id": rows["owner_id"],
            "region": text(rows["region"]),
            "industry": text(rows["industry"]),
            "customers": np.ones(n, dtype=np.int64),
            **{key: rows[column] for key, column in CELL_SUMS.items()},
            "profitable": (profit > 0).astype(np.int64),
            "unprofitable": (profit < 0).astype(np.int64),
        }
    )
    sums = frame.groupby(["segment", "before", "owner_id", "region", "industry"], sort=False).sum()
    cells = []
    for (segment, before_segment, owner_id, region, industry), row in zip(
        sums.index.tolist(), sums.itertuples(index=False, name=None), strict=True
    ):
        values = dict(zip(sums.columns, row, strict=True))
        cells.append(
            RunSummaryCell(
                run=run,
                segment=segment,
                before_segment=before_segment,
                owner_id=int(owner_id) or None,
                region=region,
                industry=industry,
                customers=int(values["customers"]),
                profitable=int(values["profitable"]),
                unprofitable=int(values["unprofitable"]),
                **{key: Decimal(int(values[key])).scaleb(-2) for key in CELL_SUMS},
            )
        )
    return cells


# The cells' money sums and the rows' columns (cents) they sum.
CELL_SUMS = {
    "revenue": "revenue_window",
    "margin": "margin_window",
    "service_cost": "value_to_customer",
    "clv": "clv",
    "profit": "profit",
}


def _segments_of(run: ValuationRun) -> tuple[np.ndarray, np.ndarray]:
    """A run's customer ids (sorted) and their segments: one query."""
    sql = f"SELECT customer_id, segment FROM {CustomerValue._meta.db_table} WHERE run_id = {int(run.pk)}"
    if connection.vendor == "postgresql":
        frame = pd.read_csv(
            copy_text.copy_out_csv(sql),
            names=["customer_id", "segment"],
            keep_default_na=False,
            dtype={"customer_id": np.int64, "segment": "category"},
        )
        ids, segments = frame["customer_id"].to_numpy(), _objects(frame["segment"])
    else:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            records = cursor.fetchall()
        ids = np.asarray([r[0] for r in records], dtype=np.int64)
        segments = np.asarray([r[1] for r in records], dtype=object)
    order = np.argsort(ids, kind="stable")
    return ids[order], segments[order]


def _segments_before(customer_ids: np.ndarray, earlier: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Each customer's segment in the earlier run (_segments_of), "" where it was not in it."""
    ids, segments = earlier
    at, found = _find_sorted(ids, customer_ids)
    before = np.full(len(customer_ids), "", dtype=object)
    before[found] = segments[at[found]]
    return before


def _find_sorted(sorted_ids: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each of ``wanted`` stands in ``sorted_ids``, and whether it is there at all."""
    if not len(sorted_ids):
        return np.zeros(len(wanted), dtype=np.intp), np.zeros(len(wanted), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_ids, wanted), len(sorted_ids) - 1)
    return at, sorted_ids[at] == wanted


_MONEY_COLUMNS = {
    "profit": "profit_after_services",
    "clv": "clv",
    "margin_window": "margin_window",
    "margin_lifetime": "margin_lifetime",
    "value_to_customer": "value_to_customer",
    "revenue_window": "revenue_window",
}
_VALUE_COLUMNS = ["customer_id", "segment", "basis", "abc_class", "p_alive", *CENTS_COLUMNS]
_CUSTOMER_COLUMNS = ["customer_id", "owner_id", "region", "industry", "name", "number", "status", "lost_on"]


def summary_rows(*, run: ValuationRun, values: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """The run's value rows with their customer's owner, region, industry, name, number, status
    and lost date, sorted by customer id, money as integer cents. The summary, the work items
    and the cross-sell peers all take their figures from these rows.

    PostgreSQL sends the value rows and the customers as CSV through COPY (a million rows in
    seconds; row by row through the driver took ~6 times longer), the customers on a
    connection of their own at the same time; they are joined here, as the query's inner join
    would (the join in the query took ~2 s longer at a million rows, on one core).

    ``values``: the run's value columns as written_values gives them from the frame the run
    wrote (an in-process run keeps them from its prepare): then only the customers are read.
    SQLite joins in one query and reads the rows either way."""
    if connection.vendor != "postgresql":
        return _summary_rows_joined_in_sql(_values_sql(run))
    customers = in_background(_customer_columns)
    if values is None:
        values = _read_values(run)
    by_id = customers.result()
    at, found = _find_sorted(by_id["customer_id"], values["customer_id"])  # values are sorted by customer id
    at = at[found]  # a customer deleted meanwhile: no row, as with the join
    return {name: by_id[name][at] if name in by_id and name != "customer_id" else values[name][found]
            for name in SUMMARY_ROW_COLUMNS}


def _values_sql(run: ValuationRun) -> str:
    cents = ", ".join(f"CAST(ROUND({column} * 100) AS BIGINT) AS {name}" for name, column in _MONEY_COLUMNS.items())
    # The run's own table (history.run_table): the finish reads it while its indexes are built,
    # before it is attached to the value table.
    return (f"SELECT customer_id, segment, basis, abc_class, p_alive, {cents} "
            f"FROM {history.run_table(run_id=run.pk)} WHERE run_id = {int(run.pk)}")


def _read_values(run: ValuationRun) -> dict[str, np.ndarray]:
    """The run's value columns (_VALUE_COLUMNS) from its written rows, sorted by customer id."""
    # Empty strings stay strings (a region may be ""); only P(alive) may be NULL. Few distinct
    # values: read as categories, each row then refers to one shared string (a million rows of
    # str objects per column took ~50 MB each).
    frame = pd.read_csv(
        copy_text.copy_out_csv(_values_sql(run)),
        names=_VALUE_COLUMNS,
        keep_default_na=False,
        na_values={"p_alive": [""]},
        dtype={"customer_id": np.int64, "p_alive": np.float64, **dict.fromkeys(CENTS_COLUMNS, np.int64),
               **dict.fromkeys(("segment", "basis", "abc_class"), "category")},
    )
    order = np.argsort(frame["customer_id"].to_numpy(), kind="stable")
    return {name: (_objects(frame[name]) if name in _TEXT_COLUMNS else frame[name].to_numpy())[order]
            for name in _VALUE_COLUMNS}


def _objects(column: pd.Series) -> np.ndarray:
    """A text column read by read_csv (with no missing values) as a numpy array of str, as the
    figures are grouped and written: a category through its codes, each row then refers to its
    category's one string. pandas 3 holds text in Arrow arrays; converting a million rows back
    cost about 0.5 CPU-s of the customers' read (1.7-1.9 CPU-s, read this way 1.2-1.4)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes = column.cat.codes.to_numpy()
        if len(codes) and codes.min() < 0:  # -1 would silently pick the last category
            raise ValueError(f"{column.name}: missing values where text was expected")
        return column.cat.categories.to_numpy(dtype=object)[codes]
    return column.to_numpy(dtype=object)


def written_values(frame: pd.DataFrame) -> dict[str, np.ndarray] | None:
    """summary_rows' value columns of the rows a run writes from ``frame`` (the scored
    customers, indexed by customer id, in the value table's column names), as _read_values
    reads them back: money in the cents the write rounds to (engine.money.to_cents), P(alive)
    NaN where the row holds NULL, each text shared by the rows that have it. At 1M customers
    reading them back took about 9 s of the finish, beside the index builds.

    None where they would not be what is read back: on SQLite (summary_rows joins in one
    query there) and when an amount is not finite (it is written as numeric NaN, which the
    read back refuses: the run then fails in its finish however it was run)."""
    if connection.vendor != "postgresql":
        return None
    money = {name: frame[column].to_numpy(dtype=np.float64) for name, column in _MONEY_COLUMNS.items()}
    if not all(np.isfinite(amounts).all() for amounts in money.values()):
        return None
    order = np.argsort(frame.index.to_numpy(dtype=np.int64), kind="stable")
    values = {"customer_id": frame.index.to_numpy(dtype=np.int64)[order],
              "p_alive": frame["p_alive"].to_numpy(dtype=np.float64)[order]}
    for name in ("segment", "basis", "abc_class"):
        codes, labels = pd.factorize(frame[name].to_numpy(), use_na_sentinel=False)
        values[name] = np.asarray([str(label) for label in labels], dtype=object)[codes[order]]
    for name, amounts in money.items():
        values[name] = to_cents(amounts)[order]
    return values


def _customer_columns() -> dict[str, np.ndarray]:
    """Every customer's owner, region, industry, name, number, status and lost date, sorted by id."""
    # ISO text whatever the server's DateStyle (a German DateStyle would write 31.12.2025).
    frame = pd.read_csv(
        copy_text.copy_out_csv(
            "SELECT id, COALESCE(owner_id, 0), region, industry, name, number, status, "
            f"COALESCE(to_char(lost_on, 'YYYY-MM-DD'), '') FROM {Customer._meta.db_table}"
        ),
        names=_CUSTOMER_COLUMNS,
        keep_default_na=False,
        # Names and numbers as Python strings straight away (object), not as Arrow text.
        dtype={"customer_id": np.int64, "owner_id": np.int64, "name": object, "number": object,
               **dict.fromkeys(("region", "industry", "status", "lost_on"), "category")},
    )
    order = np.argsort(frame["customer_id"].to_numpy(), kind="stable")
    return {
        name: (_objects(frame[name]) if name not in ("customer_id", "owner_id") else frame[name].to_numpy())[order]
        for name in _CUSTOMER_COLUMNS
    }


def _summary_rows_joined_in_sql(values_sql: str) -> dict[str, np.ndarray]:
    """summary_rows where the database is not PostgreSQL: one query joining the customers."""
    sql = f"""
        SELECT v.customer_id, COALESCE(c.owner_id, 0), c.region, c.industry, c.name, c.number, c.status,
               COALESCE(c.lost_on, ''), v.segment, v.basis, v.abc_class, v.p_alive, {', '.join(f"v.{c}" for c in CENTS_COLUMNS)}
        FROM ({values_sql}) v JOIN {Customer._meta.db_table} c ON c.id = v.customer_id
        ORDER BY v.customer_id
    """
    with connection.cursor() as cursor:
        cursor.execute(sql)
        records = cursor.fetchall()
    columns = list(zip(*records, strict=True)) if records else [()] * len(SUMMARY_ROW_COLUMNS)
    rows: dict[str, np.ndarray] = {}
    for name, column in zip(SUMMARY_ROW_COLUMNS, columns, strict=True):
        if name in CENTS_COLUMNS or name in ("customer_id", "owner_id"):
            rows[name] = np.asarray(column, dtype=np.int64)
        elif name == "p_alive":
            rows[name] = pd.to_numeric(pd.Series(column, dtype=object), errors="coerce").to_numpy(dtype=np.float64)
        else:
            rows[name] = np.asarray(column, dtype=object)
    return rows


def worklist_frames(rows: dict[str, np.ndarray]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The run's values and customers as worklist.rebuild_work_items reads them from the
    database (money as floats of the stored cents, status and lost date by customer id)."""
    index = pd.Index(rows["customer_id"], name="customer_id")
    values = pd.DataFrame(
        {
            "segment": rows["segment"],
            "clv": rows["clv"] / 100.0,
            "p_alive": rows["p_alive"],
            **{
                name: rows[column] / 100.0
                for name, column in (
                    ("value_to_customer", "value_to_customer"),
                    ("margin_window", "margin_window"),
                    ("margin_lifetime", "margin_lifetime"),
                    ("profit_after_services", "profit"),
                )
            },
        },
        index=index,
    )
    lost_on = [value or None for value in rows["lost_on"].tolist()]
    customers = pd.DataFrame({"status": rows["status"], "lost_on": lost_on}, index=index)
    return values, customers


def peer_counts(rows: dict[str, np.ndarray]) -> dict[tuple[str, str], int]:
    """Customers of the run per (industry, ABC class), customers without an industry left out."""
    frame = pd.DataFrame({"industry": rows["industry"], "abc_class": rows["abc_class"]})
    counts = frame[frame["industry"] != ""].value_counts()
    return {(industry, abc): int(n) for (industry, abc), n in counts.items()}


def empty_view() -> dict:
    return {"whale": [], "scatter": [], "actions": {name: [] for name in ACTION_LISTS}, "service_cost": []}


ACTION_LISTS = ("unprofitable", "renegotiate", "win_back", "a_today_c_tomorrow")


def filter_patterns() -> list[tuple[str, ...]]:
    """Which dimensions a filter fixes: none, each one, each pair, all three."""
    return [tuple(d for k, d in enumerate(FILTER_DIMENSIONS) if mask >> k & 1) for mask in range(8)]


def _group(
    codes: dict[str, np.ndarray], rows: dict[str, np.ndarray], pattern: tuple[str, ...]
) -> tuple[np.ndarray, list[tuple]]:
    """Each row's filter group under the pattern (-1: no filter reaches it, as a fixed dimension
    is empty: no owner, no region) and the groups' (owner_id, region, industry) keys."""
    n = len(rows["customer_id"])
    reachable = np.ones(n, dtype=bool)
    combined = np.zeros(n, dtype=np.int64)
    for dimension in pattern:
        code, distinct = codes[dimension]
        reachable &= code >= 0
        combined = combined * (distinct + 1) + code
    _codes, first, inverse = np.unique(combined[reachable], return_index=True, return_inverse=True)
    group = np.full(n, -1, dtype=np.int64)
    group[reachable] = inverse
    rows_of_first = np.flatnonzero(reachable)[first]
    keys = [
        tuple(_plain(rows[d][row]) if d in pattern else EVERY[d] for d in FILTER_DIMENSIONS) for row in rows_of_first
    ]
    return group, keys


def _plain(value):
    return int(value) if isinstance(value, np.integer) else value


def _dimension_codes(rows: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, int]]:
    """Per filter dimension: each row's value as a code (-1 for none or empty) and how many."""
    codes = {}
    for dimension in FILTER_DIMENSIONS:
        values = rows[dimension]
        code, distinct = pd.factorize(values)
        empty = [k for k, value in enumerate(distinct) if value is None or value == "" or value == 0]
        code = code.astype(np.int64)
        code[np.isin(code, empty)] = -1
        codes[dimension] = (code, len(distinct))
    return codes


def _top_per_group(order: np.ndarray, group_of_row: np.ndarray, groups: int, limit: int | None) -> list[np.ndarray]:
    """Rows (indices, in `order`'s order) per group, the first `limit` of each (all if None)."""
    keys = group_of_row[order]
    if groups <= np.iinfo(np.int16).max:  # numpy sorts small integers stably by radix: ~7x faster
        keys = keys.astype(np.int16)
    by_group = order[np.argsort(keys, kind="stable")]
    bounds = np.searchsorted(group_of_row[by_group], np.arange(groups + 1))
    return [
        by_group[bounds[g] : bounds[g + 1] if limit is None else min(bounds[g + 1], bounds[g] + limit)]
        for g in range(groups)
    ]


def filter_views(*, rows: dict[str, np.ndarray], horizon_months: int, classic_value: str = "clv") -> dict[tuple, dict]:
    """{(owner_id, region, industry): figures} for every reachable filter of the run's rows.

    The same figures as whale_curve, scatter_sample and action_lists on the filter's value rows.
    """
    ids, profit = rows["customer_id"], rows["profit"]
    segment_codes = {s.value: k for k, s in enumerate(SEGMENTS)}
    segment = pd.Index(list(segment_codes)).get_indexer(pd.Index(rows["segment"], dtype=object)).astype(np.int64)
    segment[segment < 0] = len(SEGMENTS)
    sample_key = (ids.astype(np.uint64) * np.uint64(SAMPLE_MULTIPLIER)) % np.uint64(SAMPLE_MODULUS)
    at_stake = np.maximum(rows["clv"], rows["margin_lifetime"])
    share_above, share_below = A_TODAY_CLV_SHARE.as_integer_ratio()
    shortfall_twelfths = rows["margin_window"] * horizon_months - 12 * rows["clv"]  # (expected - clv) x 12
    orders = {
        "whale": np.lexsort((ids, -profit)),
        "unprofitable": _ordered(profit < 0, (ids, profit)),
        "renegotiate": _ordered(
            (rows["segment"] == Segment.PROBLEM.value) & (rows["basis"] != ValueBasis.LOST.value),
            (ids, -rows["value_to_customer"]),
        ),
        "win_back": _ordered((rows["p_alive"] < AT_RISK_P_ALIVE) & (at_stake > 0), (ids, -at_stake)),
        # clv < expected x share with expected = margin_window x horizon / 12, in whole cents.
        "a_today_c_tomorrow": _ordered(
            (rows["abc_class"] == "A")
            & (rows["clv"] * 12 * share_below < rows["margin_window"] * horizon_months * share_above),
            (ids, -shortfall_twelfths),
        ),
    }
    by_id = np.argsort(ids, kind="stable")
    # A scatter point as the page draws it: id, name, number, segment, amounts in cents. Each
    # point is written as JSON once, when a view first samples it (a row is in up to 8 views),
    # and a view's points are joined as text: building and encoding the points as lists took
    # ~6 s at a million customers.
    point_columns = [
        ids,
        rows["name"],
        rows["number"],
        rows["segment"],
        rows[classic_value if classic_value in CENTS_COLUMNS else "clv"],
        rows["value_to_customer"],
    ]
    point_json = np.empty(len(ids), dtype=object)

    def scatter_json(chosen: np.ndarray) -> EncodedJson:
        new = chosen[point_json[chosen] == None]  # noqa: E711 (elementwise)
        if len(new):
            texts = [_json_texts(column[new]) for column in point_columns]
            point_json[new] = ["[" + ",".join(point) + "]" for point in zip(*texts, strict=True)]
        return EncodedJson("[" + ",".join(point_json[chosen].tolist()) + "]")

    codes = _dimension_codes(rows)
    views: dict[tuple, dict] = {}
    for pattern in filter_patterns():
        group, keys = _group(codes, rows, pattern)
        n_groups = len(keys)
        if not n_groups:
            continue
        in_group = group >= 0
        sizes = np.bincount(group[in_group], minlength=n_groups)
        positive = np.bincount(group[in_group & (profit > 0)], minlength=n_groups)
        per_segment = np.bincount(
            group[in_group] * (len(SEGMENTS) + 1) + segment[in_group], minlength=n_groups * (len(SEGMENTS) + 1)
        ).reshape(n_groups, -1)
        limits = np.zeros((n_groups, len(SEGMENTS) + 1), dtype=np.uint64)
        for g in range(n_groups):
            shares = scatter_quotas({s.value: int(per_segment[g, k]) for k, s in enumerate(SEGMENTS)})
            for s, share in shares.items():
                limits[g, segment_codes[s]] = SAMPLE_MODULUS if share >= 1 else int(share * SAMPLE_MODULUS)
        sampled = in_group.copy()
        sampled[in_group] = sample_key[in_group] < limits[group[in_group], segment[in_group]]
        scatter = _top_per_group(by_id[sampled[by_id]], group, n_groups, None)  # ids ascending
        whale = _top_per_group(orders["whale"][in_group[orders["whale"]]], group, n_groups, None)
        actions = {
            name: _top_per_group(orders[name][in_group[orders[name]]], group, n_groups, ACTION_LIST_LENGTH)
            for name in ACTION_LISTS
        }
        for g, key in enumerate(keys):
            cumulative = np.cumsum(profit[whale[g]])
            ranks = whale_pick_ranks(int(sizes[g]), int(positive[g]))
            views[key] = {
                "whale": [[rank, str(Decimal(int(cumulative[rank - 1])).scaleb(-2))] for rank in ranks],
                "scatter": scatter_json(scatter[g]),
                "actions": {name: ids[actions[name][g]].tolist() for name in ACTION_LISTS},
                "service_cost": [],
            }
    return views


def _ordered(mask: np.ndarray, keys: tuple[np.ndarray, ...]) -> np.ndarray:
    """Indices of the rows in `mask`, sorted by the last key, then the ones before (lexsort)."""
    chosen = np.flatnonzero(mask)
    return chosen[np.lexsort(tuple(key[chosen] for key in keys))]


def service_cost_views(*, as_of: dt.date) -> dict[tuple, list]:
    """The service cost views of a run as of that day (_service_cost_views over its months)."""
    return _service_cost_views(months=month_starts(today=as_of))


def _service_cost_views(*, months: list[dt.date]) -> dict[tuple, list]:
    """Service cost per type and month for every reachable filter: {(owner, region, industry):
    [[type id, month, cost, events], ...]}, each event valued at the cost valid on its day.

    One grouped query: the cost history (a handful of rows) becomes a CASE on type and day
    (CostHistory.unit_cost_expression), so the database sums quantity x cost per customer
    group, type and month.

    PostgreSQL reckons the groups as owners x regions x industries x types x months (1.3M at
    a million customers, against 11,520 found) and sorted the 1.3M events for them, spilling
    138 MB, in three processes: 3.9 s on both cores. Hashed in one process the same groups
    take 3.2 s of one core, which the finish's other reads beside it then have.
    """
    unit_cost = CostHistory.load().unit_cost_expression()
    end = months[-1] + relativedelta(months=1)
    rows = (
        ServiceEvent.objects.filter(date__gte=months[0], date__lt=end)
        .order_by()
        .values(
            owner=F("customer__owner_id"),
            region=F("customer__region"),
            industry=F("customer__industry"),
            type_id=F("service_type_id"),
            month=TruncMonth("date"),
        )
        .annotate(
            cost=Sum(
                ExpressionWrapper(F("quantity") * unit_cost, output_field=DecimalField(max_digits=20, decimal_places=4))
            ),
            events=Count("pk"),
        )
        .values_list("owner", "region", "industry", "type_id", "month", "cost", "events")
    )
    with planner_settings(max_parallel_workers_per_gather="0", enable_sort="off", work_mem="'64MB'"):
        rows = list(rows)
    sums: dict[tuple, dict[tuple, list]] = {}
    for owner, region, industry, type_id, month, cost, events in rows:
        month = month.date() if isinstance(month, dt.datetime) else month
        cost = Decimal(cost).quantize(Decimal("0.0001"))
        fields = {"owner_id": owner, "region": region, "industry": industry}
        for pattern in filter_patterns():
            if any(fields[d] in (None, "") for d in pattern):
                continue
            key = tuple(fields[d] if d in pattern else EVERY[d] for d in FILTER_DIMENSIONS)
            total = sums.setdefault(key, {}).setdefault((type_id, month), [Decimal("0.0000"), 0])
            total[0] += cost
            total[1] += events
    return {
        # In type and month order, whichever order the plan gave the groups in.
        key: [[type_id, month.isoformat(), str(cost), events] for (type_id, month), (cost, events) in sorted(totals.items())]
        for key, totals in sums.items()
    }


def summary_view(*, run: ValuationRun, filters: DashboardFilters) -> dict:
    """The stored figures of the filter (empty for a filter without customers): one query."""
    owner = Q(owner_id__isnull=True) if filters.owner_id is None else Q(owner_id=filters.owner_id)
    packed = (
        RunSummaryView.objects.filter(owner, run=run, region=filters.region, industry=filters.industry)
        .values_list("packed", flat=True)
        .first()
    )
    return (unpack(packed) if packed else None) or empty_view()  # a stored {} (an empty view) too


def unpack_view(view: dict, *, run: ValuationRun, classic_value: str, horizon_months: int) -> dict:
    """Scatter, whale, work lists and service cost of a view: one query for the work lists'
    at most 4 x ACTION_LIST_LENGTH value rows (by id), one for the service types."""
    listed = sorted(set().union(*view["actions"].values()))
    records = (
        {record["customer_id"]: record for record in shown_values(run=run, customer_ids=listed).values(*ACTION_COLUMNS)}
        if listed
        else {}
    )
    horizon_factor = Decimal(horizon_months) / Decimal(12)
    template = cockpit_url_template()
    actions = {}
    for name, ids in view["actions"].items():
        rows = []
        for customer_id in ids:
            if customer_id not in records:  # deleted since the run: listed until the next run
                continue
            record = dict(records[customer_id])
            record["name"] = record.pop("customer__name")
            record["number"] = record.pop("customer__number")
            record["url"] = template.replace("{id}", str(customer_id))
            record["expected_margin"] = record["margin_window"] * horizon_factor
            rows.append(record)
        actions[name] = rows
    # The scatter's points are stored whole: reading 5,000 sampled rows by id from a million
    # took ~0.8 s of random reads at a million customers.
    scatter = [
        (*stored[:4], Decimal(stored[4]).scaleb(-2), Decimal(stored[5]).scaleb(-2)) for stored in view["scatter"]
    ]
    return {
        "scatter": scatter,
        "whale": [(rank, Decimal(cumulative)) for rank, cumulative in view["whale"]],
        "actions": actions,
        "service_cost": service_cost_rows(
            [
                (type_id, dt.date.fromisoformat(month), Decimal(cost), events)
                for type_id, month, cost, events in view["service_cost"]
            ]
        ),
    }


def shown_values(*, run: ValuationRun, customer_ids: list[int]) -> QuerySet[CustomerValue]:
    """The run's value rows of these customers, through the (run, customer) index.

    PostgreSQL gets the ids as one array parameter: 5,000 ids as an IN list of parameters took
    3-5 times longer to send and plan than the index probes themselves.
    """
    values = CustomerValue.objects.filter(run=run).order_by()
    if connection.vendor == "postgresql":
        table = CustomerValue._meta.db_table
        return values.filter(RawSQL(f'"{table}"."customer_id" = ANY(%s)', [customer_ids], output_field=BooleanField()))
    return values.filter(customer_id__in=customer_ids)


def summary_cells(*, run: ValuationRun, filters: DashboardFilters) -> tuple[list[dict], dict, dict]:
    """Segment table, totals and migration counts {(before, now): customers} of the filter's
    cells: one grouped query over the run's summary cells."""
    rows = (
        RunSummaryCell.objects.filter(filters.customer_q(prefix=""), run=run)
        .order_by()
        .values("segment", "before_segment")
        .annotate(**{key: Sum(key) for key in SEGMENT_KEYS})
    )
    by_segment: dict[str, dict] = {}
    pairs: dict[tuple[str, str], int] = {}
    for row in rows:
        sums = by_segment.setdefault(row["segment"], dict.fromkeys(SEGMENT_KEYS, 0))
        for key in SEGMENT_KEYS:
            sums[key] += row[key]
        if row["before_segment"]:
            pairs[(row["before_segment"], row["segment"])] = row["customers"]
    segments, totals = segment_table(by_segment)
    return segments, totals, pairs
