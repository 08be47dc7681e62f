"""A user's worklist: the latest run's stored reasons to act (valuation.worklist), for the
customers the user may see, without those marked done or snoozed, most money at stake first.

Two queries whatever the number of customers: the latest run, then one walk down the
(run, amount) index with the user's visibility and dismissals applied per row.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Exists, OuterRef, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from core.templatetags.money import format_money
from customers.access import sees_money, visible_rows
from services.models import localized_name
from valuation.models import WorkItem, WorkItemDismissal, segment_label
from valuation.selectors import latest_completed_run
from valuation.worklist import SERVICE_REASONS

WORKLIST_LENGTH = 25
SNOOZE_DAYS = 14


@dataclass
class WorklistEntry:
    item: WorkItem
    line: str
    url: str

    @property
    def reason(self) -> str:
        return self.item.reason

    @property
    def reason_label(self) -> str:
        return WorkItem.Reason(self.item.reason).label


def _percent(value) -> str:
    return f"{round(float(value) * 100):d} %" if value is not None else "–"


def reason_line(item: WorkItem) -> str:
    """The one line that says why the item is on the list."""
    Reason = WorkItem.Reason
    if item.reason == Reason.WIN_BACK:
        return _("P(alive) fell from %(before)s to %(after)s since the last run; %(amount)s CLV at stake: "
                 "call before the customer is gone.") % {
            "before": _percent(item.before), "after": _percent(item.after), "amount": format_money(item.amount, 0)}
    if item.reason == Reason.RENEGOTIATE:
        return _("Problem group: %(amount)s of free services in the window for too little margin: renegotiate "
                 "or charge them.") % {"amount": format_money(item.amount, 0)}
    if item.reason in (Reason.SEGMENT_DOWN, Reason.SEGMENT_UP):
        before, after = (item.fingerprint.split(">") + [""])[:2]
        text = (_("Moved from %(before)s to %(after)s: CLV %(change)s. Find out why before it slips further.")
                if item.reason == Reason.SEGMENT_DOWN
                else _("Moved up from %(before)s to %(after)s: CLV %(change)s. Worth a thank-you."))
        change = Decimal(repr(item.after or 0)) - Decimal(repr(item.before or 0))
        return text % {"before": segment_label(before), "after": segment_label(after),
                       "change": ("+" if change > 0 else "") + format_money(change, 0)}
    if item.reason == Reason.SERVICE_SPEND:
        return _("Free services rose from %(before)s to %(after)s in the window: check they are still "
                 "worth it.") % {"before": format_money(item.before or 0, 0), "after": format_money(item.after or 0, 0)}
    if item.reason == Reason.LOST_VALUABLE:
        return _("Lost, after earning us %(yearly)s margin a year (%(amount)s in all): try to win it back.") % {
            "yearly": format_money(item.before or 0, 0), "amount": format_money(item.amount, 0)}
    if item.reason == Reason.DETRACTOR:
        return _("A valuable customer answered the recommendation question with %(score)s of 10: ask what went "
                 "wrong.") % {"score": int(item.after or 0)}
    return str(WorkItem.Reason(item.reason).label)


# "The latest completed run, read here": callers that have read it already pass it instead.
LATEST = object()


def worklist(*, user, limit: int = WORKLIST_LENGTH, today: dt.date | None = None, run=LATEST) -> list[WorklistEntry]:
    """The user's open items of the latest run. Inside sales, who sees no money, gets the
    free-service reasons only."""
    run = latest_completed_run() if run is LATEST else run
    if run is None:
        return []
    today = today or timezone.localdate()
    dismissed = WorkItemDismissal.objects.filter(
        Q(state=WorkItemDismissal.State.DONE) | Q(until__gt=today),
        user=user, customer_id=OuterRef("customer_id"), reason=OuterRef("reason"),
        fingerprint=OuterRef("fingerprint"),
    )
    items = visible_rows(WorkItem.objects.filter(run=run), user=user).exclude(Exists(dismissed))
    if not sees_money(user):
        items = items.filter(reason__in=SERVICE_REASONS)
    items = items.select_related("customer").order_by("-amount", "customer_id", "reason")[:limit]
    return [
        WorklistEntry(item=item, line=reason_line(item), url=reverse("customers:detail", args=[item.customer_id]))
        for item in items
    ]


def dismiss(*, user, item: WorkItem, snooze_days: int | None = None) -> WorkItemDismissal:
    """Mark an item done (until its situation changes) or snoozed for some days."""
    state = WorkItemDismissal.State.SNOOZED if snooze_days else WorkItemDismissal.State.DONE
    until = timezone.localdate() + dt.timedelta(days=snooze_days) if snooze_days else None
    dismissal, _created = WorkItemDismissal.objects.update_or_create(
        user=user, customer_id=item.customer_id, reason=item.reason,
        defaults={"fingerprint": item.fingerprint, "state": state, "until": until},
    )
    return dismissal


def visible_item(*, user, pk: int) -> WorkItem | None:
    run = latest_completed_run()
    items = visible_rows(WorkItem.objects.filter(run=run), user=user)
    if not sees_money(user):
        items = items.filter(reason__in=SERVICE_REASONS)
    return items.filter(pk=pk).first()


def manager_changes(*, run=LATEST) -> tuple:
    """The latest run and what changed since the previous one (stored by the run)."""
    run = latest_completed_run() if run is LATEST else run
    changes = (run.company or {}).get("changes") if run else None
    if changes:
        if isinstance(changes.get("previous_as_of"), str):
            changes["previous_as_of"] = dt.date.fromisoformat(changes["previous_as_of"])
        for move in changes.get("segment_moves", []):
            move["from_label"], move["to_label"] = segment_label(move["from"]), segment_label(move["to"])
        for row in changes.get("service_spend", []):
            row["change"] = row["current"] - row["previous"]
            row["name"] = localized_name(row["name"], row.get("name_de", ""))  # stored in both languages
    return run, changes or {}
