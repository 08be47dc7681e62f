"""REST API for service types, standard costs and service events (the value to the customer)."""

from contextlib import contextmanager

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import Prefetch
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from core.api import BULK_RESPONSES, CustomerIdFilter, SafeJSONParser, bulk_response
from customers.access import ALL_ROLES, OwnEntriesPermission, manages, visible_customers, visible_rows
from customers.api import CvmApiMixin

from . import services
from .models import ServiceEvent, ServiceType, StandardCost
from .selectors import service_event_value
from .serializers import (
    ServiceEventBulkRowSerializer,
    ServiceEventHistorySerializer,
    ServiceEventSerializer,
    ServiceTypeSerializer,
    StandardCostSerializer,
)


@contextmanager
def django_validation_as_400():
    """The services raise Django's ValidationError; the API answers it as a 400."""
    try:
        yield
    except DjangoValidationError as exc:
        raise ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        ) from exc


class ServiceTypeViewSet(CvmApiMixin, viewsets.ReadOnlyModelViewSet):
    """The service catalogue with each type's standard-cost history (newest first)."""

    serializer_class = ServiceTypeSerializer
    filterset_fields = ["code", "unit", "active"]
    ordering_fields = ["sort_order", "name", "code"]
    ordering = ["sort_order", "name", "id"]

    def get_queryset(self):
        costs = StandardCost.objects.order_by("-valid_from")
        return ServiceType.objects.prefetch_related(Prefetch("standard_costs", queryset=costs))


class StandardCostFilter(filters.FilterSet):
    service_type = filters.CharFilter(field_name="service_type__code", help_text="Service type code.")
    valid_from = filters.DateFromToRangeFilter()

    class Meta:
        model = StandardCost
        fields = ["service_type", "valid_from"]


class StandardCostViewSet(CvmApiMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Standard costs per unit: a history, never edited in place; managers add new entries."""

    serializer_class = StandardCostSerializer
    filterset_class = StandardCostFilter
    ordering_fields = ["valid_from", "cost_per_unit"]
    ordering = ["service_type__sort_order", "-valid_from", "id"]

    def get_queryset(self):
        return StandardCost.objects.select_related("service_type", "created_by")

    def perform_create(self, serializer):
        # The settings page's write service: the history only grows, never back-dated.
        with django_validation_as_400():
            serializer.instance = services.add_standard_cost(**serializer.validated_data, user=self.request.user)


class ServiceEventFilter(filters.FilterSet):
    customer = CustomerIdFilter()
    customer_number = filters.CharFilter(field_name="customer__number")
    service_type = filters.CharFilter(field_name="service_type__code", help_text="Service type code.")
    logged_by = filters.CharFilter(field_name="logged_by__username", help_text="Username.")
    date = filters.DateFromToRangeFilter()

    class Meta:
        model = ServiceEvent
        fields = ["customer", "customer_number", "service_type", "logged_by", "external_id", "date"]


class ServiceEventViewSet(CvmApiMixin, viewsets.ModelViewSet):
    """Free services given to customers. Everyone logs for the customers they see."""

    serializer_class = ServiceEventSerializer
    filterset_class = ServiceEventFilter
    ordering_fields = ["date", "quantity", "created_at", "updated_at", "value"]
    ordering = ["-date", "-id"]
    write_roles = ALL_ROLES
    permission_classes = [*CvmApiMixin.permission_classes, OwnEntriesPermission]

    def get_queryset(self):
        events = ServiceEvent.objects.filter(customer__in=visible_customers(user=self.request.user))
        return service_event_value(events.select_related("customer", "service_type", "logged_by"))

    def get_serializer(self, *args, **kwargs):
        serializer = super().get_serializer(*args, **kwargs)
        if "customer" in getattr(serializer, "fields", {}):
            serializer.fields["customer"].queryset = visible_customers(user=self.request.user)
        return serializer

    def _annotated(self, instance):
        # The value is a query annotation: read the saved row back through the same queryset.
        return self.get_serializer(self.get_queryset().get(pk=instance.pk)).data

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        with transaction.atomic(), django_validation_as_400():
            event = services.log_service_event(
                user=request.user, customer=data["customer"], service_type=data["service_type"], date=data["date"],
                quantity=data["quantity"], note=data["note"], external_id=data.get("external_id") or None,
            )
        return Response(self._annotated(event), status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        event = self.get_object()
        serializer = self.get_serializer(event, data=request.data, partial=kwargs.pop("partial", False))
        serializer.is_valid(raise_exception=True)
        data = {name: serializer.validated_data.get(name, getattr(event, name))
                for name in ("customer", "service_type", "date", "quantity", "note", "external_id")}
        with transaction.atomic(), django_validation_as_400():
            event.external_id = data.pop("external_id") or None
            event = services.update_service_event(user=request.user, event=event, **data)
        return Response(self._annotated(event))

    def perform_destroy(self, instance):
        services.delete_service_event(user=self.request.user, event=instance)

    @extend_schema(responses=ServiceEventHistorySerializer(many=True))
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=CvmApiMixin.pagination_class)
    def history(self, request, pk=None):
        """Who changed this service event when: every version, newest first; versions from while
        it belonged to a customer you cannot see are left out."""
        event = self.get_object()
        records = visible_rows(event.history.all(), user=request.user).select_related("history_user", "service_type").order_by("-history_date", "-history_id")
        page = self.paginate_queryset(records)
        return self.get_paginated_response(ServiceEventHistorySerializer(page, many=True).data)

    @extend_schema(request=ServiceEventBulkRowSerializer(many=True), responses=BULK_RESPONSES)
    @action(detail=False, methods=["post"], parser_classes=[SafeJSONParser])
    def bulk(self, request):
        """Log up to 50,000 service events in one all-or-nothing request; rows with a known
        external_id update that event (only your own, unless you are a manager)."""
        visible = visible_customers(user=request.user)
        return bulk_response(
            request, ServiceEventBulkRowSerializer,
            lambda rows: services.bulk_upsert_service_events(
                rows=rows, user=request.user, visible_customers=visible, may_edit_all=manages(request.user),
            ),
        )
