"""Bulk uploads through the API: what every resource's all-or-nothing bulk write shares.

The rows arrive already checked field by field (serializers, no queries); what needs the
database is done once for all rows: customers, duplicates, existing rows, permissions.
"""

from dataclasses import dataclass

BULK_MAX_ROWS = 50_000
BULK_BATCH = 2_000  # rows per INSERT; larger batches hit SQLite's variable limit


@dataclass
class BulkOutcome:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0


class BulkRejected(Exception):
    def __init__(self, errors: list[dict]):
        super().__init__(f"{len(errors)} errors")
        self.errors = sorted(errors, key=lambda error: (error["row"], error["field"]))


def existing_by(model, field: str, values: list[str]) -> dict:
    found = {}
    for start in range(0, len(values), 10_000):
        found.update({getattr(obj, field): obj for obj in model.objects.filter(**{f"{field}__in": values[start : start + 10_000]})})
    return found


def report_duplicates(rows: list[dict], field: str, errors: list[dict]) -> None:
    first_row: dict = {}
    for index, row in enumerate(rows):
        value = row.get(field)
        if value in (None, ""):
            continue
        if value in first_row:
            errors.append({"row": index, "field": field, "message": f"Duplicate {field} {value!r}: also in row {first_row[value]}."})
        else:
            first_row[value] = index


def visible_ids(customer_ids: set[int], visible) -> set[int]:
    ids = list(customer_ids)
    found: set[int] = set()
    for start in range(0, len(ids), 10_000):
        found.update(visible.filter(pk__in=ids[start : start + 10_000]).values_list("pk", flat=True))
    return found


