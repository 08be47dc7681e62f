"""Writes about customers and transactions that the pages, the API and imports share."""

from django.db import transaction

from core.bulk import BULK_BATCH, BulkOutcome, BulkRejected, existing_by, report_duplicates, visible_ids

from .models import Transaction


def bulk_upsert_transactions(*, rows: list[dict], visible_customers) -> BulkOutcome:
    """Create or update transactions by external_id, all or nothing."""
    errors: list[dict] = []
    report_duplicates(rows, "external_id", errors)
    known = visible_ids({row["customer"] for row in rows}, visible_customers)
    for index, row in enumerate(rows):
        if row["customer"] not in known:
            errors.append({"row": index, "field": "customer", "message": f"Unknown customer {row['customer']}."})
    if errors:
        raise BulkRejected(errors)
    fields = ["customer_id", "date", "revenue", "cost_of_goods", "product", "channel"]
    outcome = BulkOutcome(rows=len(rows))
    with transaction.atomic():
        existing = existing_by(Transaction, "external_id", [row["external_id"] for row in rows])
        objects = []
        for row in rows:
            obj = Transaction(
                external_id=row["external_id"], customer_id=row["customer"], date=row["date"], revenue=row["revenue"],
                cost_of_goods=row["cost_of_goods"], product=row["product"], channel=row["channel"],
            )
            before = existing.get(row["external_id"])
            if before is None:
                outcome.created += 1
            elif any(getattr(before, name) != getattr(obj, name) for name in fields):
                outcome.updated += 1
            else:
                outcome.unchanged += 1
                continue
            objects.append(obj)
        Transaction.objects.bulk_create(
            objects, batch_size=BULK_BATCH, update_conflicts=True, unique_fields=["external_id"], update_fields=fields
        )
    return outcome




def log_survey_answer(*, user, customer, answered_on, score: int, comment: str = "", contact: str = ""):
    """Record one NPS answer for a customer the user may log for."""
    from django.core.exceptions import PermissionDenied

    from .access import can_log_for
    from .models import SurveyAnswer

    if not can_log_for(user, customer):
        raise PermissionDenied("You may not log answers for this customer.")
    answer = SurveyAnswer(customer=customer, answered_on=answered_on, score=score, comment=comment, contact=contact,
                          logged_by=user)
    answer.full_clean()
    answer.save()
    return answer
