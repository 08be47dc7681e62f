"""What every API view shares and that knows no app: the schema's error answers, pagination,
filter hygiene, the exception handler that makes every error JSON, bulk request handling and
the serializers of errors and bulk results.

Who may do what is not here: the role rules live in customers.access.
"""

import hashlib
import logging
import time
from functools import cached_property

from django import forms
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.paginator import Paginator
from django.db import DatabaseError, IntegrityError
from django_filters import rest_framework as filters
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, serializers, status
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error

from .bulk import BULK_MAX_ROWS, BulkRejected
from .parsers import SafeJSONParser  # noqa: F401  (the apps' bulk actions name it from here)


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()


class BulkRowErrorSerializer(serializers.Serializer):
    row = serializers.IntegerField(help_text="0-based index of the row in the request body.")
    field = serializers.CharField(help_text="The field, or 'non_field_errors'.")
    message = serializers.CharField()


class BulkErrorSerializer(serializers.Serializer):
    """A rejected bulk upload; a body that is no JSON at all gets only ``detail``."""

    detail = serializers.CharField()
    error_count = serializers.IntegerField(required=False)
    errors = BulkRowErrorSerializer(many=True, required=False)


class BulkResultSerializer(serializers.Serializer):
    rows = serializers.IntegerField()
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()


VALIDATION_ERROR = OpenApiResponse(
    response={"type": "object", "additionalProperties": True},
    description="Invalid input: field names mapped to lists of messages.",
)
ERROR_DESCRIPTIONS = {
    "400": "Invalid input or query parameters.",
    "401": "Not authenticated: send `Authorization: Token <key>` or log in.",
    "403": "Your role may not do this.",
    "404": "Not found, or not visible to you.",
    "409": "Conflict with the current state.",
    "413": "The request body is larger than the server accepts.",
    "415": "Unsupported media type: send JSON.",
    "429": "Too many requests: wait the seconds named in `Retry-After`.",
    "500": "Server error; it was logged.",
    "503": "A service this needs is unavailable or busy; try again after `Retry-After` seconds.",
}


def error_response(code: str, description: str | None = None) -> OpenApiResponse:
    return OpenApiResponse(response=ErrorSerializer, description=description or ERROR_DESCRIPTIONS[code])


class CvmAutoSchema(AutoSchema):
    """Documents the error answers every endpoint can give, and role-dependent fields."""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        codes = ["401", "403", "429", "500", "503"]
        has_body = self.method in ("POST", "PUT", "PATCH")
        if has_body:
            codes += ["413", "415"]
        is_list = self._is_list_view()
        if has_body or is_list or self.get_filter_backends():
            codes.append("400")
        if "{" in self.path or is_list:
            codes.append("404")  # a detail not visible to the user, or a page past the end
        for code in codes:
            if code in responses:
                continue
            if code == "400":
                responses[code] = self._get_response_for_code(VALIDATION_ERROR, code)
            else:
                responses[code] = self._get_response_for_code(error_response(code), code)
        return responses

    def _map_basic_serializer(self, serializer, direction):
        schema = super()._map_basic_serializer(serializer, direction)
        optional = set(getattr(serializer, "money_fields", ()))
        if optional and schema.get("required"):
            schema["required"] = [name for name in schema["required"] if name not in optional]
            if not schema["required"]:
                del schema["required"]
        return schema


def list_count(queryset) -> int:
    """The number of rows of a list, for the API's ``count``: exact for lists of up to
    settings.CVM_API_EXACT_COUNT_UP_TO rows, counted on every request; a longer list is counted
    once and its count kept in the shared cache for CVM_API_COUNT_CACHE_SECONDS, so it may lag
    behind writes by that long. Counting the run's million value rows on every page took
    100-290 ms of a 100-row page; the bounded count reads at most limit + 1 rows (a few ms).

    When a kept count grows old, one request counts again while the others go on with the old
    count: at the moment it ran out, every concurrent request counted the million rows at once
    (API pages of 4 s under load)."""
    limit = settings.CVM_API_EXACT_COUNT_UP_TO
    unordered = queryset.order_by()
    count = unordered[: limit + 1].count()
    if count <= limit:
        return count
    sql, params = unordered.query.sql_with_params()
    key = "api-list-count:" + hashlib.sha256(f"{unordered.db}|{sql}|{params!r}".encode()).hexdigest()
    fresh_for = settings.CVM_API_COUNT_CACHE_SECONDS
    kept = cache.get(key)  # (count, when counted)
    if kept is not None and time.time() - kept[1] < fresh_for:
        return kept[0]
    if kept is not None and not cache.add(f"{key}:counting", True, timeout=max(fresh_for, 1)):
        return kept[0]  # another request is counting
    count = unordered.count()
    cache.set(key, (count, time.time()), timeout=max(10 * fresh_for, 60))
    cache.delete(f"{key}:counting")
    return count


class ListCountPaginator(Paginator):
    @cached_property
    def count(self) -> int:
        return list_count(self.object_list)


class ApiPagination(PageNumberPagination):
    django_paginator_class = ListCountPaginator
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


class CvmFilterBackend(filters.DjangoFilterBackend):
    """Answers 400 for a NUL character in a filter: PostgreSQL would fail on it with a 500."""

    def filter_queryset(self, request, queryset, view):
        for name, values in request.query_params.lists():
            if any("\x00" in value for value in values):
                raise ValidationError({name: ["Null characters are not allowed."]})
        return super().filter_queryset(request, queryset, view)


