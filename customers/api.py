"""REST API for customers and transactions, and the machinery every API view shares.

Who sees what is decided by `customers.selectors.visible_customers`, the selector the pages
use too: a rep's token lists only the rep's customers and gets 404 for others'.
"""

from django.db import IntegrityError
from django_filters import rest_framework as filters
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.filters import OrderingFilter
from rest_framework.generics import get_object_or_404
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import JSONParser
from rest_framework.response import Response

from . import importing
from .models import Customer, Transaction
from .roles import Role, role_of
from .selectors import visible_customers
from .serializers import (
    BulkErrorSerializer,
    BulkResultSerializer,
    CustomerSerializer,
    ErrorSerializer,
    TransactionBulkRowSerializer,
    TransactionSerializer,
)

ALL_ROLES = frozenset(Role)
MANAGERS = frozenset({Role.MANAGER})
SAFE_METHODS = permissions.SAFE_METHODS

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
    "415": "Unsupported media type: send JSON.",
    "503": "A service this needs is unavailable; try again later.",
}


def error_response(code: str, description: str | None = None) -> OpenApiResponse:
    return OpenApiResponse(response=ErrorSerializer, description=description or ERROR_DESCRIPTIONS[code])


class CvmAutoSchema(AutoSchema):
    """Documents the error answers every endpoint can give, and role-dependent fields."""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        codes = ["401", "403"]
        has_body = self.method in ("POST", "PUT", "PATCH")
        if has_body:
            codes.append("415")
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


class ApiPagination(PageNumberPagination):
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


class RolePermission(permissions.BasePermission):
    """Each view names the roles that may read (``read_roles``) and write (``write_roles``);
    ``action_roles`` overrides both for single actions."""

    message = "Your role may not do this."

    def has_permission(self, request, view):
        role = role_of(request.user)
        if role is None:
            return False
        action_roles = getattr(view, "action_roles", {})
        if getattr(view, "action", None) in action_roles:
            return role in action_roles[view.action]
        roles = view.read_roles if request.method in SAFE_METHODS else view.write_roles
        return role in roles


class RoleOrderingFilter(OrderingFilter):
    """Ordering by value-from figures only for those who may see them."""

    def get_valid_fields(self, queryset, view, context=None):
        fields = super().get_valid_fields(queryset, view, context or {})
        money = set(getattr(view, "money_ordering_fields", ()))
        request = getattr(view, "request", None)
        if money and request is not None and role_of(request.user) == Role.INSIDE_SALES:
            fields = [(name, label) for name, label in fields if name not in money]
        return fields


class CvmFilterBackend(filters.DjangoFilterBackend):
    """Answers 400 for a NUL character in a filter: PostgreSQL would fail on it with a 500."""

    def filter_queryset(self, request, queryset, view):
        for name, values in request.query_params.lists():
            if any("\x00" in value for value in values):
                raise ValidationError({name: ["Null characters are not allowed."]})
        return super().filter_queryset(request, queryset, view)


class CvmApiMixin:
    """Token first, so an anonymous request answers 401 with a WWW-Authenticate header."""

    authentication_classes = [TokenAuthentication, SessionAuthentication]
    permission_classes = [permissions.IsAuthenticated, RolePermission]
    pagination_class = ApiPagination
    filter_backends = [CvmFilterBackend, RoleOrderingFilter]
    schema = CvmAutoSchema()
    # Any path segment reaches the view, so a malformed id answers a JSON 404 like a missing one.
    lookup_value_regex = "[^/]+"
    read_roles = ALL_ROLES
    write_roles = MANAGERS


class BulkInvalid(Exception):
    def __init__(self, errors: list[dict]):
        super().__init__(f"{len(errors)} errors")
        self.errors = errors

    def response(self) -> Response:
        body = {"detail": "Nothing was saved: fix these rows.", "error_count": len(self.errors), "errors": self.errors}
        return Response(body, status=status.HTTP_400_BAD_REQUEST)


def bulk_rows(request, row_serializer_class) -> list[dict]:
    """The request body as checked rows, or BulkInvalid naming every bad row and field."""
    if not isinstance(request.data, list) or not 1 <= len(request.data) <= importing.BULK_MAX_ROWS:
        message = f"Send a JSON list of 1 to {importing.BULK_MAX_ROWS:,} rows."
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


class CustomerFilter(filters.FilterSet):
    name = filters.CharFilter(lookup_expr="icontains")
    owner = filters.CharFilter(field_name="owner__username", help_text="Username of the sales rep.")
    acquired = filters.DateFromToRangeFilter(field_name="acquired_on")

    class Meta:
        model = Customer
        fields = ["number", "name", "industry", "region", "owner", "status", "acquisition_channel", "acquired"]


class CustomerViewSet(CvmApiMixin, viewsets.ModelViewSet):
    """Customers: everyone reads those they may see; managers write."""

    serializer_class = CustomerSerializer
    filterset_class = CustomerFilter
    ordering_fields = ["name", "number", "acquired_on", "region", "industry", "yearly_wallet", "updated_at"]
    money_ordering_fields = ["yearly_wallet"]
    ordering = ["name", "id"]

    def get_queryset(self):
        return visible_customers(user=self.request.user).select_related("owner")


class TransactionFilter(filters.FilterSet):
    customer_number = filters.CharFilter(field_name="customer__number")
    date = filters.DateFromToRangeFilter()

    class Meta:
        model = Transaction
        fields = ["customer", "customer_number", "external_id", "date", "product", "channel"]


class TransactionViewSet(CvmApiMixin, viewsets.ModelViewSet):
    """Transactions (revenue and cost of goods): reps read their customers', managers write.
    Inside sales sees no money figures, so no transactions at all."""

    serializer_class = TransactionSerializer
    filterset_class = TransactionFilter
    ordering_fields = ["date", "revenue", "cost_of_goods", "external_id"]
    ordering = ["-date", "-id"]
    read_roles = frozenset({Role.SALES_REP, Role.MANAGER})

    def get_queryset(self):
        customers = visible_customers(user=self.request.user)
        return Transaction.objects.filter(customer__in=customers).select_related("customer")

    def get_serializer(self, *args, **kwargs):
        serializer = super().get_serializer(*args, **kwargs)
        if "customer" in getattr(serializer, "fields", {}):
            serializer.fields["customer"].queryset = visible_customers(user=self.request.user)
        return serializer

    @extend_schema(request=TransactionBulkRowSerializer(many=True), responses=BULK_RESPONSES)
    @action(detail=False, methods=["post"], parser_classes=[JSONParser])
    def bulk(self, request):
        """Create or update up to 50,000 transactions by external_id in one all-or-nothing request."""
        try:
            rows = bulk_rows(request, TransactionBulkRowSerializer)
            outcome = importing.bulk_upsert_transactions(rows=rows, visible_customers=visible_customers(user=request.user))
        except BulkInvalid as exc:
            return exc.response()
        except importing.BulkRejected as exc:
            return BulkInvalid(exc.errors).response()
        except IntegrityError:
            return Response({"detail": CONCURRENT_WRITE}, status=status.HTTP_409_CONFLICT)
        return Response(BulkResultSerializer(outcome).data, status=status.HTTP_200_OK)


class CustomerChildViewSet(CvmApiMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Base for lists nested under one visible customer (404 for customers not visible)."""

    def visible_customer(self) -> Customer:
        if not hasattr(self, "_customer"):
            # DRF's get_object_or_404 also answers 404 (not 500) for a malformed id.
            self._customer = get_object_or_404(visible_customers(user=self.request.user), pk=self.kwargs["customer_pk"])
        return self._customer
