"""Value history that scales: one partition per run, thinned with age, dropped whole.

On PostgreSQL `valuation_customervalue` is a table partitioned by run (LIST on run_id,
migration 0009). A run's rows are COPYed into a fresh table without indexes (a million rows
load in seconds instead of nearly a minute into the 14 indexes), its indexes are built once
the run is written, and it is attached as the run's partition. Rows written through the ORM
(admin, tests, demo seeding) land in a default partition that keeps the model's indexes.

Which runs need which indexes (what the pages read):
- the latest completed run: the customer list and the API sort and filter it by every listed
  column, the dashboard's filtered views read it: the full index set;
- every other run is only read per customer (the cockpit's value-history chart and
  segment changes, value change between the two latest runs, the history API) or whole
  (the worklist and the dashboard's comparison join, the run summary): one unique index on
  customer_id. The run before the latest keeps its full set too, so the lists stay fast
  while a new run completes.

Thinning (the nightly finish, `thin_history`): every run of the last 90 days stays; older
runs only as month-end snapshots (the last completed run of each calendar month); runs older
than the retention setting go. On PostgreSQL a dropped run is a dropped partition, never a big
DELETE; SQLite deletes its rows.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from django.conf import settings as django_settings
from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import timezone

from core.own_connection import on_own_connection
from customers.models import Customer

from .models import CustomerValue, RunSummary, ValuationRun

logger = logging.getLogger(__name__)

PARENT = CustomerValue._meta.db_table
DEFAULT_PARTITION = f"{PARENT}_default"


def partition_name(run_id: int) -> str:
    return f"{PARENT}_r{int(run_id)}"


def _index_prefix(run_id: int) -> str:
    return f"cv_r{int(run_id)}"


def is_partitioned(table: str = PARENT) -> bool:
    """True on PostgreSQL once a migration made the table partitioned by run (the value table:
    0010; the work items: 0016)."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [table])
        row = cursor.fetchone()
    return bool(row) and row[0] == "p"


def _table_state(name: str) -> str | None:
    """None (no such table), "attached" (a partition of the value table) or "loading"."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = c.oid) FROM pg_class c "
            "WHERE c.oid = to_regclass(%s)",
            [name],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    return "attached" if row[0] else "loading"


# --- indexes --------------------------------------------------------------------------------


def _columns(fields: list[str] | tuple[str, ...]) -> str:
    names = []
    for name in fields:
        descending = name.startswith("-")
        column = CustomerValue._meta.get_field(name.lstrip("-")).column
        names.append(f"{connection.ops.quote_name(column)}{' DESC' if descending else ''}")
    return ", ".join(names)


def list_index_definitions() -> list[tuple[str, str]]:
    """(suffix, columns) of the indexes the lists and dashboard use on the latest run: the
    model's run-leading indexes (models.CustomerValue.Meta), so the two never drift apart.
    The default partition, which holds many runs, keeps them as they are; a run's own
    partition leaves out the run column (partition_index_definitions)."""
    return [
        (index.name.removeprefix("cv_"), _columns(index.fields))
        for index in CustomerValue._meta.indexes
        if index.fields[0] == "run"
    ]


def partition_index_definitions() -> list[tuple[str, str]]:
    """(suffix, columns) of the list indexes on a run's own partition: the model's, without
    their leading run column, which is the same in every row there. Sorting a million rows
    by a constant first key leaves PostgreSQL's abbreviated keys nothing to compare: the
    indexes led by a numeric column built ~40 % faster without it (12.6 s against 17.6 s for
    the eleven, one after the other). The lists' queries name the run, which selects the
    partition; the index then gives its rows in order."""
    return [
        (index.name.removeprefix("cv_"), _columns(index.fields[1:]))
        for index in CustomerValue._meta.indexes
        if index.fields[0] == "run"
    ]


def customer_index_sql(table: str, prefix: str) -> str:
    """The index every partition keeps: one row per customer in a run's partition, so it is
    both the model's (run, customer) uniqueness and the customer history's lookup."""
    return f'CREATE UNIQUE INDEX IF NOT EXISTS "{prefix}_customer" ON "{table}" (customer_id)'


def full_index_sql(table: str, prefix: str) -> list[str]:
    """The full set of a run's partition: id, customer, and every list index."""
    return [
        f'CREATE UNIQUE INDEX IF NOT EXISTS "{prefix}_id" ON "{table}" (id)',
        customer_index_sql(table, prefix),
        *(
            f'CREATE INDEX IF NOT EXISTS "{prefix}_{suffix}" ON "{table}" ({columns})'
            for suffix, columns in partition_index_definitions()
        ),
    ]


