"""Writes about free services: log, change and delete service events.

Every change goes through `save()`/`delete()` of one instance, so django-simple-history keeps
who changed what and when, with the row before and after.
"""

import datetime as dt
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

from core.bulk import BULK_BATCH, BulkOutcome, BulkRejected, existing_by, report_duplicates, visible_ids
from customers.access import can_change_entry, can_log_for
from customers.models import Customer

from .models import ServiceEvent, ServiceType, StandardCost


def _check_may_log(*, user, customer: Customer) -> None:
    if not can_log_for(user, customer):
        raise PermissionDenied("This user may not log services for this customer.")


def _validate(event: ServiceEvent) -> None:
    # Model constraints (quantity > 0) are checked here too, so a bad call fails with a
    # ValidationError naming the field instead of an IntegrityError from the database.
    event.full_clean(exclude=["logged_by", "external_id"])


@transaction.atomic
def log_service_event(
    *,
    user,
    customer: Customer,
    service_type: ServiceType,
    date: dt.date,
    quantity: Decimal = Decimal("1"),
    note: str = "",
    external_id: str | None = None,
) -> ServiceEvent:
    """Record one free service given to a customer; `user` is who logged it. One history row."""
    _check_may_log(user=user, customer=customer)
    if not service_type.active:
        raise ValidationError({"service_type": _("This service type is no longer in use.")})
    event = ServiceEvent(
        customer=customer, service_type=service_type, date=date, quantity=quantity, note=note.strip(), logged_by=user,
        external_id=external_id,
    )
    _validate(event)
    event._history_user = user
    event.save()
    return event


@transaction.atomic
def update_service_event(
    *,
    user,
    event: ServiceEvent,
    customer: Customer,
    service_type: ServiceType,
    date: dt.date,
    quantity: Decimal,
    note: str = "",
) -> ServiceEvent:
    """Change an entry; the history keeps the row as it was before."""
    if not can_change_entry(user, logged_by_id=event.logged_by_id):
        raise PermissionDenied("Only the person who logged a service, or a manager, may change it.")
    if customer.pk != event.customer_id:
        _check_may_log(user=user, customer=customer)
    event.customer = customer
    event.service_type = service_type
    event.date = date
    event.quantity = quantity
    event.note = note.strip()
    _validate(event)
    event._history_user = user
    event.save()
    return event


@transaction.atomic
def delete_service_event(*, user, event: ServiceEvent) -> None:
    """Delete an entry; the history keeps a final record of it."""
    if not can_change_entry(user, logged_by_id=event.logged_by_id):
        raise PermissionDenied("Only the person who logged a service, or a manager, may delete it.")
    event._history_user = user
    event.delete()


def bulk_upsert_service_events(*, rows: list[dict], user, visible_customers, may_edit_all: bool) -> BulkOutcome:
    """Create service events, or update those with a known external_id, all or nothing.

    Audited like single edits: every created or changed event gets a history record.
    """
    errors: list[dict] = []
    report_duplicates(rows, "external_id", errors)
    known = visible_ids({row["customer"] for row in rows}, visible_customers)
    types = dict(ServiceType.objects.values_list("code", "id"))
    for index, row in enumerate(rows):
        if row["customer"] not in known:
            errors.append({"row": index, "field": "customer", "message": f"Unknown customer {row['customer']}."})
        if row["service_type"] not in types:
            errors.append({"row": index, "field": "service_type", "message": f"Unknown service type {row['service_type']!r}."})
    ids = [row["external_id"] for row in rows if row.get("external_id")]
    existing = existing_by(ServiceEvent, "external_id", ids)
    for index, row in enumerate(rows):
        before = existing.get(row.get("external_id"))
        if before is not None and not may_edit_all and before.logged_by_id != user.pk:
            errors.append({"row": index, "field": "external_id",
                           "message": "An event with this external_id exists and was logged by someone else."})
    if errors:
        raise BulkRejected(errors)
    fields = ["customer_id", "service_type_id", "date", "quantity", "note"]
    outcome = BulkOutcome(rows=len(rows))
    new, changed = [], []
    for row in rows:
        values = {"customer_id": row["customer"], "service_type_id": types[row["service_type"]], "date": row["date"],
                  "quantity": row["quantity"], "note": row["note"]}
        before = existing.get(row.get("external_id"))
        if before is None:
            new.append(ServiceEvent(external_id=row.get("external_id") or None, logged_by=user, **values))
        elif any(getattr(before, name) != value for name, value in values.items()):
            for name, value in values.items():
                setattr(before, name, value)
            changed.append(before)
        else:
            outcome.unchanged += 1
    with transaction.atomic():
        if new:
            bulk_create_with_history(new, ServiceEvent, batch_size=BULK_BATCH, default_user=user)
        if changed:
            now = timezone.now()
            for obj in changed:
                obj.updated_at = now
            bulk_update_with_history(changed, ServiceEvent, [*fields, "updated_at"], batch_size=BULK_BATCH, default_user=user)
    outcome.created, outcome.updated = len(new), len(changed)
    return outcome


