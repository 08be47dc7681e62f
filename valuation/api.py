"""REST API for the valuation: latest values, value history, segment summary and runs."""

from decimal import Decimal

from django.db.models import Count, Q
from django.http import Http404
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import CustomerIdFilter, error_response
from customers.access import MANAGERS, visible_rows
from customers.api import CustomerChildViewSet, CvmApiMixin

from . import selectors
from .dashboard import segment_summary
from .models import CustomerValue, ValuationRun
from .serializers import (
    CustomerValueSerializer,
    SegmentSummarySerializer,
    ValuationRunSerializer,
)

VALUE_ORDERING = ["customer__name", "customer__number", "segment", "value_to_customer", "service_count"]
MONEY_ORDERING = ["clv", "margin_window", "revenue_window", "profit_after_services", "p_alive", "abc_class"]
# A value row shows only its run's id and as-of date. Joined in full, every row of a page
# carried the run's JSON columns (model parameters and diagnostics, ~12 kB), decoded once per
# row: ~100 ms of a 100-row page at 1M customers.
RUN_DETAILS = ("run__settings", "run__parameters", "run__thresholds", "run__backtest", "run__company")


class CustomerValueFilter(filters.FilterSet):
    customer = CustomerIdFilter()
    customer_number = filters.CharFilter(field_name="customer__number")
    owner = filters.CharFilter(field_name="customer__owner__username", help_text="Username of the sales rep.")

    class Meta:
        model = CustomerValue
        fields = ["customer", "customer_number", "owner", "segment"]


@extend_schema_view(
    retrieve=extend_schema(parameters=[OpenApiParameter("customer_id", int, OpenApiParameter.PATH, description="Customer id.")])
)
class LatestValueViewSet(CvmApiMixin, viewsets.ReadOnlyModelViewSet):
    """The latest completed run's value row per visible customer; ``{id}`` is the customer id."""

    serializer_class = CustomerValueSerializer
    filterset_class = CustomerValueFilter
    ordering_fields = VALUE_ORDERING + MONEY_ORDERING
    money_ordering_fields = MONEY_ORDERING
    ordering = ["customer__name", "customer_id"]
    lookup_field = "customer"
    lookup_url_kwarg = "customer_id"

    def get_object(self):
        # An id beyond the 64-bit range would overflow the database driver: it matches nothing.
        raw = self.kwargs[self.lookup_url_kwarg]
        if not raw.isdigit() or int(raw) >= 2**63:
            raise Http404
        return super().get_object()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return CustomerValue.objects.none()  # schema generation: no database access
        values = visible_rows(selectors.latest_values(), user=self.request.user)
        return values.select_related("customer", "run").defer(*RUN_DETAILS)


@extend_schema_view(
    list=extend_schema(parameters=[OpenApiParameter("customer_pk", int, OpenApiParameter.PATH, description="Customer id.")])
)
class CustomerValueHistoryViewSet(CustomerChildViewSet):
    """One visible customer's value rows across completed runs, newest first."""

    serializer_class = CustomerValueSerializer
    filter_backends = CustomerChildViewSet.filter_backends[1:]  # ordering only
    ordering_fields = ["run__as_of", "run__finished_at"]
    ordering = ["-run__as_of", "-run_id"]

    def get_queryset(self):
        customer = self.visible_customer()
        return (
            CustomerValue.objects.filter(customer=customer, run__status=ValuationRun.Status.COMPLETED)
            .select_related("customer", "run")
            .defer(*RUN_DETAILS)
        )


def _cents(amount) -> Decimal:
    return Decimal(amount or 0).quantize(Decimal("0.01"))


class SegmentSummaryView(CvmApiMixin, APIView):
    """Per segment of the latest completed run: customers and both value dimensions, summed in SQL.
    Reps see their own customers only; inside sales gets counts and service cost only."""

    @extend_schema(responses=SegmentSummarySerializer)
    def get(self, request):
        run = selectors.latest_completed_run()
        values = CustomerValue.objects.filter(run=run) if run else CustomerValue.objects.none()
        table, _totals = segment_summary(visible_rows(values, user=request.user))
        segments = [
            {"segment": row["segment"], "label": str(row["label"]), "strategy": str(row["strategy"]),
             "customers": row["customers"], "profit_after_services": _cents(row["profit"]),
             **{name: _cents(row[name]) for name in ("service_cost", "revenue", "margin", "clv")}}
            for row in table
        ]
        data = {"run": run.pk if run else None, "as_of": run.as_of if run else None, "segments": segments}
        return Response(SegmentSummarySerializer(data, context={"request": request}).data)


class ValuationRunFilter(filters.FilterSet):
    as_of = filters.DateFromToRangeFilter()

    class Meta:
        model = ValuationRun
        fields = ["status", "trigger", "as_of"]


class ValuationRunViewSet(CvmApiMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Valuation runs with status, stage and progress; managers start a recompute."""

    serializer_class = ValuationRunSerializer
    filterset_class = ValuationRunFilter
    ordering_fields = ["started_at", "finished_at", "as_of"]
    ordering = ["-started_at", "-id"]
    write_roles = MANAGERS

    def get_queryset(self):
        return ValuationRun.objects.annotate(chunks_done=Count("chunks", filter=Q(chunks__status="done")))

    @extend_schema(
        request=None,
        responses={
            202: ValuationRunSerializer,
            409: error_response("409", "A valuation run is already in progress."),
            503: error_response("503", "The task queue is unavailable; the run was not started."),
        },
    )
    def create(self, request, *args, **kwargs):
        """Start a recompute of all customer values now (managers)."""
        # Imported here: the valuation services pull in the engine (numpy, scipy).
        from valuation import services, tasks

        try:
            run = tasks.request_recompute(user=request.user, as_of=None)
        except services.RunAlreadyRunning as exc:
            return Response({"detail": str(exc) or "A valuation run is already in progress."}, status=status.HTTP_409_CONFLICT)
        except services.QueueUnavailable as exc:
            return Response(
                {"detail": f"The task queue is unavailable, so the run was not started. Try again later. ({exc})"},
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
            )
        run = self.get_queryset().get(pk=run.pk)
        return Response(self.get_serializer(run).data, status=status.HTTP_202_ACCEPTED)


