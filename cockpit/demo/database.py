"""Guards, deletion of earlier demo data, the demo users, the standard-cost change, sequences."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import numpy as np
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.color import no_style
from django.db import connection, models

from customers.models import Customer, Transaction
from customers.roles import Role
from services.models import ServiceEvent, ServiceType, StandardCost
from services.selectors import standard_cost_on

from .company import (
    COST_CHANGE_MONTHS_BEFORE,
    COST_CHANGE_PERCENT,
    DEMO_LOGINS,
    DEMO_PASSWORD,
    INSIDE_LOGGED,
    SERVICE_CODES,
    SERVICE_MIX,
    UNIT_STEP,
)

# --- guards, deletion, users, costs --------------------------------------------------------

def _real_data_counts() -> dict[str, int]:
    """Non-demo rows; transactions and events of real customers count separately."""
    return {
        "customers": Customer.objects.filter(is_demo=False).count(),
        "transactions": Transaction.objects.filter(customer__is_demo=False).count(),
        "service events": ServiceEvent.objects.filter(customer__is_demo=False).count(),
    }


def _delete_demo_data(*, only_demo: bool) -> int:
    """Delete every demo customer with what hangs off it; returns how many customers went.

    The ORM's collector would load every demo customer into memory and write an audit row
    per deleted service event (a million customers, tens of millions of rows at full size),
    so rows hanging off demo customers go with one statement per relation and the customers
    with one more. Demo data is not audited: it is made and replaced by this module only.
    When the database holds nothing but demo data, PostgreSQL truncates instead.
    """
    demo = Customer.objects.filter(is_demo=True)
    count = demo.count()
    if not count:
        return 0
    quote = connection.ops.quote_name
    if only_demo and connection.vendor == "postgresql":
        tables = _cascade_tables(Customer)
        if tables is not None:
            with connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                cursor.execute("TRUNCATE " + ", ".join(quote(t) for t in sorted(tables)))
            return count
    demo_ids = f"SELECT id FROM {quote(Customer._meta.db_table)} WHERE is_demo = %s"
    for relation in _reverse_relations(Customer):
        model, field_name = relation.related_model, relation.field.name
        rows = model._base_manager.filter(**{f"{field_name}__in": demo.values("pk")})
        if relation.on_delete is models.DO_NOTHING:
            continue
        if relation.on_delete is models.CASCADE and _cascade_tables(model) == {model._meta.db_table}:
            with connection.cursor() as cursor:
                if only_demo and not relation.field.null:
                    # Every row belongs to a demo customer; SQLite empties a table fastest
                    # without a WHERE clause.
                    cursor.execute(f"DELETE FROM {quote(model._meta.db_table)}")
                else:
                    cursor.execute(
                        f"DELETE FROM {quote(model._meta.db_table)} WHERE {quote(relation.field.column)} "
                        f"IN ({demo_ids})", [True],
                    )
        elif relation.on_delete is models.CASCADE:
            rows.delete()
        elif relation.on_delete is models.SET_NULL:
            if model is Customer:
                rows = rows.filter(is_demo=False)  # demo referrals go with their customers
            rows.update(**{field_name: None})
        else:
            # PROTECT, RESTRICT, SET(...): let the ORM apply (or refuse) the rule.
            demo.delete()
            return count
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {quote(Customer._meta.db_table)} WHERE is_demo = %s", [True])
    return count


def _reverse_relations(model) -> list:
    """Foreign keys pointing at ``model`` (including many-to-many link tables)."""
    return [
        f for f in model._meta.get_fields(include_hidden=True)
        if f.auto_created and not f.concrete and (f.one_to_many or f.one_to_one)
    ]


def _cascade_tables(model, seen: set | None = None) -> set[str] | None:
    """Tables emptied with ``model``'s when every relation below it cascades, else None.

    Keys without a database constraint that do nothing on delete (audit history) neither
    block nor join the truncation.
    """
    seen = set() if seen is None else seen
    if model in seen:
        return set()
    seen.add(model)
    tables = {model._meta.db_table}
    for relation in _reverse_relations(model):
        if relation.related_model is model:
            continue  # referrals point inside the same table, emptied anyway
        if relation.on_delete is models.DO_NOTHING and not relation.field.db_constraint:
            continue
        if relation.on_delete is not models.CASCADE:
            return None
        below = _cascade_tables(relation.related_model, seen)
        if below is None:
            return None
        tables |= below
    return tables


def _ensure_users() -> dict[str, int]:
    """The demo logins, created once with the demo password and kept on later runs."""
    User = get_user_model()
    groups = {role: Group.objects.get_or_create(name=role.value)[0] for role in Role}
    ids = {}
    for login in DEMO_LOGINS:
        user = User.objects.filter(username=login.username).first()
        if user is None:
            user = User.objects.create_user(
                login.username, email=f"{login.username}@demo.invalid", password=DEMO_PASSWORD,
                first_name=login.first_name, last_name=login.last_name,
                is_staff=login.role is Role.MANAGER,
            )
        elif login.role is Role.MANAGER and not user.is_staff:
            user.is_staff = True
            user.save(update_fields=["is_staff"])
        user.groups.add(groups[login.role])
        ids[login.username] = user.pk
    return ids


def cost_change_day(as_of: date) -> date:
    """The first of the month nearest to ``COST_CHANGE_MONTHS_BEFORE`` months before ``as_of``."""
    months = as_of.year * 12 + as_of.month - 1 - COST_CHANGE_MONTHS_BEFORE + (as_of.day > 15)
    return date(months // 12, months % 12 + 1, 1)


def _ensure_cost_change(*, as_of: date) -> None:
    valid_from = cost_change_day(as_of)
    for service_type in ServiceType.objects.filter(code__in=COST_CHANGE_PERCENT):
        if StandardCost.objects.filter(service_type=service_type, valid_from=valid_from).exists():
            continue
        before = standard_cost_on(service_type_id=service_type.pk, day=valid_from - timedelta(days=1))
        percent = COST_CHANGE_PERCENT[service_type.code]
        StandardCost.objects.create(
            service_type=service_type, valid_from=valid_from,
            cost_per_unit=(before * (100 + percent) / 100).quantize(Decimal("0.01")),
        )


@dataclass(frozen=True)
class _ServiceTypes:
    ids: np.ndarray       # per catalogue code present in the database
    codes: list[str]
    mix: np.ndarray       # persona x type, cumulative
    step: np.ndarray      # quantity step per type
    top: np.ndarray       # largest quantity per type
    inside: np.ndarray    # bool: logged by inside sales


def _service_types() -> _ServiceTypes:
    present = {code: (pk, unit) for code, pk, unit in
               ServiceType.objects.filter(code__in=SERVICE_CODES).values_list("code", "pk", "unit")}
    columns = [i for i, code in enumerate(SERVICE_CODES) if code in present]
    codes = [SERVICE_CODES[i] for i in columns]
    mix = SERVICE_MIX[:, columns]
    with np.errstate(invalid="ignore", divide="ignore"):
        mix = np.nan_to_num(mix / mix.sum(axis=1, keepdims=True))
    return _ServiceTypes(
        ids=np.array([present[c][0] for c in codes], dtype=np.int64),
        codes=codes,
        mix=np.cumsum(mix, axis=1),
        step=np.array([UNIT_STEP.get(present[c][1], (1, 3))[0] for c in codes], dtype=float),
        top=np.array([UNIT_STEP.get(present[c][1], (1, 3))[1] for c in codes], dtype=float),
        inside=np.array([c in INSIDE_LOGGED for c in codes], dtype=bool),
    )


def _first_free_number(count: int) -> int:
    """Demo numbers start at C000001 unless real customers already use that range."""
    taken = [
        int(number[1:]) for number in
        Customer.objects.filter(number__startswith="C").values_list("number", flat=True)
        if number[1:].isdigit()
    ]
    highest = max(taken, default=0)
    return 1 if highest == 0 else highest + 1


def _reset_sequences() -> None:
    statements = connection.ops.sequence_reset_sql(no_style(), [Customer])
    if statements:
        with connection.cursor() as cursor:
            for sql in statements:
                cursor.execute(sql)


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)