def add_standard_cost(*, service_type: ServiceType, valid_from: dt.date, cost_per_unit: Decimal, user) -> StandardCost:
    """A new cost for a service type, valid from a date: the history only ever grows.

    Old rows are never edited and a new cost cannot be dated before the latest one, so
    services given before the new date keep the value they had.
    """
    if cost_per_unit is None or cost_per_unit < 0:
        raise ValidationError({"cost_per_unit": _("A standard cost cannot be negative.")}, code="negative")
    with transaction.atomic():
        # Lock the type's row: two managers adding a cost at once are checked one after the other.
        ServiceType.objects.select_for_update().filter(pk=service_type.pk).first()
        existing = set(StandardCost.objects.filter(service_type=service_type).values_list("valid_from", flat=True))
        if valid_from in existing:
            raise ValidationError(
                {"valid_from": _("%(type)s already has a cost valid from %(date)s. Costs are never edited: "
                                 "choose a later date for the new cost.")
                 % {"type": service_type.display_name, "date": date_format(valid_from, "SHORT_DATE_FORMAT")}},
                code="duplicate",
            )
        latest = max(existing, default=None)
        if latest is not None and valid_from < latest:
            raise ValidationError(
                {"valid_from": _("The latest cost of %(type)s is valid from %(date)s. A new cost must start "
                                 "after it, so the value of services already given never changes.")
                 % {"type": service_type.display_name, "date": date_format(latest, "SHORT_DATE_FORMAT")}},
                code="before_latest",
            )
        try:
            with transaction.atomic():
                return StandardCost.objects.create(
                    service_type=service_type, valid_from=valid_from, cost_per_unit=cost_per_unit, created_by=user
                )
        except IntegrityError as exc:  # a concurrent insert on the same day
            raise ValidationError(
                {"valid_from": _("This service type already has a standard cost valid from that date.")},
                code="duplicate",
            ) from exc


# --- the catalogue of service types ------------------------------------------------------------


@transaction.atomic
def save_service_type(
    *,
    service_type: ServiceType | None = None,
    name: str,
    name_de: str = "",
    unit: str,
    description: str = "",
    active: bool = True,
    sort_order: int = 0,
) -> ServiceType:
    """Create a service type, or change one's names, description, order and whether it is offered.

    The unit of a type with logged services stays: their quantities were counted in it, and
    changing it would silently revalue every one of them.
    """
    creating = service_type is None
    service_type = service_type or ServiceType()
    if not creating and unit != service_type.unit and ServiceEvent.objects.filter(service_type=service_type).exists():
        raise ValidationError(
            {"unit": _("Services of this type are already logged in %(unit)s; the unit cannot change. "
                       "Create a new service type instead.") % {"unit": service_type.get_unit_display()}},
            code="unit_in_use",
        )
    service_type.name, service_type.name_de = name.strip(), name_de.strip()
    service_type.unit, service_type.description = unit, description
    service_type.active, service_type.sort_order = active, sort_order
    if creating:
        service_type.code = _free_code(service_type.name)
    service_type.full_clean()
    service_type.save()
    return service_type


def _free_code(name: str) -> str:
    from django.utils.text import slugify

    base = (slugify(name).replace("-", "_") or "service")[:34]
    taken = set(ServiceType.objects.filter(code__startswith=base).values_list("code", flat=True))
    code, number = base, 2
    while code in taken:
        code, number = f"{base}_{number}", number + 1
    return code
