"""Errors Django answers before, or instead of, the API's own handler still reach API clients as
JSON: a body over the request limit, an unknown URL, a CSRF refusal, the 500 and 503 pages."""

import json

from django.conf import settings
from django.http import HttpResponse

from .api import ERROR_DESCRIPTIONS, too_big_message

API_PREFIX = "/api/"


class ApiJsonErrors:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            response.status_code < 400
            or not request.path.startswith(API_PREFIX)
            or response.get("Content-Type", "").startswith("application/json")
        ):
            return response
        status = response.status_code
        if status == 400 and _body_too_big(request):
            # Django answers an oversized body with a plain 400 before any view runs.
            status, detail = 413, too_big_message()
        else:
            detail = ERROR_DESCRIPTIONS.get(str(status), response.reason_phrase)
        answer = HttpResponse(json.dumps({"detail": detail}), status=status, content_type="application/json")
        for header in ("Retry-After", "WWW-Authenticate", "Allow"):
            if header in response:
                answer[header] = response[header]
        return answer


def _body_too_big(request) -> bool:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return False
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return limit is not None and length > limit