def _index_names(table: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = %s ORDER BY indexname", [table])
        return [name for (name,) in cursor.fetchall()]


# --- writing a run --------------------------------------------------------------------------


def open_run(*, run_id: int) -> None:
    """A fresh table without indexes for the run's rows (PostgreSQL, partitioned value table).

    Anything left under the run's name is stale (a run id is new, or the run is prepared
    again and its chunks start over), so it goes first. The check constraint lets ATTACH skip
    its scan of the rows."""
    if not is_partitioned():
        return
    table = partition_name(run_id)
    with connection.cursor() as cursor:
        cursor.execute(f'DROP TABLE IF EXISTS "{table}"')
        # No autovacuum while it loads: at a million rows it started one mid-run, beside the index
        # builds. close_run vacuums the table once, when every row is in.
        cursor.execute(
            f'CREATE TABLE "{table}" (LIKE "{PARENT}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE) '
            "WITH (autovacuum_enabled = false)"
        )
        cursor.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{table}_run" CHECK (run_id = {int(run_id)})')


def load_table(*, run_id: int) -> str:
    """Where the run's rows are written and referral values updated: its own table while it
    loads, else the value table (SQLite; runs written through the ORM)."""
    if is_partitioned() and _table_state(partition_name(run_id)) == "loading":
        return partition_name(run_id)
    return PARENT


def run_table(*, run_id: int) -> str:
    """The table that holds a run's rows, quoted: its own partition, attached or loading
    (PostgreSQL), else the value table (SQLite; runs written through the ORM)."""
    if is_partitioned() and _table_state(partition_name(run_id)) is not None:
        return f'"{partition_name(run_id)}"'
    return PARENT


def clear_chunk(*, run_id: int, id_range: tuple[int, int], first_attempt: bool = False) -> None:
    """Remove a chunk's rows before it is written again (idempotent chunks).

    A chunk's rows commit together with its "done" mark, so a first attempt finds none; in
    the run's unindexed table the DELETE would scan every row loaded so far, so it is skipped."""
    table = load_table(run_id=run_id)
    if table == PARENT:
        CustomerValue.objects.filter(run_id=run_id, customer__id__range=id_range).delete()
        return
    if first_attempt:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f'DELETE FROM "{table}" WHERE customer_id BETWEEN %s AND %s', [int(id_range[0]), int(id_range[1])]
        )


# Connections building a run's indexes at once. Each build is a sort of the run's rows whose
# leader writes the index alone; two builds at a time keep both cores busy.
INDEX_BUILDERS = 2
INDEX_BUILDER_THREADS = "valuation-index"  # their threads' names begin so


def close_run(*, run_id: int, builders: int | None = None) -> None:
    """Index the run's loaded rows and attach them as the run's partition.

    ``builders``: connections building the indexes at once (INDEX_BUILDERS); inside a
    transaction one, since other connections would not see its uncommitted table. Each
    step is safe to repeat: a finish that stops halfway is taken up by the next one."""
    if not is_partitioned():
        return
    table = partition_name(run_id)
    if _table_state(table) != "loading":
        return
    vacuumed = not connection.in_atomic_block  # VACUUM runs outside a transaction only
    if vacuumed:
        # Before the indexes, which it then need not visit. The rows are never changed again:
        # frozen now, their partition needs no anti-wraparound vacuum later, and (with
        # synchronous commits) the hint bits and visibility map are set before the first reader.
        # 0.8 s at a million rows (ANALYZE alone 0.7 s).
        with connection.cursor() as cursor:
            cursor.execute(f'VACUUM (FREEZE, ANALYZE) "{table}"')
    builders = 1 if connection.in_atomic_block else (INDEX_BUILDERS if builders is None else builders)
    statements = full_index_sql(table, _index_prefix(run_id))
    # Each index is a sort of the run's rows: 3-6 s each at a million rows on a busy machine,
    # twice that without the parallel workers (max_parallel_maintenance_workers = 2).
    # Measured there: maintenance_work_mem 64 MB or 256 MB changed nothing (within 2 %). The
    # constant run_id column is left out (partition_index_definitions).
    # A refused or dropped builder connection (too many clients) must not fail the run: this
    # connection then builds what is missing (build_indexes).
    build_indexes(statements, builders=builders)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f'ALTER TABLE "{table}" RESET (autovacuum_enabled)')
        if attach_partition(cursor, PARENT, table, run_id=run_id) or not vacuumed:
            cursor.execute(f'ANALYZE "{table}"')


# --- partitions by run (the value table here, the work items in worklist.py) ----------------


def drop_rows_of_deleted_customers(cursor, table: str) -> int:
    """Delete the rows of ``table`` whose customer is gone; how many."""
    cursor.execute(f'DELETE FROM "{table}" t WHERE NOT EXISTS '
                   f'(SELECT 1 FROM {Customer._meta.db_table} c WHERE c.id = t.customer_id)')
    return cursor.rowcount


