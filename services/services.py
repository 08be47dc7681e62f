"""Writes about free services: log, change and delete service events.

Every change goes through `save()`/`delete()` of one instance, so django-simple-history keeps
who changed what and when, with the row before and after.
"""

import datetime as dt
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from customers.access import can_log_for
from customers.models import Customer
from customers.roles import Role, role_of

from .models import ServiceEvent, ServiceType


def can_change_event(*, user, event: ServiceEvent) -> bool:
    """Own entries may be changed by whoever logged them; managers may change any."""
    return role_of(user) == Role.MANAGER or (event.logged_by_id is not None and event.logged_by_id == user.pk)


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
) -> ServiceEvent:
    """Record one free service given to a customer; `user` is who logged it."""
    _check_may_log(user=user, customer=customer)
    if not service_type.active:
        raise ValidationError({"service_type": _("This service type is no longer in use.")})
    event = ServiceEvent(
        customer=customer, service_type=service_type, date=date, quantity=quantity, note=note.strip(), logged_by=user
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
    if not can_change_event(user=user, event=event):
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
    if not can_change_event(user=user, event=event):
        raise PermissionDenied("Only the person who logged a service, or a manager, may delete it.")
    event._history_user = user
    event.delete()

