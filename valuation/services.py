"""The valuation run, from claim to completion.

A run is claimed by inserting a ValuationRun with status "running": a partial unique index
admits one such row, so two starters (two beats, a manager and the night) never both run.
`prepare_run` fits the models once on all customers and fixes the global thresholds;
`score_chunk` scores and writes one customer-id range (idempotent: it replaces its rows);
`finish_run_if_complete` completes the run once every chunk is written. The same functions
run in-process (`run_valuation`) or as Celery tasks (valuation/tasks.py).
"""

import datetime as dt
import io
import json
import logging
import math
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
import psycopg
from django.conf import settings as django_settings
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from core import copy_binary, copy_text
from core.memory import release_freed_memory
from core.own_connection import in_background, on_own_connection

from . import cross_sell, engine, history, run_summary, selectors, worklist
from .engine.money import to_cents, to_money
from .models import CustomerValue, ValuationChunk, ValuationRun

logger = logging.getLogger(__name__)

WRITE_BATCH = 5000
# Kept with each value row: what a later run's change is explained from (with purchase_days,
# margin_window and basis), so that re-scoring them with the run's stored models gives its CLV.
MODEL_INPUTS = ("recency_weeks", "age_weeks", "mean_repeat_margin", "mean_purchase_margin")


class RunAlreadyRunning(Exception):
    """Another valuation run is in progress."""


class QueueUnavailable(Exception):
    """The task queue (Redis) cannot be reached."""


# Lock timeouts are worth a retry; anything else fails the run.
DatabaseBusy = OperationalError
MAX_NIGHTLY_ATTEMPTS = 3


@dataclass
class RunInputs:
    summary: pd.DataFrame  # engine summary, one row per customer (also those without purchases)
    customers: pd.DataFrame  # indexed by customer_id: active, referred_by, wallet
    by_type: pd.DataFrame  # service cost per customer and service type in the window
    service_totals: pd.DataFrame  # value to the customer per customer
    fence: float  # population fence of the input rules (engine.summary.population_fence)


def today() -> dt.date:
    return timezone.localdate()


def has_completed_run(*, as_of: dt.date) -> bool:
    return ValuationRun.objects.filter(as_of=as_of, status=ValuationRun.Status.COMPLETED).exists()


def load_inputs(*, as_of: dt.date, settings: engine.EngineSettings, id_range=None, fence: float | None = None) -> RunInputs:
    """The engine's inputs for all customers or one id range: one grouped query each.

    ``fence``: the population fence of the input rules, measured once per run (prepare_run)
    so that every chunk caps alike; None measures it. Customers lost by as_of carry ``lost``.
    """
    customers = selectors.customer_frame(as_of=as_of, id_range=id_range).set_index("customer_id")
    if fence is None:
        fence = selectors.purchase_day_fence(as_of=as_of)
    aggregates = selectors.transaction_summary(as_of=as_of, window_months=settings.window_months, id_range=id_range,
                                               fence=fence)
    summary = selectors.engine_summary(aggregates, customer_ids=customers.index)
    summary["lost"] = ~customers["active"].to_numpy(dtype=bool)
    by_type = selectors.service_cost_by_type(as_of=as_of, window_months=settings.window_months, id_range=id_range)
    return RunInputs(summary, customers, by_type, selectors.service_totals(by_type, hours_per_day=settings.hours_per_day), fence)


def score(
    inputs: RunInputs, models: engine.ValuationModels, settings: engine.EngineSettings, *, ranges: bool = True
) -> pd.DataFrame:
    """Future value per customer (engine.value_customers: the chosen model, or the fallback
    the fit-quality gate named) plus the history and value-to figures classification needs.
    ``ranges=False``: no CLV ranges (the thresholds need none; their simulation is most of
    the scoring time)."""
    values = engine.value_customers(inputs.summary, models, settings, ranges=ranges)
    return engine.combine(inputs.summary, values, inputs.service_totals, inputs.customers)