def attach_partition(cursor, parent: str, table: str, *, run_id: int) -> int:
    """Attach ``table`` as the run's partition of ``parent``, in the caller's transaction; the
    number of rows dropped because their customer is gone.

    A loaded table has no foreign keys of its own (LIKE copies none), so the attach checks
    every row against the customers. A customer deleted while the rows were loaded or indexed
    fails that check: its rows are then dropped and the table attached again, the customers
    locked against changes in between (the failed attach's lock went with it). Dropping them
    first in every run cost a second pass over the rows that nearly always finds nothing
    (0.8 s at a million rows)."""
    attach = f'ALTER TABLE "{parent}" ATTACH PARTITION "{table}" FOR VALUES IN ({int(run_id)})'
    # ALTER TABLE refuses to run while deferred foreign-key checks of this transaction are
    # pending on the tables it touches: check them now (they stay deferred afterwards).
    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    dropped = 0
    try:
        with transaction.atomic():  # a savepoint: a failed check leaves the caller's transaction usable
            cursor.execute(attach)
    except IntegrityError:
        # The lock the attach's check takes on the referenced table (the rare path only).
        cursor.execute(f"LOCK TABLE {Customer._meta.db_table} IN SHARE ROW EXCLUSIVE MODE")
        dropped = drop_rows_of_deleted_customers(cursor, table)
        if not dropped:
            raise  # another key is missing (the run itself): nothing to drop makes it pass
        cursor.execute(attach)
    cursor.execute("SET CONSTRAINTS ALL DEFERRED")
    return dropped


def unattached_tables(cursor, pattern: str) -> list[str]:
    """Names of plain tables matching the regular expression that are no partition (yet)."""
    cursor.execute(
        "SELECT c.relname FROM pg_class c WHERE c.relkind = 'r' AND c.relname ~ %s "
        "AND NOT EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid)", [pattern])
    return [name for (name,) in cursor.fetchall()]


def build_indexes(statements: list[str], *, builders: int) -> None:
    """Run the CREATE INDEX statements on ``builders`` connections of their own, each taking
    the next statement as it becomes free. A builder whose connection is refused or lost
    (too many clients) leaves its statement to the others; what none of them built is built
    on this connection at the end. With one builder, all are built on this connection."""
    pending = list(statements)
    lock = threading.Lock()

    @on_own_connection
    def build() -> None:
        while True:
            with lock:
                if not pending:
                    return
                sql = pending.pop(0)
            try:
                with connection.cursor() as cursor:
                    cursor.execute(sql)
            except OperationalError:
                with lock:
                    pending.append(sql)  # a statement that failed built nothing
                raise

    if builders > 1 and len(pending) > 1:
        with ThreadPoolExecutor(max_workers=builders, thread_name_prefix=INDEX_BUILDER_THREADS) as pool:
            done = [pool.submit(build) for _ in range(builders)]
        for future in done:
            error = future.exception()
            if isinstance(error, OperationalError):
                logger.warning("An index builder's connection failed; its indexes are built on this one",
                               exc_info=error)
            elif error is not None:
                raise error
    with connection.cursor() as cursor:
        for sql in pending:
            cursor.execute(sql)


def thin_indexes(*, run_id: int) -> bool:
    """Keep only the customer index of an older run's partition; True when something was dropped."""
    table = partition_name(run_id)
    if not is_partitioned() or _table_state(table) != "attached":
        return False
    keep = f"{_index_prefix(run_id)}_customer"
    names = _index_names(table)
    with connection.cursor() as cursor:
        if keep not in names:
            cursor.execute(customer_index_sql(table, _index_prefix(run_id)))
        dropped = [name for name in names if name != keep]
        for name in dropped:
            cursor.execute(f'DROP INDEX "{name}"')
    return bool(dropped)


def drop_runs(run_ids: list[int]) -> int:
    """Delete runs with their value rows: a run's partition is dropped whole (no DELETE of a
    million rows); runs kept in the default partition or on SQLite delete theirs."""
    run_ids = [int(pk) for pk in run_ids]
    if not run_ids:
        return 0
    if is_partitioned():
        with connection.cursor() as cursor:
            for run_id in run_ids:
                cursor.execute(f'DROP TABLE IF EXISTS "{partition_name(run_id)}"')
    deleted, _ = ValuationRun.objects.filter(pk__in=run_ids).exclude(status=ValuationRun.Status.RUNNING).delete()
    return deleted


def drop_orphaned_tables() -> int:
    """Tables of runs that no longer exist or failed before their rows were attached."""
    if not is_partitioned():
        return 0
    with connection.cursor() as cursor:
        loading = {int(name.rsplit("_r", 1)[1]): name for name in unattached_tables(cursor, f"^{PARENT}_r[0-9]+$")}
        running = set(
            ValuationRun.objects.filter(pk__in=list(loading), status=ValuationRun.Status.RUNNING).values_list(
                "pk", flat=True
            )
        )
        stale = [name for run_id, name in loading.items() if run_id not in running]
        for name in stale:
            cursor.execute(f'DROP TABLE "{name}"')
    return len(stale)


