"""Demo data: a reproducible industrial supplier with customers, purchases and free services.

The supplier sells machines, spare parts, consumables and service contracts to German
industry. Purchases follow the BG/NBD story (Fader, Hardie & Lee 2005: while alive, a
customer buys at a Poisson rate lambda ~ Gamma(r, alpha); after each purchase it drops out
with probability p ~ Beta(a, b)) and spend per line follows Gamma-Gamma (Fader, Hardie &
Lee 2005 "RFM and CLV": value ~ Gamma(p, nu), nu ~ Gamma(q, gamma)), shaped by a monthly
season, a growth trend for young accounts and a margin rate per customer. Free services
are drawn per persona so all four segments of DOMAIN.md occur: uncritical, problem group
(spoiled with services, little margin), check potential and investment customers.

Everything is generated with numpy in chunks of customers (one generator per chunk, seeded
from ``seed`` and the chunk number: same seed and as-of give the same data) and written in
bulk: COPY of preformatted text blocks on PostgreSQL, executemany in one transaction per
chunk on SQLite. When a PostgreSQL database holds nothing but demo data, the whole seed is
one transaction that loads the tables without their secondary indexes and foreign keys and
builds those once at the end. Every customer row is marked ``is_demo``; the data is only
ever replaced when the database holds nothing else.

The modules: ``company`` (who and what the company is), ``drawing`` (the random draws),
``writing`` (bulk writes), ``database`` (guards, deletion, users, costs), ``history`` (value
history and survey answers); this module holds ``seed_demo``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import date

import numpy as np
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from customers.models import Customer, Transaction
from services.models import ServiceEvent

from .company import (
    COST_CHANGE_PERCENT,
    DEFAULT_CHUNK_SIZE,
    DEFAULT_SERVICE_EVENTS_PER_CUSTOMER,
    DEFAULT_TRANSACTIONS_PER_CUSTOMER,
    DEMO_LOGINS,
    DEMO_PASSWORD,
    INSIDE,
    REGIONS,
    REPS,
    DemoLogin,
)
from .database import (
    _delete_demo_data,
    _ensure_cost_change,
    _ensure_users,
    _first_free_number,
    _real_data_counts,
    _reset_sequences,
    _service_types,
    _years_before,
    cost_change_day,
)
from .drawing import _Calendar, _seed_chunk, _Volume
from .history import _seed_survey_answers, history_dates, seed_value_history
from .writing import _bulk_load, _fast_sqlite_writes, _Writer

# What the command, the benches and the tests use.
__all__ = [
    "COST_CHANGE_PERCENT", "DEFAULT_CHUNK_SIZE", "DEFAULT_SERVICE_EVENTS_PER_CUSTOMER", "DEFAULT_TRANSACTIONS_PER_CUSTOMER",
    "DEMO_LOGINS", "DEMO_PASSWORD", "REPS", "DemoDataConflict", "SeedReport", "cost_change_day", "history_dates",
    "seed_demo", "seed_value_history",
]

# --- public interface ----------------------------------------------------------------------

class DemoDataConflict(Exception):
    """The database holds real data and the caller did not ask to add demo data next to it."""


@dataclass
class SeedReport:
    customers: int = 0
    transactions: int = 0
    service_events: int = 0
    survey_answers: int = 0
    replaced_customers: int = 0
    skipped: bool = False
    as_of: date | None = None
    first_day: date | None = None
    seconds: dict[str, float] = field(default_factory=lambda: {"customers": 0.0, "transactions": 0.0,
                                                               "service_events": 0.0, "total": 0.0})
    logins: list[DemoLogin] = field(default_factory=list)

    def rate(self, table: str) -> float:
        """Rows per second spent on ``table`` (generation and writing)."""
        seconds = self.seconds[table]
        return getattr(self, table) / seconds if seconds else 0.0


def seed_demo(
    *,
    customers: int = 2000,
    seed: int = 42,
    as_of: date | None = None,
    years: int = 3,
    force: bool = False,
    if_empty: bool = False,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    transactions_per_customer: float = DEFAULT_TRANSACTIONS_PER_CUSTOMER,
    service_events_per_customer: float = DEFAULT_SERVICE_EVENTS_PER_CUSTOMER,
    progress: Callable[[str], None] | None = None,
) -> SeedReport:
    """Replace the demo data by ``customers`` fresh demo customers with ``years`` of history.

    Refuses (``DemoDataConflict``) when the database holds non-demo customers, transactions
    or service events, unless ``force``: then the demo data is added next to them and only
    demo rows are ever deleted. With ``if_empty`` nothing happens when any customer exists.
    ``transactions_per_customer`` and ``service_events_per_customer`` set the approximate
    mean volume per customer (over three years); the personas and their mix stay the same.
    """
    if customers < 1:
        raise ValueError("customers must be at least 1")
    if years < 1:
        raise ValueError("years must be at least 1")
    if transactions_per_customer <= 0 or service_events_per_customer < 0:
        raise ValueError("transactions per customer must be positive, service events not negative")
    volume = _Volume(purchase_rate=transactions_per_customer / DEFAULT_TRANSACTIONS_PER_CUSTOMER,
                     service_rate=service_events_per_customer / DEFAULT_SERVICE_EVENTS_PER_CUSTOMER)
    as_of = as_of or timezone.localdate()
    first_day = _years_before(as_of, years)
    report = SeedReport(as_of=as_of, first_day=first_day, logins=list(DEMO_LOGINS))
    say = progress or (lambda message: None)

    if if_empty and Customer.objects.exists():
        report.skipped = True
        return report
    real = _real_data_counts()
    if any(real.values()) and not force:
        raise DemoDataConflict(
            "The database holds data that is not demo data ({}). seed_demo only replaces demo "
            "data; use --force to add demo data next to it (nothing real is deleted).".format(
                ", ".join(f"{count} {name}" for name, count in real.items() if count)
            )
        )

    started = time.perf_counter()
    only_demo = not any(real.values())
    # Nothing but demo data on PostgreSQL: one transaction that reloads the tables without
    # their secondary indexes and foreign keys and rebuilds them once at the end (see
    # _bulk_load). A failure rolls everything back, old demo data and indexes included.
    bulk_load = only_demo and connection.vendor == "postgresql"
    with transaction.atomic() if bulk_load else nullcontext():
        _seed(report, customers=customers, seed=seed, first_day=first_day, as_of=as_of, chunk_size=chunk_size,
              only_demo=only_demo, bulk_load=bulk_load, volume=volume, say=say)
    report.survey_answers = _seed_survey_answers(seed=seed, as_of=as_of)
    report.seconds["total"] = time.perf_counter() - started
    return report


def _seed(report, *, customers, seed, first_day, as_of, chunk_size, only_demo, bulk_load, volume, say) -> None:
    with transaction.atomic():
        report.replaced_customers = _delete_demo_data(only_demo=only_demo)
        users = _ensure_users()
        _ensure_cost_change(as_of=as_of)
    types = _service_types()
    first_id = (Customer.objects.aggregate(m=Max("id"))["m"] or 0) + 1
    first_number = _first_free_number(customers)
    calendar = _Calendar(first_day=first_day, as_of=as_of)
    writer = _Writer(created_at=timezone.now())
    rep_ids = np.array([users[rep.username] for rep in REPS], dtype=np.int64)
    inside_id = users[INSIDE.username]
    owner_of_region = rep_ids[[rep for _, _, rep in REGIONS]]

    chunks = math.ceil(customers / chunk_size)
    tables = [Customer, Transaction, ServiceEvent]
    with _fast_sqlite_writes(), _bulk_load(tables, say=say) if bulk_load else nullcontext():
        for number in range(chunks):
            offset = number * chunk_size
            size = min(chunk_size, customers - offset)
            rng = np.random.default_rng([seed, number])
            chunk_started = time.perf_counter()
            with transaction.atomic():
                if connection.vendor == "postgresql":
                    # Check foreign keys per statement: no growing queue of deferred checks.
                    with connection.cursor() as cursor:
                        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                counts = _seed_chunk(
                    rng, size=size, first_id=first_id + offset, first_number=first_number + offset,
                    calendar=calendar, types=types, owner_of_region=owner_of_region,
                    inside_id=inside_id, writer=writer, seconds=report.seconds, volume=volume,
                )
            report.customers += counts[0]
            report.transactions += counts[1]
            report.service_events += counts[2]
            say(
                f"chunk {number + 1}/{chunks}: {counts[0]:,} customers, {counts[1]:,} transactions, "
                f"{counts[2]:,} service events in {time.perf_counter() - chunk_started:.1f} s"
            )
    _reset_sequences()
