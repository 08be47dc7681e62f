"""Cross-sell: what customers like this one buy (seed text 001: "welche anderen Produkte an
dieselbe Art von Kunden verkauft werden könnten").

Peers are the customers of the same industry and size class (the run's ABC class by window
margin). One grouped query over the window's transactions counts per peer group and
product/category how many peers bought it and their margin (PeerCategory): the nightly run
does it once the classes are known, before its rows are written (peer_figures), and keeps the
figures of its latest run only.
A customer's hints are the categories at least MIN_SHARE of its peers bought in the window
and it never bought, ordered by share x margin per buyer: the cockpit reads a handful of rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pandas as pd
from django.db import connection, transaction
from django.db.models import Count

from core import copy_text
from customers.models import Customer, Transaction

from . import history
from .models import CustomerValue, PeerCategory
from .selectors import completed_runs_newest_first, window_start

MIN_SHARE = 0.25
MIN_PEERS = 5
HINTS = 3


def peer_category_sums(*, run_id: int, as_of, window_months: int) -> list[tuple]:
    """(industry, ABC class, category, buyers, margin) of the run's customers: what they bought
    in the window, one grouped query over the window's transactions.

    A customer belongs to one peer group, so the buyers of a category are its (customer,
    category) pairs: the window's rows are first summed per customer and category, then per
    group. On PostgreSQL the first step reads the transactions in customer order from the
    (customer, date) index, so each customer's few rows are sorted on their own (incremental
    sort) and nothing spills: at 1M customers / 9.1M window rows the former COUNT(DISTINCT
    customer) sorted all 9.1M rows by the group's text (~640 MB on disk, 43-84 s against a
    13 s scan floor; this one 32 s). It runs without parallel workers (they each repeated the
    first step: 46 s) and without JIT, so that it uses one core beside the run's own work.

    On PostgreSQL the run's own partition is read (valuation/history.py), so that the query
    holds no lock on the value table while the finish drops an older run's partition."""
    classes = f"(SELECT customer_id, abc_class FROM {history.run_table(run_id=run_id)} WHERE run_id = {int(run_id)})"
    with transaction.atomic(), connection.cursor() as cursor:
        return _grouped_sums(cursor, classes=classes, as_of=as_of, window_months=window_months)


@dataclass
class PeerFigures:
    sums: list[tuple]  # peer_category_sums' rows
    peers: dict[tuple[str, str], int]  # customers per (industry, ABC class), industry given


# Where peer_figures puts the run's classes: a temporary table, seen by its connection only.
_CLASSES_TABLE = "valuation_peer_classes"


def peer_figures(*, classes: pd.Series, as_of, window_months: int) -> PeerFigures:
    """peer_category_sums and the peer counts of customers whose ABC classes are known but
    not written yet (``classes``: ABC class by customer id): the nightly run finds them while
    it fits and scores, when the server has nothing else to do, and stores them with the run
    (store_peer_categories), so its finish does not scan the window's transactions again."""
    postgres = connection.vendor == "postgresql"
    ids = classes.index.to_numpy(dtype=np.int64)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {_CLASSES_TABLE}")
        cursor.execute(f"CREATE TEMPORARY TABLE {_CLASSES_TABLE} (customer_id bigint, abc_class varchar(1))")
        if postgres:
            if len(ids):
                with copy_text.copy_into(cursor, _CLASSES_TABLE, ["customer_id", "abc_class"]) as copy:
                    copy.write(copy_text.block([copy_text.integers(ids), copy_text.strings(classes.to_numpy(dtype=str))]))
            cursor.execute(f"ANALYZE {_CLASSES_TABLE}")  # a temporary table has no statistics otherwise
        else:
            cursor.executemany(f"INSERT INTO {_CLASSES_TABLE} VALUES (%s, %s)",
                               list(zip(ids.tolist(), classes.astype(str).tolist(), strict=True)))
        sums = _grouped_sums(cursor, classes=_CLASSES_TABLE, as_of=as_of, window_months=window_months)
        cursor.execute(
            f"SELECT c.industry, v.abc_class, COUNT(*) FROM {_CLASSES_TABLE} v "
            f"JOIN {Customer._meta.db_table} c ON c.id = v.customer_id WHERE c.industry <> '' GROUP BY c.industry, v.abc_class"
        )
        peers = {(industry, abc): count for industry, abc, count in cursor.fetchall()}
        cursor.execute(f"DROP TABLE {_CLASSES_TABLE}")
    return PeerFigures(sums=sums, peers=peers)