def _finite_json(value):
    """JSON without NaN or infinity (PostgreSQL's jsonb refuses them): such numbers become null."""
    if isinstance(value, dict):
        return {k: _finite_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_json(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


# --- the run --------------------------------------------------------------------------------


def stale_after() -> dt.timedelta:
    """The one staleness limit: a run or chunk whose heartbeat is older than this has lost
    its process. Holders beat several times within it (see keep_alive)."""
    return dt.timedelta(seconds=django_settings.CVM_RUN_STALE_SECONDS)


def owner_label() -> str:
    """host:pid of this process, recorded on what it holds."""
    return f"{socket.gethostname()}:{os.getpid()}"


def holder_gone(owner: str) -> bool:
    """True when the owner was a process on this host that no longer exists.

    Only this host's processes can be checked; elsewhere the heartbeat decides.
    """
    host, _, pid = owner.rpartition(":")
    if not owner or host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # exists, owned by another user
    return False


def take_over_abandoned_runs() -> int:
    """Fail the running run when its process is gone or its heartbeat stopped, so the next
    start does not wait (a killed `recompute_values`, web process or worker)."""
    now = timezone.now()
    abandoned = 0
    for run in ValuationRun.objects.filter(status=ValuationRun.Status.RUNNING):
        if holder_gone(run.owner):
            reason = f"Abandoned: its process ({run.owner}) ended."
        elif run.heartbeat_at is None or run.heartbeat_at < now - stale_after():
            reason = f"Abandoned: no heartbeat for {int(stale_after().total_seconds())} s."
        else:
            continue
        abandoned += ValuationRun.objects.filter(pk=run.pk, status=ValuationRun.Status.RUNNING).update(
            status=ValuationRun.Status.FAILED, finished_at=now, error=reason
        )
    return abandoned


def start_run(
    *, as_of: dt.date, trigger: str, settings: engine.EngineSettings | None = None, requested_by=None,
    owner: str = "",
) -> ValuationRun:
    """Claim the one running slot, or raise RunAlreadyRunning. `owner` is the process that
    will carry the whole run (in-process runs); Celery steps set it as they go."""
    take_over_abandoned_runs()
    settings = settings or selectors.engine_settings()
    try:
        with transaction.atomic():
            return ValuationRun.objects.create(
                as_of=as_of,
                trigger=trigger,
                stage="queued",
                heartbeat_at=timezone.now(),
                owner=owner,
                settings=settings.to_dict(),
                requested_by=requested_by if getattr(requested_by, "pk", None) else None,
            )
    except IntegrityError as exc:
        raise RunAlreadyRunning("A valuation run is already in progress.") from exc


def _touch(run_id: int, **fields) -> None:
    ValuationRun.objects.filter(pk=run_id).update(heartbeat_at=timezone.now(), **fields)


@contextmanager
def keep_alive(*, run_id: int, chunk_id: int | None = None) -> Iterator[None]:
    """Beat the run's (and chunk's) heartbeat from a side thread while this process works on it.

    Long steps (fitting 1M customers takes about a minute) would otherwise look dead.
    """
    stop = threading.Event()
    interval = max(0.5, django_settings.CVM_RUN_STALE_SECONDS / 6)

    @on_own_connection
    def beat() -> None:
        while not stop.wait(interval):
            try:
                now = timezone.now()
                ValuationRun.objects.filter(pk=run_id, status=ValuationRun.Status.RUNNING).update(heartbeat_at=now)
                if chunk_id is not None:
                    ValuationChunk.objects.filter(pk=chunk_id, owner=owner_label()).update(heartbeat_at=now)
            except Exception:  # a locked SQLite file or a busy server: the next beat tries again
                logger.debug("heartbeat skipped", exc_info=True)

    thread = threading.Thread(target=beat, name=f"valuation-heartbeat-{run_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


@dataclass
class ReadAhead:
    """What an in-process run's prepare_run hands on in memory: reads of the finish that need
    none of the run's written rows, started where the engine and then the chunk writes leave
    the server a core, and the frames the chunks write and the summary groups. A Celery chunk
    or finish (another process) reads them itself."""
    service_costs: object = None  # run_summary.service_cost_views, from in_background
    peer_sums: object = None  # cross_sell.peer_category_sums with the run's classes
    compared_values: object = None  # worklist.compared_values: the values the work items compare with
    detractors: object = None  # worklist.latest_detractor_scores of the run's as-of date
    service_spend: object = None  # worklist.service_spend_by_type of the run's as-of date
    values: object = None  # run_summary.written_values: the summary's value columns, kept from the prepare
    scored: object = None  # (scored customers, service costs by type): what the chunks write (chunk_frames)


def prepare_run(*, run_id: int, ahead: ReadAhead | None = None) -> list[int]:
    """Read once, score once: one pass over the transactions gives the as-of and back-test
    inputs (selectors.run_transaction_inputs); the back-test chooses the model, which is
    fitted once on all customers (with the fit-quality gate) and scores every customer once,
    ranges included; the global thresholds classify them and the referral values are summed
    in memory. Each chunk's customers are staged with the chunk (stage_values), so the chunk
    tasks only write. The fit and the population fence are stored with the run. ``ahead``
    (in-process runs): the finish's reads that need no written rows are started here.

    Then the memory its frames held is handed back: at 1M customers glibc kept about 800 MB
    of them, and the finish's own peak stacked on it (1.99 GB; with it handed back 1.62 GB).
    An in-process run keeps the scored frame for its chunks (``ahead.scored``) and hands it
    back after them (_run_steps)."""
    chunk_ids = _prepare(run_id=run_id, ahead=ahead)
    release_freed_memory()
    return chunk_ids


def _prepare(*, run_id: int, ahead: ReadAhead | None) -> list[int]:
    run = ValuationRun.objects.get(pk=run_id)
    settings = run.engine_settings
    _touch(run_id, stage="back-testing")
    ends = growth_period_ends(run.as_of)
    beside = {}

    def read_beside() -> None:
        # Once the scan is read the server is idle while this process derives the inputs from
        # it: the customers and the service costs (one grouped query) are read meanwhile, each
        # on a connection of its own.
        beside["customers"] = in_background(lambda: selectors.customer_frame(as_of=run.as_of))
        beside["by_type"] = in_background(lambda: selectors.service_cost_by_type(
            as_of=run.as_of, window_months=settings.window_months))

    reads = selectors.run_transaction_inputs(as_of=run.as_of, window_months=settings.window_months,
                                             holdout_weeks=settings.holdout_weeks, period_ends=ends,
                                             scanned=read_beside)
    by_type = beside["by_type"]
    customers = beside["customers"].result().set_index("customer_id")
    if ahead is not None:  # the server idles while the engine works: the finish's reads of no new rows meanwhile
        ahead.service_costs = in_background(lambda: run_summary.service_cost_views(as_of=run.as_of))
        _read_for_work_items(run, ahead)
    backtest = run_backtest(as_of=run.as_of, settings=settings, reads=reads, customers=customers)
    company = {"earned_growth": earned_growth(as_of=run.as_of, revenue=reads.revenue_by_period,
                                              customers=customers.reset_index())}
    reads.calibration = reads.holdout = reads.revenue_by_period = None  # done with: free them before scoring

    _touch(run_id, stage="fitting")
    inputs = inputs_from_reads(reads, customers=customers, as_of=run.as_of, settings=settings,
                               by_type=by_type.result())
    pick = backtest.get("model")
    models = engine.fit_chosen_model(inputs.summary, backtest, settings)
    describe_chosen_model(backtest, pick=pick)
    backtest["fit_quality"] = models.fit_quality
    scored = score(inputs, models, settings)
    thresholds = engine.compute_thresholds(scored.fillna({"clv": 0.0}), settings)
    classified = engine.classify(scored, thresholds, settings)
    del scored
    classified["referral_value"] = referral_values(customers, classified["clv"])
    if ahead is not None:
        # What the chunks will write, as the summary reads it: the finish need not read it back.
        ahead.values = run_summary.written_values(classified)
        # The cross-sell sums need the classes only: read while the chunks are staged and written.
        classes = classified["abc_class"]
        ahead.peer_sums = in_background(lambda: cross_sell.peer_category_sums(
            run_id=run_id, as_of=run.as_of, window_months=settings.window_months, classes=classes))
        ahead.scored = (classified, inputs.by_type)
    parameters = {**models.to_dict(), "fence": inputs.fence if np.isfinite(inputs.fence) else None}

    _touch(run_id, stage="scoring")
    # The scored customers' ids (sorted), so that every chunk stages whom it writes.
    ranges = chunk_ranges(classified.index.to_numpy(dtype=np.int64), chunk_size=django_settings.CVM_VALUATION_CHUNK_SIZE)
    with transaction.atomic():
        history.open_run(run_id=run_id)  # a fresh table without indexes for the run's rows
        ValuationChunk.objects.filter(run_id=run_id).delete()
        chunk_ids = []
        for lo, hi in ranges:
            chunk_ids.append(ValuationChunk.objects.create(run_id=run_id, first_customer_id=lo, last_customer_id=hi).pk)
            _store_staged(chunk_ids[-1], stage_values(classified, inputs.by_type, id_range=(lo, hi)))
        ValuationRun.objects.filter(pk=run_id).update(
            stage="scoring",
            heartbeat_at=timezone.now(),
            parameters=_finite_json(parameters),
            thresholds=thresholds.to_dict(),
            backtest=_finite_json(backtest),
            company=company,
            customer_count=len(inputs.customers),
            transaction_count=reads.transaction_count,
            service_event_count=int(inputs.service_totals["service_count"].sum()) if len(inputs.service_totals) else 0,
            chunk_count=len(chunk_ids),
        )
    return chunk_ids


def chunk_ranges(ids: np.ndarray, *, chunk_size: int) -> list[tuple[int, int]]:
    """Contiguous ranges of the sorted customer ids, at most chunk_size customers each."""
    if ids.size == 0:
        return []
    starts = ids[::chunk_size]
    ends = np.append(ids[chunk_size - 1 :: chunk_size], ids[-1])[: len(starts)]
    return [(int(lo), int(hi)) for lo, hi in zip(starts, ends, strict=False)]


def inputs_from_reads(reads: selectors.TransactionInputs, *, customers: pd.DataFrame, as_of: dt.date,
                      settings: engine.EngineSettings, by_type: pd.DataFrame | None = None) -> RunInputs:
    """load_inputs for all customers, with the transaction summary of the run's one pass (and
    the service costs by type, when read already)."""
    summary = selectors.engine_summary(reads.summary, customer_ids=customers.index)
    summary["lost"] = ~customers["active"].to_numpy(dtype=bool)
    if by_type is None:
        by_type = selectors.service_cost_by_type(as_of=as_of, window_months=settings.window_months)
    return RunInputs(summary, customers, by_type, selectors.service_totals(by_type, hours_per_day=settings.hours_per_day),
                     reads.fence)


def referral_values(customers: pd.DataFrame, clv: pd.Series) -> pd.Series:
    """Referral value per customer (engine.incremental_referral_value: the positive CLVs of
    the customers it referred directly, self-referrals ignored), summed over the CLVs as
    written, in cents, so that the figure equals the sum of the stored values."""
    cents = pd.Series(to_cents(clv.to_numpy(dtype=float)).astype(float), index=clv.index)
    links = customers.reset_index()[["customer_id", "referred_by"]]
    return engine.incremental_referral_value(links, cents).reindex(clv.index, fill_value=0.0) / 100.0


# What a chunk writes (_write_values' columns), staged by prepare_run.
STAGED_COLUMNS = [
    "revenue_lifetime", "margin_lifetime", "revenue_window", "margin_window", "profit_after_services", "clv",
    "value_to_customer", "service_hours", "clv_low", "clv_high", "clv_to_infinity", "median_lifetime_weeks", "basis",
    "share_of_supply", "abc_class", "purchase_days", "p_alive", "expected_purchases", "is_thin", "service_count",
    "segment", "referral_value", *MODEL_INPUTS,
]
STAGED_TYPE_COLUMNS = ["customer_id", "service_type", "unit", "count", "quantity", "cost"]
_TEXT_COLUMNS = {"basis", "abc_class", "segment", "service_type", "unit"}
TYPE_DTYPES = {"customer_id": np.int64, "count": np.int64}


def stage_values(classified: pd.DataFrame, by_type: pd.DataFrame, *, id_range: tuple[int, int]) -> bytes:
    """One chunk's scored customers and service costs as numpy arrays (npz, no pickles):
    what score_chunk writes. The same bytes whoever reads them, however often."""
    ids, values, types = _chunk_columns(classified, by_type, id_range=id_range)
    arrays = {"customer_id": ids}
    for name, column in values.items():
        arrays |= _staged_text(name, np.asarray(column, dtype=str)) if name in _TEXT_COLUMNS else {name: column}
    for name, column in types.items():
        arrays |= (_staged_text(f"type:{name}", np.asarray(column, dtype=str)) if name in _TEXT_COLUMNS
                   else {f"type:{name}": column})
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def chunk_frames(classified: pd.DataFrame, by_type: pd.DataFrame, *, id_range: tuple[int, int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What staged_values gives for stage_values' bytes, without making and reading them: an
    in-process run's chunks write from the prepare's frames (at 1M customers, fetching and
    reading the 20 chunks' 221 MB back took 1.8 s of this process and about 1 s of the server's)."""
    ids, values, types = _chunk_columns(classified, by_type, id_range=id_range)
    return (pd.DataFrame(values, index=pd.Index(ids, name="customer_id")), pd.DataFrame(types))


def _chunk_columns(classified: pd.DataFrame, by_type: pd.DataFrame, *, id_range: tuple[int, int]):
    """A chunk's customer ids and its STAGED_COLUMNS and STAGED_TYPE_COLUMNS: numbers as typed
    arrays, texts as pandas' text arrays (made into numpy's only for staging: a Python string
    per row each way took longer than reading the staged bytes back)."""
    ids = classified.index.to_numpy()
    lo, hi = np.searchsorted(ids, id_range[0], side="left"), np.searchsorted(ids, id_range[1], side="right")
    part = classified.iloc[lo:hi]
    types = by_type[(by_type["customer_id"] >= id_range[0]) & (by_type["customer_id"] <= id_range[1])]

    def typed(frame: pd.DataFrame, name: str, number_type) -> np.ndarray | pd.api.extensions.ExtensionArray:
        return pd.array(frame[name], dtype="str") if name in _TEXT_COLUMNS else frame[name].to_numpy().astype(number_type)

    values = {name: typed(part, name, bool if name == "is_thin" else np.int64 if name in ("purchase_days", "service_count")
                          else float) for name in STAGED_COLUMNS}
    type_columns = {name: typed(types, name, TYPE_DTYPES.get(name, float)) for name in STAGED_TYPE_COLUMNS}
    return part.index.to_numpy(dtype=np.int64), values, type_columns


def _store_staged(chunk_id: int, staged: bytes) -> None:
    """Store a chunk's staged values. PostgreSQL gets the bytes as a binary parameter: Django
    writes parameters into the SQL text, where a chunk's 11 MB become 22 MB of hex for the
    server to decode (the 20 chunks of 1M customers: 4.3 s, against 1.0 s)."""
    if connection.vendor != "postgresql":
        ValuationChunk.objects.filter(pk=chunk_id).update(staged=staged)
        return
    table = ValuationChunk._meta.db_table
    connection.ensure_connection()
    # psycopg's own cursor binds on the server (Django's binds into the text); %b asks for the
    # binary format. It runs on Django's connection, inside the caller's transaction.
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(f"UPDATE {table} SET staged = %b WHERE id = %s", [staged, chunk_id])


def _staged_text(key: str, values: np.ndarray) -> dict[str, np.ndarray]:
    """A text column as codes into its distinct values (UTF-8). With each text in numpy's 4
    bytes a character, a chunk of 50,000 customers staged 17.7 MB; so 10.9 MB, and storing 20
    such chunks takes 4.1 s instead of 7.9 s."""
    codes, labels = pd.factorize(values.astype(str))
    return {key: codes.astype(np.int32), f"labels:{key}": np.char.encode(np.asarray(labels, dtype=str), "utf-8")}


def _unstaged_text(arrays, key: str) -> np.ndarray:
    if f"labels:{key}" not in arrays.files:  # staged before texts were coded
        return arrays[key]
    return np.char.decode(arrays[f"labels:{key}"], "utf-8").astype(str)[arrays[key]]


def staged_values(data: bytes) -> tuple[pd.DataFrame, pd.DataFrame]:
    """stage_values' frame (indexed by customer_id) and service costs by type."""
    with np.load(io.BytesIO(bytes(data)), allow_pickle=False) as arrays:
        frame = pd.DataFrame({name: _unstaged_text(arrays, name) if name in _TEXT_COLUMNS else arrays[name]
                              for name in STAGED_COLUMNS},
                             index=pd.Index(arrays["customer_id"], name="customer_id"))
        by_type = pd.DataFrame({name: _unstaged_text(arrays, f"type:{name}") if name in _TEXT_COLUMNS
                                else arrays[f"type:{name}"] for name in STAGED_TYPE_COLUMNS})
    return frame, by_type


def stored_models(run: ValuationRun) -> tuple[engine.ValuationModels, float]:
    """The run's fit and population fence as prepare_run stored them."""
    fence = run.parameters.get("fence")
    return engine.ValuationModels.from_dict(run.parameters), (math.inf if fence is None else float(fence))


def run_of_chunk(*, chunk_id: int) -> int:
    return ValuationChunk.objects.values_list("run_id", flat=True).get(pk=chunk_id)


def claim_chunk(*, chunk_id: int) -> bool:
    """Claim a chunk for this process with one conditional update (healthchecks' sendalerts):
    a pending chunk, or one whose holder stopped beating. Two deliveries of the same chunk
    never both write: exactly one update changes the row."""
    now = timezone.now()
    claimable = Q(status=ValuationChunk.Status.PENDING) | Q(
        status=ValuationChunk.Status.RUNNING, heartbeat_at__lt=now - stale_after()
    )
    return bool(
        ValuationChunk.objects.filter(claimable, pk=chunk_id, run__status=ValuationRun.Status.RUNNING).update(
            status=ValuationChunk.Status.RUNNING, owner=owner_label(), started_at=now, heartbeat_at=now,
            attempts=F("attempts") + 1,
        )
    )


def release_chunk(*, chunk_id: int) -> None:
    """Give a held chunk back (a lock timeout: the task retries and claims it again)."""
    ValuationChunk.objects.filter(pk=chunk_id, owner=owner_label(), status=ValuationChunk.Status.RUNNING).update(
        status=ValuationChunk.Status.PENDING, owner=""
    )


def score_chunk(*, chunk_id: int, scored: tuple[pd.DataFrame, pd.DataFrame] | None = None) -> int:
    """Score and write one customer-id range; a second delivery finds it claimed or done and
    does nothing. Returns the rows written by this call. ``scored``: the run's scored
    customers and service costs by type (in-process, ReadAhead.scored), else its staged values."""
    started = time.monotonic()
    if not claim_chunk(chunk_id=chunk_id):
        return 0
    chunks = ValuationChunk.objects.select_related("run")
    chunk = (chunks if scored is None else chunks.defer("staged")).get(pk=chunk_id)
    run = chunk.run
    with keep_alive(run_id=run.pk, chunk_id=chunk_id):
        id_range = (chunk.first_customer_id, chunk.last_customer_id)
        if scored is not None:
            classified, by_type = chunk_frames(*scored, id_range=id_range)
        elif chunk.staged is None:
            raise RuntimeError(f"Chunk {chunk_id} has no staged values: its run must be prepared again.")
        else:
            classified, by_type = staged_values(chunk.staged)
        with transaction.atomic():
            # Only the claim's holder may complete it: a chunk taken over meanwhile rolls back.
            finished = ValuationChunk.objects.filter(pk=chunk_id, owner=owner_label(), status=ValuationChunk.Status.RUNNING)
            history.clear_chunk(run_id=run.pk, id_range=id_range, first_attempt=chunk.attempts == 1)
            rows = _write_values(run.pk, classified, by_type)
            if not finished.update(
                status=ValuationChunk.Status.DONE, rows_written=rows, seconds=time.monotonic() - started,
                finished_at=timezone.now(),
            ):
                transaction.set_rollback(True)
                return 0
            _touch(run.pk)
    return rows


_money = to_money  # the engine's rounding, so a re-scored figure matches the stored one to the cent


def _float_or_none(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def _type_costs(by_type: pd.DataFrame) -> dict[int, dict[str, float]]:
    """value_to_by_type per customer: service type code -> cost, rounded to cents."""
    type_costs: dict[int, dict[str, float]] = {}
    for customer_id, code, cost in by_type[["customer_id", "service_type", "cost"]].itertuples(index=False):
        type_costs.setdefault(int(customer_id), {})[code] = round(float(cost), 2)
    return type_costs


def _json_float(value: float) -> str:
    """json.dumps of a float (its repr; NaN and infinities as json writes them)."""
    return float.__repr__(value) if math.isfinite(value) else json.dumps(value)


def _type_costs_json(customer_ids: np.ndarray, by_type: pd.DataFrame) -> list[str]:
    """json.dumps of each customer's _type_costs (``{}`` for none), built per service-type
    row rather than per customer: 50,000 json.dumps calls took ~0.35 s of a chunk's 1.9 s."""
    if by_type.empty:
        return ["{}"] * len(customer_ids)
    owners = by_type["customer_id"].to_numpy(dtype=np.int64)
    codes = by_type["service_type"].tolist()
    if pd.DataFrame({"customer_id": owners, "code": codes}).duplicated().any():
        # A code twice for one customer: the dict keeps its first place and last cost.
        type_costs = _type_costs(by_type)
        return [json.dumps(type_costs.get(int(customer_id), {})) for customer_id in customer_ids.tolist()]
    keys = {code: json.dumps(code) for code in set(codes)}
    costs = [round(cost, 2) for cost in by_type["cost"].astype(float).tolist()]
    pairs = [f"{keys[code]}: {_json_float(cost)}" for code, cost in zip(codes, costs, strict=True)]
    # Each customer's rows in their order (a stable sort), as the dict's insertion keeps them.
    order = np.argsort(owners, kind="stable")
    owners = owners[order]
    starts = np.flatnonzero(np.r_[True, owners[1:] != owners[:-1]])
    stops = np.r_[starts[1:], len(owners)]
    pairs = [pairs[k] for k in order.tolist()]
    texts = dict(zip(owners[starts].tolist(),
                     ("{" + ", ".join(pairs[a:b]) + "}" for a, b in zip(starts.tolist(), stops.tolist(), strict=True)),
                     strict=True))
    return [texts.get(customer_id, "{}") for customer_id in customer_ids.tolist()]


def _write_values(run_id: int, frame: pd.DataFrame, by_type: pd.DataFrame) -> int:
    """Insert the value rows of one chunk; returns how many.

    PostgreSQL gets one binary COPY with the rows built column-wise (core.copy_binary; 50,000
    rows: about 0.3 s, where building CustomerValue objects for bulk_create took several);
    other databases get bulk_create. Both write the same values: money rounded to cents as
    _money does, NaN share of supply as NULL, value_to_by_type as JSON.
    """
    if connection.vendor != "postgresql":
        rows = list(_value_rows(run_id, frame, by_type))
        CustomerValue.objects.bulk_create(rows, batch_size=WRITE_BATCH)
        return len(rows)
    if frame.empty:
        return 0
    by_type_json = _type_costs_json(frame.index.to_numpy(), by_type)
    table = history.load_table(run_id=run_id)
    names = list(_copy_fields(run_id, frame.iloc[:1], by_type_json[:1]))
    with (connection.cursor() as cursor,
          copy_text.copy_into(cursor, table, names, options="WITH (FORMAT binary)") as copy):
        copy.write(copy_binary.HEADER)
        # In blocks: the server stores one block while the next is made here.
        for start in range(0, len(frame), COPY_BLOCK_ROWS):
            stop = start + COPY_BLOCK_ROWS
            copy.write(copy_binary.rows(list(_copy_fields(run_id, frame.iloc[start:stop], by_type_json[start:stop]).values())))
        copy.write(copy_binary.TRAILER)
    return len(frame)


# Value rows per COPY message. A 50,000-customer chunk of the 1M data as one block (the rows
# made, then stored by the server, one after the other) took 0.50 s, in blocks of 10,000
# 0.34 s, of 5,000 0.31 s (medians of 5, binary rows; the client's CPU 0.29-0.32 s). As text,
# before the binary rows: 0.97 s whole, 0.70 s in blocks of 10,000 (client 0.65 s).
COPY_BLOCK_ROWS = 5_000


def _copy_fields(run_id: int, frame: pd.DataFrame, by_type_json: list[str]) -> dict[str, copy_binary.Field]:
    """The binary COPY fields of value rows (core.copy_binary), by column name."""
    n = len(frame)
    return {
        "run_id": copy_binary.int8(np.full(n, run_id)),
        "customer_id": copy_binary.int8(frame.index.to_numpy()),
        **{name: copy_binary.numeric_cents(frame[name].to_numpy(dtype=float), exact=_money) for name in (
            "revenue_lifetime", "margin_lifetime", "revenue_window", "margin_window", "profit_after_services",
            "clv", "value_to_customer", "service_hours")},
        **{name: copy_binary.numeric_cents(frame[name].to_numpy(dtype=float), exact=_money, null_nan=True)
           for name in ("clv_low", "clv_high", "clv_to_infinity")},
        "median_lifetime_weeks": copy_binary.float8(frame["median_lifetime_weeks"].to_numpy(dtype=float), null_nan=True),
        "basis": copy_binary.text(frame["basis"].to_numpy(dtype=str)),
        "share_of_supply": copy_binary.float8(frame["share_of_supply"].to_numpy(dtype=float), null_nan=True),
        "abc_class": copy_binary.text(frame["abc_class"].to_numpy(dtype=str)),
        "purchase_days": copy_binary.int4(frame["purchase_days"].to_numpy()),
        "p_alive": copy_binary.float8(frame["p_alive"].to_numpy(dtype=float), null_nan=True),
        "expected_purchases": copy_binary.float8(frame["expected_purchases"].to_numpy(dtype=float), null_nan=True),
        "is_thin": copy_binary.boolean(frame["is_thin"].to_numpy()),
        "referral_value": copy_binary.numeric_cents(frame["referral_value"].to_numpy(dtype=float), exact=_money),
        "service_count": copy_binary.int4(frame["service_count"].to_numpy()),
        "value_to_by_type": copy_binary.jsonb(by_type_json),
        "segment": copy_binary.text(frame["segment"].to_numpy(dtype=str)),
        **{name: copy_binary.float8(frame[name].to_numpy(dtype=float)) for name in MODEL_INPUTS},
    }


def _value_rows(run_id: int, frame: pd.DataFrame, by_type: pd.DataFrame):
    type_costs = _type_costs(by_type)
    columns = [
        "revenue_lifetime", "margin_lifetime", "revenue_window", "margin_window", "profit_after_services",
        "share_of_supply", "abc_class", "purchase_days", "p_alive", "expected_purchases", "clv", "clv_low",
        "clv_high", "is_thin", "value_to_customer", "service_count", "service_hours", "segment",
        "clv_to_infinity", "median_lifetime_weeks", "basis", "referral_value", *MODEL_INPUTS,
    ]
    for customer_id, *values in frame[columns].itertuples(name=None):
        row = dict(zip(columns, values, strict=False))
        share = row["share_of_supply"]
        yield CustomerValue(
            run_id=run_id,
            customer_id=int(customer_id),
            revenue_lifetime=_money(row["revenue_lifetime"]),
            margin_lifetime=_money(row["margin_lifetime"]),
            revenue_window=_money(row["revenue_window"]),
            margin_window=_money(row["margin_window"]),
            profit_after_services=_money(row["profit_after_services"]),
            share_of_supply=None if share is None or np.isnan(share) else float(share),
            abc_class=row["abc_class"],
            purchase_days=int(row["purchase_days"]),
            p_alive=_float_or_none(row["p_alive"]),
            expected_purchases=_float_or_none(row["expected_purchases"]),
            clv=_money(row["clv"]),
            clv_low=None if math.isnan(row["clv_low"]) else _money(row["clv_low"]),
            clv_high=None if math.isnan(row["clv_high"]) else _money(row["clv_high"]),
            clv_to_infinity=None if math.isnan(row["clv_to_infinity"]) else _money(row["clv_to_infinity"]),
            median_lifetime_weeks=_float_or_none(row["median_lifetime_weeks"]),
            basis=row["basis"],
            is_thin=bool(row["is_thin"]),
            value_to_customer=_money(row["value_to_customer"]),
            service_count=int(row["service_count"]),
            service_hours=_money(row["service_hours"]),
            value_to_by_type=type_costs.get(int(customer_id), {}),
            segment=row["segment"],
            referral_value=_money(row["referral_value"]),
            **{name: float(row[name]) for name in MODEL_INPUTS},
        )


def finish_run_if_complete(*, run_id: int, warm: bool = True, ahead: ReadAhead | None = None) -> bool:
    """Complete the run once every chunk is written. Exactly one caller wins the claim.

    `warm=False` skips warming the dashboard cache (a series of back-dated runs warms once,
    after the last). `ahead`: what prepare_run read ahead for this finish (in-process)."""
    if ValuationChunk.objects.filter(run_id=run_id).exclude(status=ValuationChunk.Status.DONE).exists():
        return False
    claimed = (
        ValuationRun.objects.filter(pk=run_id, status=ValuationRun.Status.RUNNING, stage="scoring")
        .update(stage="finishing", heartbeat_at=timezone.now())
    )
    if not claimed:
        return False
    run = ValuationRun.objects.get(pk=run_id)
    with keep_alive(run_id=run_id):  # the finish takes a minute at 1M customers: still alive
        # Short transactions of its own (history.close_run): attaching the partition locks the value
        # table until commit, and nothing shows the run before it completes. The server builds the
        # indexes on connections of their own while this process groups the run's rows for the
        # summary (the client's work): at 1M customers each took about 10 s, one after the other
        # with one side idle. The rows' values are read from the run's table, or taken from the
        # prepare's memory (in-process: ahead.values).
        indexing = in_background(lambda: history.close_run(run_id=run_id))
        # The cross-sell peers read the window's transactions again (the summary's rows hold no
        # products): on a connection of its own, while this one writes the summary and the work
        # items, which mostly keep the client busy.
        ahead = ahead or ReadAhead()
        peer_sums = ahead.peer_sums or in_background(lambda: cross_sell.peer_category_sums(
            run_id=run_id, as_of=run.as_of, window_months=int((run.settings or {}).get("window_months", 12))))
        # The run's rows are read once: the summary, the work items and the peers use them. The
        # summary is written before the run completes (nothing shows a run's summary before then):
        # inside the completion's transaction it held the run's row, and with it every heartbeat,
        # for as long as it took.
        # Its service cost views are one grouped query over the service events: read beside it.
        service_costs = ahead.service_costs or in_background(lambda: run_summary.service_cost_views(as_of=run.as_of))
        _read_for_work_items(run, ahead)
        staged_items = None
        try:
            rows = run_summary.write_run_summary(run_id=run_id, values=ahead.values, service_costs=service_costs)
            ahead.values = None  # the rows hold their own copies (about 90 MB at 1M customers)
            # The server's last step before completion, the attach, is one core's check of every
            # row: the work items are found and loaded meanwhile, out of sight until installed.
            staged_items = _stage_work_items(run, rows=rows, ahead=ahead)
        finally:
            try:
                indexing.result()  # a run completes attached; a failed summary still waits for the builds
            except Exception:
                _drop_unfinished(run_id, staged_items)
                raise
        try:
            completed = _complete_run(run_id)
        except Exception:
            _drop_unfinished(run_id, staged_items)
            raise
        if not completed:  # taken over meanwhile and marked failed: the run that took over owns the day
            _drop_unfinished(run_id, staged_items)
            return False
    # Short transactions of their own: dropping a partition locks the whole value table until commit.
    # Same as-of again replaces the earlier result instead of keeping two.
    replaced = ValuationRun.objects.filter(as_of=run.as_of).exclude(pk=run_id).exclude(status=ValuationRun.Status.RUNNING)
    for step, call in (("replacing the earlier run of the same day", lambda: history.drop_runs(list(replaced.values_list("pk", flat=True)))),
                       ("thinning the value history", apply_retention)):
        try:
            with transaction.atomic():
                call()
        except Exception:  # the next run tries again; this run itself is complete
            logger.exception("%s after run %s failed", step.capitalize(), run_id)
    _refresh_derived(run_id, rows=rows, peer_sums=peer_sums, ahead=ahead, staged_items=staged_items)
    del rows
    if warm:
        _warm_dashboard()
    return True


def _complete_run(run_id: int) -> bool:
    """Mark the finished run completed; False when it was taken over (marked failed) meanwhile."""
    with transaction.atomic():
        count = CustomerValue.objects.filter(run_id=run_id).count()
        if not ValuationRun.objects.filter(pk=run_id, status=ValuationRun.Status.RUNNING).update(
            status=ValuationRun.Status.COMPLETED, stage="done", finished_at=timezone.now(), rows_written=count
        ):
            return False
        # The staged values of earlier runs are not needed any more (this run's stay, so that
        # a chunk of it can be written again).
        ValuationChunk.objects.exclude(run_id=run_id).exclude(staged=None).update(staged=None)
        run_summary.drop_other_summaries(run_id=run_id)
    return True


def _drop_unfinished(run_id: int, staged_items: worklist.StagedWorkItems | None = None) -> None:
    """The summary and the work items are written before the run completes: a run that does
    not complete keeps neither (up to ~100 MB at a million customers, never shown). Best
    effort: an error here must not hide the one that stopped the run."""
    for what, drop in (("summary", lambda: run_summary.drop_summary(run_id=run_id)),
                       ("work items", lambda: worklist.discard_work_items(staged_items))):
        try:
            drop()
        except Exception:
            logger.exception("Dropping the %s of run %s, which did not complete, failed", what, run_id)


def _read_for_work_items(run: ValuationRun, ahead: ReadAhead) -> None:
    """What the work items read besides the run's rows (worklist.stage_work_items), on
    connections of their own: by an in-process run's prepare, else by the finish (a Celery
    worker's), so that it is at hand once the summary is written."""
    if ahead.compared_values is None:
        ahead.compared_values = in_background(lambda: worklist.compared_values(run))
    if ahead.detractors is None:
        ahead.detractors = in_background(lambda: worklist.latest_detractor_scores(as_of=run.as_of))
    if ahead.service_spend is None:
        ahead.service_spend = in_background(lambda: worklist.service_spend_by_type(as_of=run.as_of))


def _work_item_inputs(rows: dict | None, ahead: ReadAhead) -> dict:
    """What the work items take from the run's rows (as the summary read them) and from the
    reads ahead, as worklist.stage_work_items and rebuild_work_items take it."""
    values, customers = run_summary.worklist_frames(rows) if rows is not None else (None, None)
    return {"latest_values": values, "customers": customers, "previous_values": _read_ahead(ahead.compared_values),
            "detractors": _read_ahead(ahead.detractors), "spend": _read_ahead(ahead.service_spend)}


def _stage_work_items(run: ValuationRun, *, rows: dict, ahead: ReadAhead) -> worklist.StagedWorkItems | None:
    """The run's work items before it completes (worklist.stage_work_items), from its rows as
    the summary read them and what was read ahead; None when that fails (logged): the run
    then finds them once complete."""
    try:
        return worklist.stage_work_items(run, **_work_item_inputs(rows, ahead))
    except Exception:
        logger.exception("Finding the work items of run %s before it completes failed; found after it", run.pk)
        return None


def _refresh_derived(run_id: int, *, rows: dict | None = None, peer_sums=None, ahead: ReadAhead | None = None,
                     staged_items: worklist.StagedWorkItems | None = None) -> None:
    """Worklists (the two latest runs compared) and cross-sell peers, when this run is the
    latest or the one before it; from the run's rows as the summary read them, when given,
    the peers' sums (cross_sell.peer_category_sums) and what the work items read besides the
    run's rows (the compared run's values, detractors, service spend) when read ahead. Work
    items staged before completion are installed when the runs they compare are still the
    two latest (worklist.install_work_items), else found again.
    Derived figures: a failure is logged, never fails the run."""
    ahead = ahead or ReadAhead()

    def work_items():
        if staged_items is not None and worklist.install_work_items(staged_items) is not None:
            return
        worklist.rebuild_work_items(run_id=run_id, **_work_item_inputs(rows, ahead))

    def peers():
        cross_sell.rebuild_peer_categories(run_id=run_id, peers=run_summary.peer_counts(rows) if rows is not None else None,
                                           sums=peer_sums.result() if peer_sums is not None else None)

    refreshes = [("work items", work_items), ("cross-sell peers", peers)]
    for name, refresh in refreshes:
        try:
            refresh()
        except Exception:
            logger.exception("Refreshing %s after run %s failed", name, run_id)


def _read_ahead(read):
    """A read-ahead's result, or None when there is none or it failed (logged): the caller then
    reads for itself."""
    if read is None:
        return None
    try:
        return read.result()
    except Exception:
        logger.warning("A read ahead of the finish failed; read again", exc_info=True)
        return None


def _warm_dashboard() -> None:
    # A cold cache only costs the first visitor time; it must never fail the run.
    from .dashboard import warm_dashboard

    try:
        warm_dashboard()
    except Exception:
        logger.exception("Warming the dashboard cache failed")


def apply_retention() -> history.ThinningResult:
    """The value history's nightly step (valuation/history.py): every run of the last 90
    days, month-end snapshots up to the retention period, older runs' list indexes dropped.
    The newest completed runs and the one the latest run's summary compares with always stay."""
    return history.thin_history(today=today())


def fail_run(*, run_id: int, error: str) -> None:
    ValuationRun.objects.filter(pk=run_id, status=ValuationRun.Status.RUNNING).update(
        status=ValuationRun.Status.FAILED, finished_at=timezone.now(), error=error[:4000]
    )


# --- model health and company figures -------------------------------------------------------


# Stored with the run in English; the model-health panel translates it (cockpit STORED_RUN_NOTES).
TOO_LITTLE_HISTORY = "Too little history before the holdout period for a back-test."


def run_backtest(*, as_of: dt.date, settings: engine.EngineSettings,
                 reads: selectors.TransactionInputs | None = None, customers: pd.DataFrame | None = None) -> dict:
    """Choose the purchase model by a holdout back-test on the company's own history
    (engine.compare_models): fit each model on history up to as_of minus the holdout and
    compare its forecast of holdout purchases and margin with what happened.

    Returns compare_models' result (model, reason, models_compared, range_calibration) and,
    for the model-health chart, the chosen model's purchase figures against the naive guess
    (each customer buys as often as before).
    """
    if reads is None:
        first = selectors.first_transaction_day(until=as_of)
        calibration_end = engine.backtest_calibration_end(first, as_of, settings.holdout_weeks)
    else:
        calibration_end = reads.calibration_end
    if calibration_end is None:
        return {"model": "bgnbd", "skipped": TOO_LITTLE_HISTORY}
    weeks = (as_of - calibration_end).days / 7.0
    if reads is None:
        fence = selectors.purchase_day_fence(as_of=calibration_end)
        summary = selectors.transaction_summary(as_of=calibration_end, window_months=settings.window_months, fence=fence)
        summary = summary[summary["purchase_days"] > 0]
        holdout = selectors.holdout_outcome(after=calibration_end, until=as_of)
    else:
        summary, holdout = reads.calibration, reads.holdout
    if len(summary) < 20:
        return {"model": "bgnbd", "skipped": TOO_LITTLE_HISTORY}
    if customers is None:
        customers = selectors.customer_frame(as_of=calibration_end).set_index("customer_id")
    lost_on = pd.to_datetime(customers["lost_on"]).reindex(summary.index)
    summary = summary.assign(lost=(lost_on <= pd.Timestamp(calibration_end)).to_numpy(dtype=bool))
    comparison = engine.compare_models(summary, holdout, weeks, settings)
    actual = holdout["holdout_purchases"].reindex(summary.index, fill_value=0).to_numpy(dtype=float)
    x, T = summary["frequency"].to_numpy(dtype=float), summary["age_weeks"].to_numpy(dtype=float)
    naive = np.where(T > 0, x / np.where(T > 0, T, 1.0), 0.0) * weeks
    chosen = comparison["models_compared"].get(comparison["model"], {})
    purchases = chosen.get("purchases")
    return {
        **comparison,
        "calibration_end": calibration_end.isoformat(),
        "expected_repeat_purchases": purchases["predicted_total"] if purchases else None,
        "actual_repeat_purchases": float(actual.sum()),
        "mae_per_customer": purchases["mae"] if purchases else None,
        "naive_mae_per_customer": float(np.mean(np.abs(naive - actual))),
    }


def describe_chosen_model(backtest: dict, *, pick: str | None) -> None:
    """After a tie broken on the whole history the chosen model is not the back-test's pick:
    the panel's holdout purchase figures become the chosen model's; the range calibration,
    measured on the pick's ranges only, says whose it is."""
    chosen = backtest.get("model")
    if pick is None or chosen == pick:
        return
    purchases = ((backtest.get("models_compared") or {}).get(chosen) or {}).get("purchases")
    backtest["expected_repeat_purchases"] = purchases["predicted_total"] if purchases else None
    backtest["mae_per_customer"] = purchases["mae"] if purchases else None
    if backtest.get("range_calibration"):
        backtest["range_calibration"] = {**backtest["range_calibration"], "model": pick}


def growth_period_ends(as_of: dt.date, years: int = 3) -> list[dt.date]:
    """The ends of the trailing 12-month periods of earned growth, oldest first."""
    return [(pd.Timestamp(as_of) - pd.DateOffset(years=k)).date() for k in range(years, -1, -1)]


def earned_growth(*, as_of: dt.date, years: int = 3, revenue: pd.DataFrame | None = None,
                  customers: pd.DataFrame | None = None) -> list[dict]:
    """Earned growth for trailing 12-month periods ending at as_of (complete years only).
    ``revenue`` (revenue_by_customer_period's frame for these periods) and ``customers``
    (customer_frame) when the run has read them already."""
    ends = growth_period_ends(as_of, years)
    if revenue is None:
        revenue = selectors.revenue_by_customer_period(period_ends=ends)
    if customers is None:
        customers = selectors.customer_frame(as_of=as_of)
    table = engine.earned_growth(revenue, customers, period_end_dates=ends)
    return [
        {k: (v.date().isoformat() if isinstance(v, pd.Timestamp) else (None if pd.isna(v) else v)) for k, v in row.items()}
        for row in table.to_dict(orient="records")
    ]


# --- entry points ---------------------------------------------------------------------------


def run_valuation(
    *, as_of: dt.date | None = None, trigger: str = ValuationRun.Trigger.COMMAND,
    progress: Callable[[str], None] | None = None, warm: bool = True,
) -> ValuationRun:
    """The whole run in this process, with progress messages (the command and eager mode)."""
    say = progress or (lambda message: None)
    run = start_run(as_of=as_of or today(), trigger=trigger, owner=owner_label())
    try:
        with keep_alive(run_id=run.pk):
            _run_steps(run, say, warm=warm)
    except Exception as exc:
        fail_run(run_id=run.pk, error=f"{type(exc).__name__}: {exc}")
        raise
    run.refresh_from_db()
    return run


def _run_steps(run: ValuationRun, say: Callable[[str], None], *, warm: bool) -> None:
    started = time.monotonic()
    say(f"Run {run.pk} as of {run.as_of}: fitting the models on all customers…")
    ahead = ReadAhead()
    chunk_ids = prepare_run(run_id=run.pk, ahead=ahead)
    run.refresh_from_db()
    say(f"Fitted in {time.monotonic() - started:.1f} s; scoring {run.customer_count} customers in {len(chunk_ids)} chunks.")
    for done, rows in enumerate(_write_chunks(chunk_ids, scored=ahead.scored), start=1):
        say(f"  chunk {done}/{len(chunk_ids)}: {rows} customers written ({time.monotonic() - started:.1f} s)")
    ahead.scored = None
    release_freed_memory()  # the scored frames, before the finish's own peak
    finish_run_if_complete(run_id=run.pk, warm=warm, ahead=ahead)
    run.refresh_from_db()
    say(f"Run {run.pk} {run.status} in {time.monotonic() - started:.1f} s: {run.rows_written} value rows.")


# Chunks an in-process run writes at once on PostgreSQL. One writer's client (making the rows)
# and the server (storing them) take turns, so one keeps 1.0-1.5 of 2 cores busy; a second
# writer fills the gaps, as two Celery workers do.
IN_PROCESS_WRITERS = 2


CHUNK_WRITER_THREADS = "chunk-writer"


def _write_chunks(chunk_ids: list[int], *, scored: tuple[pd.DataFrame, pd.DataFrame] | None = None) -> Iterator[int]:
    """score_chunk for each chunk; the rows written, in the order the chunks finish. SQLite
    (one writer at a time) and a run inside a transaction (tests: other connections would not
    see its rows) write one chunk after the other.

    A writer whose connection fails (refused: too many clients; dropped mid-chunk) gives its
    chunk back at once and it is written on the run's own connection, as the reads beside the
    run are: a missing connection costs time, not the run. A chunk whose write had committed
    is not written again (its claim finds it done). Any other error fails the run. ``scored``:
    see score_chunk."""
    if connection.vendor != "postgresql" or connection.in_atomic_block or IN_PROCESS_WRITERS < 2:
        for chunk_id in chunk_ids:
            yield score_chunk(chunk_id=chunk_id, scored=scored)
        return
    pool = ThreadPoolExecutor(max_workers=IN_PROCESS_WRITERS, thread_name_prefix=CHUNK_WRITER_THREADS)
    try:
        writes = {pool.submit(on_own_connection(score_chunk), chunk_id=chunk_id, scored=scored): chunk_id
                  for chunk_id in chunk_ids}
        for write in as_completed(writes):
            try:
                yield write.result()
            except (OperationalError, psycopg.OperationalError):  # the COPY raises psycopg's own
                chunk_id = writes[write]
                logger.warning("Chunk %s failed on a connection of its own; writing it on the run's", chunk_id,
                               exc_info=True)
                release_chunk(chunk_id=chunk_id)  # held by this process if it failed after its claim
                yield score_chunk(chunk_id=chunk_id, scored=scored)
    finally:
        # The chunks not started yet are not written when the run fails.
        pool.shutdown(wait=True, cancel_futures=True)


def start_nightly_run(*, as_of: dt.date) -> ValuationRun | None:
    """Claim today's nightly run unless it is done, running, or failed too often."""
    if has_completed_run(as_of=as_of):
        return None
    failures = ValuationRun.objects.filter(as_of=as_of, trigger=ValuationRun.Trigger.NIGHTLY, status=ValuationRun.Status.FAILED)
    if failures.count() >= MAX_NIGHTLY_ATTEMPTS:
        return None  # a run that keeps failing waits for a person (the failures are on the settings page)
    try:
        return start_run(as_of=as_of, trigger=ValuationRun.Trigger.NIGHTLY)
    except RunAlreadyRunning:
        logger.info("Nightly valuation skipped: a run is already in progress.")
        return None


def resume_stalled_runs() -> list[int]:
    """Chunks of the running run whose holder stopped beating, to queue again (a second
    delivery is harmless: it cannot claim a chunk that is held or done).

    Chunks never started are only taken when the whole run made no progress for that long
    (they may simply be waiting in the queue).
    """
    cutoff = timezone.now() - stale_after()
    run = ValuationRun.objects.filter(status=ValuationRun.Status.RUNNING, stage="scoring").first()
    if run is None:
        return []
    lost = Q(status=ValuationChunk.Status.RUNNING, heartbeat_at__lt=cutoff)
    if run.heartbeat_at and run.heartbeat_at < cutoff:
        lost |= Q(status=ValuationChunk.Status.PENDING)
    chunk_ids = list(run.chunks.filter(lost).values_list("pk", flat=True))
    if chunk_ids:
        _touch(run.pk)
    return chunk_ids