class CustomerIdFilter(filters.NumberFilter):
    """`?customer=<id>` as a plain number: a customer the user cannot see and one that does not
    exist give the same empty list (a choice filter over all customers answered 400 for unknown
    ids only, so a rep could probe which ids exist). The view's queryset does the hiding."""

    field_class = forms.IntegerField

    def __init__(self, **kwargs):
        kwargs.setdefault("field_name", "customer_id")
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", 2**63 - 1)
        kwargs.setdefault("help_text", "Customer id.")
        super().__init__(**kwargs)


class ApiBase:
    """Token first (settings.REST_FRAMEWORK), so an anonymous request answers 401 with a
    WWW-Authenticate header. The role permission and the ordering filter are added by
    customers.api.CvmApiMixin."""

    pagination_class = ApiPagination
    schema = CvmAutoSchema()
    # Any path segment reaches the view, so a malformed id answers a JSON 404 like a missing one.
    lookup_value_regex = "[^/]+"


logger = logging.getLogger("cvm.api")

BUSY = "The database is busy or unreachable; nothing was saved. Try again in a moment."
RETRY_AFTER_BUSY = 5


def too_big_message() -> str:
    megabytes = settings.DATA_UPLOAD_MAX_MEMORY_SIZE / 1024 / 1024
    return f"The request body is larger than the {megabytes:g} MB the server accepts."


def api_exception_handler(exc, context):
    """DRF's handler, plus the errors Django and the database raise inside an API view, so
    every API error is JSON: Django's ValidationError is a 400, an oversized body a 413, a
    locked or unreachable database a 503 with Retry-After. Anything else stays a server error
    (logged, and answered as JSON by core.middleware.ApiJsonErrors)."""
    if isinstance(exc, DjangoValidationError):
        exc = ValidationError(as_serializer_error(exc))
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge(too_big_message())
    elif isinstance(exc, TooManyFieldsSent):
        exc = ParseError("Too many fields in the request.")
    elif isinstance(exc, RecursionError):
        exc = ParseError("The request is nested too deeply.")
    elif isinstance(exc, DatabaseError):
        logger.warning("API request failed on the database: %s", exc)
        exc = ServiceBusy()
    # Imported here: rest_framework.views reads the API settings, which name classes of ours.
    from rest_framework.views import exception_handler

    return exception_handler(exc, context)


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


class ServiceBusy(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = BUSY
    default_code = "service_unavailable"

    def __init__(self, detail=None, code=None):
        super().__init__(detail, code)
        self.wait = RETRY_AFTER_BUSY


class BulkInvalid(Exception):
    def __init__(self, errors: list[dict]):
        super().__init__(f"{len(errors)} errors")
        self.errors = errors

    def response(self) -> Response:
        body = {"detail": "Nothing was saved: fix these rows.", "error_count": len(self.errors), "errors": self.errors}
        return Response(body, status=status.HTTP_400_BAD_REQUEST)


def bulk_rows(request, row_serializer_class) -> list[dict]:
    """The request body as checked rows, or BulkInvalid naming every bad row and field."""
    if not isinstance(request.data, list) or not 1 <= len(request.data) <= BULK_MAX_ROWS:
        message = f"Send a JSON list of 1 to {BULK_MAX_ROWS:,} rows."
        raise BulkInvalid([{"row": 0, "field": "non_field_errors", "message": message}])
    serializer = row_serializer_class(data=request.data, many=True, context={"request": request})
    if serializer.is_valid():
        return serializer.validated_data
    found = serializer.errors
    # DRF 3.16+ maps row index -> errors; older versions give a list aligned with the rows.
    items = found.items() if isinstance(found, dict) else enumerate(found)
    errors = []
    for index, row_errors in items:
        if not isinstance(index, int):  # the list itself is wrong (e.g. not a list of objects)
            errors.extend({"row": 0, "field": str(index), "message": str(m)} for m in _as_list(row_errors))
        elif isinstance(row_errors, dict):
            for field, messages in row_errors.items():
                errors.extend({"row": index, "field": field, "message": str(m)} for m in _as_list(messages))
        elif row_errors:
            errors.extend({"row": index, "field": "non_field_errors", "message": str(m)} for m in _as_list(row_errors))
    raise BulkInvalid(sorted(errors, key=lambda error: (error["row"], error["field"])))


def _as_list(messages) -> list:
    return messages if isinstance(messages, list) else [messages]


CONCURRENT_WRITE = "A row was written concurrently by someone else; nothing was saved. Send the rows again."
BULK_RESPONSES = {
    200: BulkResultSerializer,
    400: OpenApiResponse(BulkErrorSerializer, description="Nothing was saved: every bad row with its field."),
    409: error_response("409", "A row was written concurrently by someone else; nothing was saved."),
}


def bulk_response(request, row_serializer_class, upsert) -> Response:
    """A bulk endpoint's whole answer: check the rows, hand them to the resource's write
    service (`upsert(rows)`), and turn every refusal into the documented JSON."""
    try:
        outcome = upsert(bulk_rows(request, row_serializer_class))
    except BulkInvalid as exc:
        return exc.response()
    except BulkRejected as exc:
        return BulkInvalid(exc.errors).response()
    except IntegrityError:
        return Response({"detail": CONCURRENT_WRITE}, status=status.HTTP_409_CONFLICT)
    return Response(BulkResultSerializer(outcome).data, status=status.HTTP_200_OK)