# --- thinning -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunDay:
    pk: int
    as_of: dt.date
    completed: bool
    finished_at: dt.datetime | None = None


@dataclass
class ThinningPlan:
    drop: list[int] = field(default_factory=list)
    thin: list[int] = field(default_factory=list)  # runs whose partitions keep the customer index only


def plan_thinning(
    runs: list[RunDay],
    *,
    today: dt.date,
    daily_days: int,
    retention_days: int,
    full_index_runs: int,
    protected: set[int] = frozenset(),
) -> ThinningPlan:
    """Which runs go and which keep only their customer index (pure: no database).

    - as_of within `daily_days` of today: kept;
    - older: kept only when it is its month's snapshot, the last completed run of that
      calendar month (newest as-of, then finished last, then highest id);
    - as_of more than `retention_days` before today: dropped;
    - the `full_index_runs` newest completed runs keep everything; `protected` ones are never
      dropped; every other completed run kept is thinned.
    Runs still running are never touched.
    """
    daily_from = today - dt.timedelta(days=daily_days)
    retained_from = today - dt.timedelta(days=retention_days)
    completed = sorted(
        (r for r in runs if r.completed),
        key=lambda r: (r.as_of, r.finished_at or dt.datetime.min.replace(tzinfo=dt.UTC), r.pk),
        reverse=True,
    )
    newest = {r.pk for r in completed[:full_index_runs]}
    month_ends: dict[tuple[int, int], int] = {}
    for run in completed:  # newest first: the first of each month is its snapshot
        month_ends.setdefault((run.as_of.year, run.as_of.month), run.pk)
    snapshots = set(month_ends.values())
    plan = ThinningPlan()
    for run in runs:
        if run.pk in newest:
            continue
        keep = run.pk in protected or (run.as_of >= retained_from and (run.as_of >= daily_from or run.pk in snapshots))
        if not keep:
            plan.drop.append(run.pk)
        elif run.completed:
            plan.thin.append(run.pk)
    plan.drop.sort()
    plan.thin.sort()
    return plan


def protected_runs() -> set[int]:
    """Runs something still shown refers to: the latest run's summary compares with its
    `earlier` run, and the dashboard's default comparison is taken from the runs kept."""
    latest = (
        ValuationRun.objects.filter(status=ValuationRun.Status.COMPLETED)
        .order_by("-as_of", "-finished_at", "-pk")
        .first()
    )
    if latest is None:
        return set()
    earlier = RunSummary.objects.filter(run=latest).values_list("earlier_id", flat=True).first()
    return {pk for pk in (latest.pk, earlier) if pk}


@dataclass
class ThinningResult:
    dropped: list[int]
    thinned: list[int]
    orphans: int


def _plan(*, today: dt.date, extra: list[RunDay] = ()) -> ThinningPlan:
    runs = [
        RunDay(pk, as_of, status == ValuationRun.Status.COMPLETED, finished_at)
        for pk, as_of, status, finished_at in ValuationRun.objects.exclude(
            status=ValuationRun.Status.RUNNING
        ).values_list("pk", "as_of", "status", "finished_at")
    ]
    return plan_thinning(
        runs + list(extra),
        today=today,
        daily_days=django_settings.CVM_VALUATION_DAILY_DAYS,
        retention_days=django_settings.CVM_VALUATION_RETENTION_DAYS,
        full_index_runs=django_settings.CVM_VALUATION_FULL_INDEX_RUNS,
        protected=protected_runs(),
    )


def kept_after_thinning(*, as_of: dt.date, today: dt.date) -> bool:
    """Whether a run as of ``as_of``, completed now, would survive the thinning that follows
    it (a back-dated run may be dropped the moment it completes)."""
    planned = RunDay(0, as_of, True, timezone.now())  # pk 0: no real run has it
    return 0 not in _plan(today=today, extra=[planned]).drop


def thin_history(*, today: dt.date) -> ThinningResult:
    """The nightly step: drop what the rule no longer keeps, thin older runs' indexes.
    Running it twice changes nothing the second time."""
    plan = _plan(today=today)
    with transaction.atomic():
        drop_runs(plan.drop)
        thinned = [run_id for run_id in plan.thin if thin_indexes(run_id=run_id)]
        orphans = drop_orphaned_tables()
    if plan.drop or thinned:
        logger.info("Value history: dropped runs %s, thinned the indexes of runs %s", plan.drop, thinned)
    return ThinningResult(dropped=plan.drop, thinned=thinned, orphans=orphans)
