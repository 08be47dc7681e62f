"""REST API for customers and transactions, and the mixin every API view of the apps uses.

Who sees what is decided by `customers.access.visible_customers`, the selector the pages
use too: a rep's token lists only the rep's customers and gets 404 for others'.
"""

from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, viewsets
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404

from core.api import BULK_RESPONSES, ApiBase, CustomerIdFilter, CvmFilterBackend, SafeJSONParser, bulk_response
from core.api_rows import RowListMixin

from . import services
from .access import ALL_ROLES, MANAGERS, MONEY_ROLES, MoneyOrderingFilter, RolePermission, visible_customers
from .models import Customer, SurveyAnswer, Transaction
from .serializers import CustomerSerializer, SurveyAnswerSerializer, TransactionBulkRowSerializer, TransactionSerializer


class CvmApiMixin(RowListMixin, ApiBase):
    """Every resource: roles per method (read_roles, write_roles), money columns only for
    those who see money; lists answered from rows where the serializer allows (core.api_rows)."""

    permission_classes = [permissions.IsAuthenticated, RolePermission]
    filter_backends = [CvmFilterBackend, MoneyOrderingFilter]
    read_roles = ALL_ROLES
    write_roles = MANAGERS


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
    customer = CustomerIdFilter()
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
    read_roles = MONEY_ROLES

    def get_queryset(self):
        customers = visible_customers(user=self.request.user)
        return Transaction.objects.filter(customer__in=customers).select_related("customer")

    def get_serializer(self, *args, **kwargs):
        serializer = super().get_serializer(*args, **kwargs)
        if "customer" in getattr(serializer, "fields", {}):
            serializer.fields["customer"].queryset = visible_customers(user=self.request.user)
        return serializer

    @extend_schema(request=TransactionBulkRowSerializer(many=True), responses=BULK_RESPONSES)
    @action(detail=False, methods=["post"], parser_classes=[SafeJSONParser])
    def bulk(self, request):
        """Create or update up to 50,000 transactions by external_id in one all-or-nothing request."""
        visible = visible_customers(user=request.user)
        return bulk_response(
            request, TransactionBulkRowSerializer,
            lambda rows: services.bulk_upsert_transactions(rows=rows, visible_customers=visible),
        )


class CustomerChildViewSet(CvmApiMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Base for lists nested under one visible customer (404 for customers not visible)."""

    def visible_customer(self) -> Customer:
        if not hasattr(self, "_customer"):
            # DRF's get_object_or_404 also answers 404 (not 500) for a malformed id.
            self._customer = get_object_or_404(visible_customers(user=self.request.user), pk=self.kwargs["customer_pk"])
        return self._customer


class SurveyAnswerFilter(filters.FilterSet):
    customer_number = filters.CharFilter(field_name="customer__number")
    answered_on = filters.DateFromToRangeFilter()

    class Meta:
        model = SurveyAnswer
        fields = ["customer", "customer_number", "answered_on", "score"]


class SurveyAnswerViewSet(CvmApiMixin, mixins.CreateModelMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                          viewsets.GenericViewSet):
    """NPS survey answers of the customers one may see; logged by whoever may log services for
    the customer (a rep for their own customers, inside sales and managers for all)."""

    serializer_class = SurveyAnswerSerializer
    filterset_class = SurveyAnswerFilter
    ordering_fields = ["answered_on", "score"]
    ordering = ["-answered_on", "-id"]
    write_roles = ALL_ROLES

    def get_queryset(self):
        return SurveyAnswer.objects.filter(customer__in=visible_customers(user=self.request.user)).select_related("customer")

    def get_serializer(self, *args, **kwargs):
        serializer = super().get_serializer(*args, **kwargs)
        if "customer" in getattr(serializer, "fields", {}):
            serializer.fields["customer"].queryset = visible_customers(user=self.request.user)
        return serializer

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = services.log_survey_answer(
            user=self.request.user, customer=data["customer"], answered_on=data["answered_on"], score=data["score"],
            comment=data.get("comment", ""), contact=data.get("contact", ""),
        )
