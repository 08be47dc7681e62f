"""The four kinds of file: their columns, their checks and their merge into the tables."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from django.contrib.auth import get_user_model
from django.utils import timezone
from django.utils.translation import gettext as _

from core.plausibility import EARLIEST_ACQUISITION, MAX_AMOUNT, MAX_QUANTITY
from customers.models import Customer, SurveyAnswer, Transaction
from services.models import ServiceEvent, ServiceType

from .checks import Checker
from .results import ImportResult
from .staging import Staging, _counts, _distinct, _fetch


@dataclass(frozen=True)
class Spec:
    columns: list[str]
    required: list[str]


SPECS = {
    "customers": Spec(
        columns=["number", "name", "industry", "region", "owner", "acquired_on", "acquisition_channel",
                 "referred_by", "status", "lost_on", "yearly_wallet"],
        required=["number", "name"],
    ),
    "transactions": Spec(
        columns=["external_id", "customer_number", "date", "revenue", "cost_of_goods", "product", "channel"],
        required=["external_id", "customer_number", "date", "revenue"],
    ),
    "services": Spec(
        columns=["external_id", "customer_number", "service_type", "date", "quantity", "note", "logged_by"],
        required=["customer_number", "service_type", "date"],
    ),
    "survey_answers": Spec(
        columns=["external_id", "customer_number", "date", "score", "comment", "contact"],
        required=["customer_number", "date", "score"],
    ),
}


def _customer_ids(numbers: pd.Series) -> dict[str, int]:
    wanted = [number for number in numbers.unique().tolist() if number]
    ids: dict[str, int] = {}
    for start in range(0, len(wanted), 10_000):  # stays below SQLite's variable limit
        ids.update(Customer.objects.filter(number__in=wanted[start : start + 10_000]).values_list("number", "id"))
    return ids


def _user_ids() -> dict[str, int]:
    return dict(get_user_model().objects.values_list("username", "id"))


# --- transactions -----------------------------------------------------------------------------------

TRANSACTION_STAGING = Staging(
    "cvm_import_transactions",
    {"line": "integer", "external_id": "varchar(64)", "customer_number": "varchar(32)", "date": "date",
     "revenue": "numeric(14, 2)", "cost_of_goods": "numeric(14, 2)", "product": "varchar(100)",
     "channel": "varchar(50)"},
)


def _check_transactions(frame: pd.DataFrame, result: ImportResult, context: dict) -> pd.DataFrame:
    check = Checker(frame, result, context)
    out = pd.DataFrame({"line": frame["line"]})
    out["external_id"] = check.text("external_id", max_length=64, required=True)
    # Customer numbers are resolved in SQL against the staging table: one join, not a query per chunk.
    out["customer_number"] = check.text("customer_number", max_length=32, required=True)
    out["date"] = check.date("date", required=True)
    out["revenue"] = check.amount("revenue", required=True, minimum=-MAX_AMOUNT)
    out["cost_of_goods"] = check.amount("cost_of_goods", required=False, minimum=-MAX_AMOUNT, default="0")
    out["product"] = check.text("product", max_length=100)
    out["channel"] = check.text("channel", max_length=50)
    return out[check.good()]


def _merge_transactions(cursor, result: ImportResult) -> None:
    table, s = Transaction._meta.db_table, TRANSACTION_STAGING.name
    customers = Customer._meta.db_table
    unknown = f"""SELECT s.line, s.customer_number FROM {s} s
                  WHERE NOT EXISTS (SELECT 1 FROM {customers} c WHERE c.number = s.customer_number) ORDER BY s.line"""
    for line, number in _fetch(cursor, unknown):
        result.add_error(line, "customer_number", _("Unknown customer number “%(number)s”.") % {"number": number})
    fields = ["customer_id", "date", "revenue", "cost_of_goods", "product", "channel"]
    source = {"product": "COALESCE(s.product, '')", "channel": "COALESCE(s.channel, '')", "customer_id": "c.id"}
    differs = " OR ".join(_distinct(f"t.{name}", source.get(name, f"s.{name}")) for name in fields)
    _counts(cursor, f"""SELECT COUNT(*), SUM(CASE WHEN {differs} THEN 1 ELSE 0 END)
                        FROM {s} s JOIN {table} t ON t.external_id = s.external_id
                        JOIN {customers} c ON c.number = s.customer_number""", result, staging=s)
    if result.dry_run or not result.ok or not (result.new or result.updated):
        return
    changed = " OR ".join(_distinct(f"{table}.{name}", f"excluded.{name}") for name in fields)
    cursor.execute(f"""
        INSERT INTO {table} (external_id, {', '.join(fields)})
        SELECT s.external_id, {', '.join(source.get(name, f's.{name}') for name in fields)}
        FROM {s} s JOIN {customers} c ON c.number = s.customer_number WHERE true
        ON CONFLICT (external_id) DO UPDATE SET {', '.join(f'{name} = excluded.{name}' for name in fields)}
        WHERE {changed}
    """)


# --- services -----------------------------------------------------------------------------------------

SERVICE_STAGING = Staging(
    "cvm_import_services",
    {"line": "integer", "external_id": "varchar(64)", "content_key": "varchar(40)", "customer_id": "bigint",
     "service_type_id": "bigint", "date": "date", "quantity": "numeric(8, 2)", "note": "text",
     "logged_by_id": "bigint"},
)


def _check_services(frame: pd.DataFrame, result: ImportResult, context: dict) -> pd.DataFrame:
    check = Checker(frame, result, context)
    if "service_types" not in context:
        context["service_types"] = dict(ServiceType.objects.values_list("code", "id"))
        context["users"] = _user_ids()
    out = pd.DataFrame({"line": frame["line"]})
    out["external_id"] = pd.Series(check.text("external_id", max_length=64), index=out.index).replace("", None)
    numbers = frame["customer_number"]
    out["customer_id"] = check.lookup("customer_number", _customer_ids(numbers), what="customer number", required=True)
    out["service_type_id"] = check.lookup("service_type", context["service_types"], what="service type", required=True)
    out["date"] = check.date("date", required=True)
    out["quantity"] = check.amount("quantity", required=False, minimum=0, maximum=MAX_QUANTITY, default="1", positive=True)
    out["note"] = frame["note"]
    out["logged_by_id"] = check.lookup("logged_by", context["users"], what="user", required=False)
    if context.get("user_id"):
        out["logged_by_id"] = out["logged_by_id"].fillna(context["user_id"])
    # Rows without an id are keyed by their content, so the same file imported twice adds nothing.
    content = (
        numbers + "|" + frame["service_type"] + "|" + out["date"].fillna("") + "|"
        + out["quantity"].fillna("") + "|" + out["note"] + "|" + frame["logged_by"]
    )
    good = check.good()
    out, content = out[good], content[good]
    out["content_key"] = _content_keys(content)
    for name in ("customer_id", "service_type_id"):
        out[name] = out[name].astype("int64")
    out["logged_by_id"] = out["logged_by_id"].astype("Int64")
    return out


def _content_keys(content: pd.DataFrame) -> pd.Series | None:
    """A key made from a row's content, for rows the file gives no external_id."""
    return pd.util.hash_pandas_object(content, index=False).map("{:016x}".format) if len(content) else None


