"""Cross-sell: what customers like this one buy (seed text 001: "welche anderen Produkte an
dieselbe Art von Kunden verkauft werden könnten").

Peers are the customers of the same industry and size class (the run's ABC class by window
margin). When a run completes, one grouped query over the window's transactions counts per
peer group and product/category how many peers bought it and their margin (PeerCategory).
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
from core.planner import planner_settings
from customers.models import Customer, Transaction

from . import history
from .models import CustomerValue, PeerCategory
from .selectors import completed_runs_newest_first, window_start

MIN_SHARE = 0.25
MIN_PEERS = 5
HINTS = 3


def peer_category_sums(*, run_id: int, as_of, window_months: int, classes: pd.Series | None = None) -> list[tuple]:
    """(industry, ABC class, category, buyers, margin in cents) of the run's customers: what they bought
    in the window, one grouped query over the window's transactions.

    A customer belongs to one peer group, so the buyers of a category are its (customer,
    category) pairs: the window's rows are first summed per customer and category, then per
    group. On PostgreSQL the first step reads the transactions in customer order from the
    (customer, date) index, so each customer's few rows are sorted on their own (incremental
    sort) and nothing spills: at 1M customers / 9.1M window rows the former COUNT(DISTINCT
    customer) sorted all 9.1M rows by the group's text (~640 MB on disk, 43-84 s against a
    13 s scan floor; this one 32 s). It runs without parallel workers (they each repeated the
    first step: 46 s) and without JIT, so that it uses one core beside the summary's.

    On PostgreSQL the run's classes are first copied from its own partition (valuation/history.py)
    in a statement of their own: the long query then holds no lock on the run's rows, which the
    finish attaches meanwhile (the attach waited for it), nor on the value table, whose older
    partitions the finish drops.

    ``classes``: the run's ABC class by customer id, as the run writes them: the sums then
    need none of the run's rows, and an in-process run reads them before its rows are
    written, while the chunks leave the server a core (services.ReadAhead)."""
    t, c = Transaction._meta.db_table, Customer._meta.db_table
    postgres = connection.vendor == "postgresql"
    copied = classes is not None or postgres  # read from RUN_CLASSES
    v = RUN_CLASSES if copied else history.run_table(run_id=run_id)
    # Sorting by byte order (COLLATE "C") compares cheaply; it groups the same values.
    product = 'product COLLATE "C"' if postgres else "product"
    sql = f"""
        SELECT c.industry, v.abc_class, x.product, COUNT(*), SUM(x.margin_cents)
        FROM (
            SELECT customer_id, {product} AS product, SUM(revenue_cents - cost_of_goods_cents) AS margin_cents
            FROM {t}
            WHERE date > %s AND date <= %s AND product <> ''
            GROUP BY customer_id, {product}
        ) x
        JOIN {v} v ON v.customer_id = x.customer_id{"" if copied else " AND v.run_id = %s"}
        JOIN {c} c ON c.id = x.customer_id
        WHERE c.industry <> ''
        GROUP BY c.industry, v.abc_class, x.product
    """
    try:
        if copied:
            # A transaction of its own: its lock on the run's rows ends with it, not with the query.
            with transaction.atomic(), connection.cursor() as cursor:
                _load_classes(cursor, classes, run_id=run_id)
        with (planner_settings(max_parallel_workers_per_gather="0", enable_seqscan="off", enable_bitmapscan="off",
                               jit="off"), connection.cursor() as cursor):
            cursor.execute(sql, [window_start(as_of, window_months), as_of, *([] if copied else [run_id])])
            rows = cursor.fetchall()
    finally:
        if copied:
            with connection.cursor() as cursor:
                cursor.execute(f"DROP TABLE IF EXISTS {RUN_CLASSES}")
    return rows


# A temporary table of this connection (peer_category_sums drops it).
RUN_CLASSES = "cross_sell_run_classes"


def _load_classes(cursor, classes: pd.Series | None, *, run_id: int) -> None:
    """The run's classes into RUN_CLASSES: ``classes`` when given (on PostgreSQL by one COPY: a
    million in 0.6 s), else copied from the run's rows. On PostgreSQL its primary key lets the
    join read it in customer order, as the transactions come (a merge join, no sort)."""
    if classes is None:
        cursor.execute(f"CREATE TEMPORARY TABLE {RUN_CLASSES} AS SELECT customer_id, abc_class "
                       f"FROM {history.run_table(run_id=run_id)} WHERE run_id = %s", [run_id])
        cursor.execute(f"ALTER TABLE {RUN_CLASSES} ADD PRIMARY KEY (customer_id)")
        cursor.execute(f"ANALYZE {RUN_CLASSES}")
        return
    cursor.execute(f"CREATE TEMPORARY TABLE {RUN_CLASSES} (customer_id bigint PRIMARY KEY, abc_class text)")
    ordered = classes.sort_index()
    ids, labels = ordered.index.to_numpy(dtype=np.int64), ordered.to_numpy(dtype=str)
    if connection.vendor != "postgresql":
        cursor.executemany(f"INSERT INTO {RUN_CLASSES} VALUES (%s, %s)", list(zip(ids.tolist(), labels.tolist(), strict=True)))
        return
    with copy_text.copy_into(cursor, RUN_CLASSES, ["customer_id", "abc_class"]) as copy:
        copy.write(copy_text.block([copy_text.integers(ids), copy_text.strings(labels)]))
    cursor.execute(f"ANALYZE {RUN_CLASSES}")


def rebuild_peer_categories(
    *, run_id: int | None = None, peers: dict[tuple[str, str], int] | None = None, sums: list[tuple] | None = None
) -> int:
    """Peer categories of the latest run (a back-fill of an older date changes nothing).

    `peers`: the run's customers per (industry, ABC class), when the caller has them counted
    (run_summary.peer_counts); `sums`: peer_category_sums of the run, when the caller has them
    (the nightly finish reads them while it writes the summary). Both only used when `run_id`
    is the latest run."""
    latest = completed_runs_newest_first().only("pk", "as_of", "settings").first()
    if latest is None or (run_id is not None and run_id != latest.pk):
        return 0
    if sums is None or run_id != latest.pk:
        months = int((latest.settings or {}).get("window_months", 12))
        sums = peer_category_sums(run_id=latest.pk, as_of=latest.as_of, window_months=months)
    if peers is None or run_id != latest.pk:
        peers = {
            (row["customer__industry"], row["abc_class"]): row["n"]
            for row in CustomerValue.objects.filter(run=latest).exclude(customer__industry="")
            .values("customer__industry", "abc_class").annotate(n=Count("id"))
            .order_by()
        }
    objects = [
        PeerCategory(run_id=latest.pk, industry=industry, abc_class=abc, category=category, buyers=buyers,
                     peers=peers.get((industry, abc), buyers),
                     margin_per_buyer=(Decimal(int(margin_cents or 0)) / (100 * buyers)).quantize(Decimal("0.01")))
        for industry, abc, category, buyers, margin_cents in sums
    ]
    with transaction.atomic():
        PeerCategory.objects.exclude(run=latest).delete()
        PeerCategory.objects.filter(run=latest).delete()
        PeerCategory.objects.bulk_create(objects, batch_size=5000)
    return len(objects)


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