def _grouped_sums(cursor, *, classes: str, as_of, window_months: int) -> list[tuple]:
    """peer_category_sums' query with the customers' ABC classes read from ``classes`` (a table
    or subquery of customer_id, abc_class), in the caller's transaction."""
    t, c = Transaction._meta.db_table, Customer._meta.db_table
    postgres = connection.vendor == "postgresql"
    # Sorting by byte order (COLLATE "C") compares cheaply; it groups the same values.
    product = 'product COLLATE "C"' if postgres else "product"
    sql = f"""
        SELECT c.industry, v.abc_class, x.product, COUNT(*), SUM(x.margin)
        FROM (
            SELECT customer_id, {product} AS product, SUM(revenue - cost_of_goods) AS margin
            FROM {t}
            WHERE date > %s AND date <= %s AND product <> ''
            GROUP BY customer_id, {product}
        ) x
        JOIN {classes} v ON v.customer_id = x.customer_id
        JOIN {c} c ON c.id = x.customer_id
        WHERE c.industry <> ''
        GROUP BY c.industry, v.abc_class, x.product
    """
    plan = ("max_parallel_workers_per_gather", "0"), ("enable_seqscan", "off"), ("enable_bitmapscan", "off"), ("jit", "off")
    if postgres:
        for name, value in plan:
            cursor.execute(f"SET LOCAL {name} = {value}")
    cursor.execute(sql, [window_start(as_of, window_months), as_of])
    rows = cursor.fetchall()
    if postgres:  # inside a caller's transaction the settings would outlive the query
        for name, _value in plan:
            cursor.execute(f"SET LOCAL {name} TO DEFAULT")
    return rows


def rebuild_peer_categories() -> int:
    """Count the latest run's peer categories afresh from its written rows (the nightly run
    counts them while it is prepared); other runs keep none. Returns how many."""
    latest = completed_runs_newest_first().only("pk", "as_of", "settings").first()
    if latest is None:
        return 0
    months = int((latest.settings or {}).get("window_months", 12))
    sums = peer_category_sums(run_id=latest.pk, as_of=latest.as_of, window_months=months)
    peers = {
        (row["customer__industry"], row["abc_class"]): row["n"]
        for row in CustomerValue.objects.filter(run=latest).exclude(customer__industry="")
        .values("customer__industry", "abc_class").annotate(n=Count("id"))
        .order_by()
    }
    with transaction.atomic():
        PeerCategory.objects.exclude(run=latest).delete()
        return store_peer_categories(run_id=latest.pk, figures=PeerFigures(sums=sums, peers=peers))


def store_peer_categories(*, run_id: int, figures: PeerFigures) -> int:
    """Replace the run's peer categories by ``figures``; returns how many."""
    objects = [
        PeerCategory(run_id=run_id, industry=industry, abc_class=abc, category=category, buyers=buyers,
                     peers=figures.peers.get((industry, abc), buyers),
                     margin_per_buyer=(Decimal(margin or 0) / buyers).quantize(Decimal("0.01")))
        for industry, abc, category, buyers, margin in figures.sums
    ]
    with transaction.atomic():
        PeerCategory.objects.filter(run_id=run_id).delete()
        PeerCategory.objects.bulk_create(objects, batch_size=5000)
    return len(objects)


def keep_latest_peer_categories(*, run_id: int) -> None:
    """After run ``run_id`` completed (its peer categories stored when it was prepared): only the
    latest run keeps any, so a back-filled run (an earlier date) drops its own."""
    latest = completed_runs_newest_first().values_list("pk", flat=True).first()
    with transaction.atomic():
        if latest == run_id:
            PeerCategory.objects.exclude(run_id=run_id).delete()
        else:
            PeerCategory.objects.filter(run_id=run_id).delete()


@dataclass
class Hint:
    category: str
    buyers: int
    peers: int
    margin_per_buyer: Decimal

    @property
    def share(self) -> float:
        return self.buyers / self.peers if self.peers else 0.0


def cross_sell_hints(*, customer: Customer, value: CustomerValue | None, limit: int = HINTS) -> list[Hint]:
    """Up to `limit` categories the customer's peers buy and it never bought: two queries."""
    if value is None or not customer.industry:
        return []
    bought = set(Transaction.objects.filter(customer=customer).values_list("product", flat=True).distinct())
    candidates = (
        PeerCategory.objects.filter(run_id=value.run_id, industry=customer.industry, abc_class=value.abc_class,
                                    peers__gte=MIN_PEERS)
        .exclude(category__in=bought)
    )
    hints = [Hint(row.category, row.buyers, row.peers, row.margin_per_buyer) for row in candidates
             if row.buyers >= MIN_SHARE * row.peers]
    hints.sort(key=lambda hint: (-(hint.share * float(hint.margin_per_buyer)), hint.category))
    return hints[:limit]