def _key_rows_without_id(cursor, staging: str) -> None:
    """The n-th identical row without an id gets the n-th key: two equal rows stay two, and the
    same file imported again matches them."""
    cursor.execute(f"""
        UPDATE {staging} SET external_id = 'csv-' || {staging}.content_key || '-' || CAST(r.rn AS varchar(12))
        FROM (SELECT line, ROW_NUMBER() OVER (PARTITION BY content_key ORDER BY line) AS rn
              FROM {staging} WHERE external_id IS NULL) r
        WHERE {staging}.line = r.line
    """)


def _merge_services(cursor, result: ImportResult) -> None:
    table, s = ServiceEvent._meta.db_table, SERVICE_STAGING.name
    _key_rows_without_id(cursor, s)
    fields = ["customer_id", "service_type_id", "date", "quantity", "note", "logged_by_id"]
    source = {"note": "COALESCE(s.note, '')"}
    differs = " OR ".join(_distinct(f"t.{name}", source.get(name, f"s.{name}")) for name in fields)
    _counts(cursor, f"""SELECT COUNT(*), SUM(CASE WHEN {differs} THEN 1 ELSE 0 END)
                        FROM {s} s JOIN {table} t ON t.external_id = s.external_id""", result, staging=s)
    if result.dry_run or not result.ok:
        return
    now = timezone.now()
    changed = " OR ".join(_distinct(f"{table}.{name}", f"excluded.{name}") for name in fields)
    cursor.execute(f"""
        INSERT INTO {table} (external_id, {', '.join(fields)}, created_at, updated_at)
        SELECT s.external_id, {', '.join(source.get(name, f's.{name}') for name in fields)}, %s, %s FROM {s} s WHERE true
        ON CONFLICT (external_id) DO UPDATE SET {', '.join(f'{name} = excluded.{name}' for name in fields)},
            updated_at = excluded.updated_at
        WHERE {changed}
    """, [now, now])


