"""The value statement: the free services a customer got in a period, valued at standard cost.

What a sales rep takes into a price negotiation ("this is what we gave you"), as a printable
page and as a PDF rendered with WeasyPrint.
"""

import datetime as dt
import mimetypes
import re
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.staticfiles import finders
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from customers.models import Customer
from services.models import ServiceEvent
from services.selectors import service_event_value

from .selectors import service_totals_by_type

# WeasyPrint resolves the PDF's relative URLs against this made-up origin; the fetcher below
# serves only static files under it and refuses everything else (no network, no file://).
PDF_BASE_URL = "https://statement.invalid/"
# A statement covers at most this span: enough for any negotiation, bounded for the PDF.
MAX_STATEMENT_DAYS = 366 * 5


@dataclass
class ValueStatement:
    customer: Customer
    start: dt.date
    end: dt.date
    events: list
    by_type: list[dict]
    total: Decimal
    created_at: dt.datetime
    issuer: dict

    @property
    def count(self) -> int:
        return len(self.events)


def value_statement(*, customer: Customer, start: dt.date, end: dt.date) -> ValueStatement:
    """Every free service of the period with its value, totals by type and the grand total.

    Each service is valued at the standard cost valid on the day it was given, so a cost
    change inside the period splits the period correctly. Two queries.
    """
    events = list(
        service_event_value(
            ServiceEvent.objects.filter(customer=customer, date__range=(start, end))
            .select_related("service_type")
            .order_by("date", "id")
        )
    )
    by_type = service_totals_by_type(customer_id=customer.pk, start=start, end=end)
    total = sum((row["value"] or Decimal(0) for row in by_type), Decimal(0))
    return ValueStatement(customer, start, end, events, by_type, total, timezone.localtime(), company_letterhead())


def static_files_fetcher():
    """A WeasyPrint URL fetcher that serves static files and refuses every other URL.

    Built on call: importing WeasyPrint loads Pango, which only the PDF download needs.
    """
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    class StaticFilesOnlyFetcher(URLFetcher):
        def fetch(self, url, headers=None):
            path = static_path_for(url)
            if path is None:
                raise ValueError(f"Only static files may be loaded into a statement: {url}")
            with open(path, "rb") as handle:
                body = handle.read()
            content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
            return URLFetcherResponse(url, body, {"Content-Type": content_type})

    return StaticFilesOnlyFetcher()


def static_path_for(url: str) -> str | None:
    """The file behind a static URL under PDF_BASE_URL, or None for anything else."""
    parts = urlsplit(url)
    base = urlsplit(PDF_BASE_URL)
    static_prefix = "/" + settings.STATIC_URL.lstrip("/")
    if (parts.scheme, parts.netloc) != (base.scheme, base.netloc) or not parts.path.startswith(static_prefix):
        return None
    relative = parts.path[len(static_prefix) :]
    if not relative or ".." in relative.split("/"):
        return None
    found = finders.find(relative)
    if found:
        return found
    collected = settings.STATIC_ROOT / relative if settings.STATIC_ROOT else None
    return str(collected) if collected and collected.is_file() else None


def company_letterhead() -> dict:
    """Who issues the statement: the company's name, address lines and contact, from settings."""
    return {
        "name": settings.CVM_COMPANY_NAME,
        "address": settings.CVM_COMPANY_ADDRESS,
        "contact": settings.CVM_COMPANY_CONTACT,
    }


def page_counter_css() -> str:
    """CSS `content` for "Page x of y" in the active language, from one translatable string."""
    text = _("Page {page} of {pages}")
    parts = []
    # re.split with a group: text at even positions, the counter names at odd ones.
    for position, piece in enumerate(re.split(r"\{(pages|page)\}", text)):
        if position % 2:
            parts.append(f"counter({piece})")
        elif piece:
            parts.append('"' + piece.replace("\\", "").replace('"', "").replace("<", "") + '"')
    return " ".join(parts)


def render_statement_pdf(*, statement: ValueStatement, context: dict) -> bytes:
    """The statement as an A4 PDF: letterhead, totals on page one, page x of y."""
    from weasyprint import HTML

    html = render_to_string(
        "cockpit/statement_pdf.html",
        {**context, "statement": statement, "page_counter_css": page_counter_css()},
    )
    return HTML(string=html, base_url=PDF_BASE_URL, url_fetcher=static_files_fetcher()).write_pdf()


def statement_filename(statement: ValueStatement) -> str:
    number = "".join(ch for ch in statement.customer.number if ch.isalnum() or ch in "-_")
    stem = pgettext("file name, lower case ASCII without spaces", "value-statement")
    return f"{stem}-{number}-{statement.start:%Y%m%d}-{statement.end:%Y%m%d}.pdf"
