import sys

from django.db import DatabaseError
from django.http import HttpResponse, HttpResponseServerError
from django.template import engines
from django.utils.html import escape
from django.utils.translation import get_language
from django.utils.translation import gettext as _

# Rendered without context processors: they would ask the database again.
UNAVAILABLE = """<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 4rem auto; padding: 0 1rem">
<h1>{title}</h1><p>{text}</p></body></html>"""


def server_error(request):
    """500 handler; a database outage answers 503 with a plain page, no stack trace."""
    exc = sys.exc_info()[1]
    if isinstance(exc, DatabaseError):
        response = HttpResponse(
            _page(
                title=_("Temporarily unavailable"),
                text=_("The database cannot be reached right now. Nothing you saved is lost; "
                       "please try again in a minute."),
            ),
            status=503,
        )
        response["Retry-After"] = "30"
        return response
    html = engines["django"].from_string(
        _page(title=_("Something went wrong"), text=_("The error was logged. Please try again."))
    ).render({})
    return HttpResponseServerError(html)


def _page(*, title: str, text: str) -> str:
    # The language LocaleMiddleware chose for the failed request is still active here.
    return UNAVAILABLE.format(lang=escape(get_language() or "en"), title=escape(title), text=escape(text))