# --- customers ----------------------------------------------------------------------------------------

CUSTOMER_STAGING = Staging(
    "cvm_import_customers",
    {"line": "integer", "number": "varchar(32)", "name": "varchar(200)", "industry": "varchar(100)",
     "region": "varchar(100)", "owner_id": "bigint", "acquired_on": "date", "acquisition_channel": "varchar(20)",
     "referred_by": "varchar(32)", "status": "varchar(10)", "lost_on": "date", "yearly_wallet": "numeric(14, 2)"},
)


def _check_customers(frame: pd.DataFrame, result: ImportResult, context: dict) -> pd.DataFrame:
    check = Checker(frame, result, context)
    if "users" not in context:
        context["users"] = _user_ids()
    out = pd.DataFrame({"line": frame["line"]})
    out["number"] = check.text("number", max_length=32, required=True)
    out["name"] = check.text("name", max_length=200, required=True)
    out["industry"] = check.text("industry", max_length=100)
    out["region"] = check.text("region", max_length=100)
    out["owner_id"] = check.lookup("owner", context["users"], what="user", required=False)
    out["acquired_on"] = check.date("acquired_on", required=False, earliest=EARLIEST_ACQUISITION)
    out["acquisition_channel"] = check.choice(
        "acquisition_channel", Customer.Channel.choices, default=Customer.Channel.DIRECT_SALES
    )
    out["referred_by"] = pd.Series(check.text("referred_by", max_length=32), index=out.index).replace("", None)
    check.rows_failed(out["referred_by"] == out["number"], "referred_by", "A customer cannot refer itself.")
    out["status"] = check.choice("status", Customer.Status.choices, default=Customer.Status.ACTIVE)
    out["lost_on"] = check.date("lost_on", required=False, earliest=EARLIEST_ACQUISITION)
    lost = out["status"] == Customer.Status.LOST
    lost_on_given = frame["lost_on"] != ""
    check.rows_failed(lost & ~lost_on_given, "lost_on", "A lost customer needs the date it was lost.")
    check.rows_failed(~lost & lost_on_given, "lost_on", _("An active customer has no lost date."))
    out["yearly_wallet"] = check.amount("yearly_wallet", required=False, minimum=0)
    out = out[check.good()]
    out["owner_id"] = out["owner_id"].astype("Int64")
    return out


def _merge_customers(cursor, result: ImportResult) -> None:
    table, s = Customer._meta.db_table, CUSTOMER_STAGING.name
    unknown = f"""
        SELECT s.line, s.referred_by FROM {s} s
        WHERE s.referred_by IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM {table} c WHERE c.number = s.referred_by)
          AND NOT EXISTS (SELECT 1 FROM {s} o WHERE o.number = s.referred_by)
        ORDER BY s.line
    """
    for line, number in _fetch(cursor, unknown):
        result.add_error(line, "referred_by", _("Unknown customer number “%(number)s” (neither in the database nor a valid row of this file).") % {"number": number})
    fields = ["name", "industry", "region", "owner_id", "acquired_on", "acquisition_channel", "status", "lost_on",
              "yearly_wallet"]
    source = {"industry": "COALESCE(s.industry, '')", "region": "COALESCE(s.region, '')"}
    differs = " OR ".join(
        [_distinct(f"t.{name}", source.get(name, f"s.{name}")) for name in fields]
        + [_distinct("t.referred_by_id", "r.id")]
    )
    _counts(cursor, f"""SELECT COUNT(*), SUM(CASE WHEN {differs} THEN 1 ELSE 0 END)
                        FROM {s} s JOIN {table} t ON t.number = s.number
                        LEFT JOIN {table} r ON r.number = s.referred_by""", result, staging=s)
    if result.dry_run or not result.ok:
        return
    now = timezone.now()
    changed = " OR ".join(_distinct(f"{table}.{name}", f"excluded.{name}") for name in fields)
    cursor.execute(f"""
        INSERT INTO {table} (number, {', '.join(fields)}, is_demo, created_at, updated_at)
        SELECT s.number, {', '.join(source.get(name, f's.{name}') for name in fields)}, %s, %s, %s FROM {s} s WHERE true
        ON CONFLICT (number) DO UPDATE SET {', '.join(f'{name} = excluded.{name}' for name in fields)},
            updated_at = excluded.updated_at
        WHERE {changed}
    """, [False, now, now])
    # Referrals second: a referrer may be a customer the same file creates.
    cursor.execute(f"""
        UPDATE {table} SET referred_by_id = x.ref_id, updated_at = %s
        FROM (SELECT s.number, r.id AS ref_id FROM {s} s LEFT JOIN {table} r ON r.number = s.referred_by) x
        WHERE {table}.number = x.number AND {_distinct(f'{table}.referred_by_id', 'x.ref_id')}
    """, [now])


