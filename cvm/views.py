import sys

from django.db import DatabaseError
from django.http import HttpResponse, HttpResponseServerError
from django.template import loader
from django.utils.translation import gettext as _


def server_error(request):
    """500 handler; a database outage answers 503, no stack trace either way.

    The page is the static template 500.html rendered with a plain dict: no context
    processors, which would ask the failing database again.
    """
    exc = sys.exc_info()[1]
    if isinstance(exc, DatabaseError):
        response = HttpResponse(
            _render(
                code="503",
                title=_("Temporarily unavailable"),
                text=_("The database cannot be reached right now. Nothing you saved is lost; "
                       "please try again in a minute."),
            ),
            status=503,
        )
        response["Retry-After"] = "30"
        return response
    return HttpResponseServerError(
        _render(code="500", title=_("Something went wrong"), text=_("The error was logged. Please try again."))
    )


def _render(*, code: str, title: str, text: str) -> str:
    # The language LocaleMiddleware chose for the failed request is still active here.
    return loader.get_template("500.html").render({"code": code, "title": title, "text": text})