# --- survey answers (NPS) ---------------------------------------------------------------------------

SURVEY_STAGING = Staging(
    "cvm_import_survey_answers",
    {"line": "integer", "external_id": "varchar(64)", "content_key": "varchar(40)", "customer_id": "bigint",
     "answered_on": "date", "score": "smallint", "comment": "text", "contact": "varchar(200)"},
)


def _check_survey_answers(frame: pd.DataFrame, result: ImportResult, context: dict) -> pd.DataFrame:
    check = Checker(frame, result, context)
    out = pd.DataFrame({"line": frame["line"]})
    out["external_id"] = pd.Series(check.text("external_id", max_length=64), index=out.index).replace("", None)
    numbers = frame["customer_number"]
    out["customer_id"] = check.lookup("customer_number", _customer_ids(numbers), what="customer number", required=True)
    out["answered_on"] = check.date("date", required=True)
    codes, values = check.distinct("score")
    check.fail(codes, values == "", "score", "A value is required.")
    check.fail(codes, (values != "") & ~values.str.fullmatch(r"(10|[0-9])"), "score", "A whole number from 0 to 10.")
    out["score"] = values.to_numpy()[codes]
    out["comment"] = frame["comment"]
    out["contact"] = check.text("contact", max_length=200)
    # Rows without an id are keyed by their content, so the same file imported twice adds nothing.
    content = numbers + "|" + out["answered_on"].fillna("") + "|" + frame["score"] + "|" + frame["contact"]
    good = check.good()
    out, content = out[good], content[good]
    out["content_key"] = _content_keys(content)
    out["customer_id"] = out["customer_id"].astype("int64")
    out["score"] = out["score"].astype("int64")
    return out


def _merge_survey_answers(cursor, result: ImportResult) -> None:
    table, s = SurveyAnswer._meta.db_table, SURVEY_STAGING.name
    _key_rows_without_id(cursor, s)
    fields = ["customer_id", "answered_on", "score", "comment", "contact"]
    source = {"comment": "COALESCE(s.comment, '')", "contact": "COALESCE(s.contact, '')"}
    differs = " OR ".join(_distinct(f"t.{name}", source.get(name, f"s.{name}")) for name in fields)
    _counts(cursor, f"""SELECT COUNT(*), SUM(CASE WHEN {differs} THEN 1 ELSE 0 END)
                        FROM {s} s JOIN {table} t ON t.external_id = s.external_id""", result)
    if result.dry_run or not result.ok:
        return
    changed = " OR ".join(_distinct(f"{table}.{name}", f"excluded.{name}") for name in fields)
    cursor.execute(f"""
        INSERT INTO {table} (external_id, {', '.join(fields)}, created_at)
        SELECT s.external_id, {', '.join(source.get(name, f's.{name}') for name in fields)}, %s FROM {s} s WHERE true
        ON CONFLICT (external_id) WHERE external_id IS NOT NULL
        DO UPDATE SET {', '.join(f'{name} = excluded.{name}' for name in fields)}
        WHERE {changed}
    """, [timezone.now()])


KIND_STEPS = {
    "survey_answers": (SURVEY_STAGING, _check_survey_answers, _merge_survey_answers, "external_id", "external_id"),
    "customers": (CUSTOMER_STAGING, _check_customers, _merge_customers, "number", "number"),
    "transactions": (TRANSACTION_STAGING, _check_transactions, _merge_transactions, "external_id", "external_id"),
    "services": (SERVICE_STAGING, _check_services, _merge_services, "external_id", "external_id"),
}
