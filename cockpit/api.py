"""API of the rep's day: the requesting user's worklist and a customer's value change."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import error_response
from customers.access import MONEY_ROLES, visible_customers
from customers.api import CvmApiMixin
from valuation.value_change import customer_value_change

from . import worklist


class WorkItemSerializer(serializers.Serializer):
    customer = serializers.IntegerField(source="item.customer_id")
    customer_number = serializers.CharField(source="item.customer.number")
    customer_name = serializers.CharField(source="item.customer.name")
    reason = serializers.CharField()
    reason_label = serializers.CharField()
    line = serializers.CharField(help_text="Why the customer is on the list, in one line.")
    amount = serializers.DecimalField(source="item.amount", max_digits=16, decimal_places=2,
                                      help_text="Money at stake: the list's order.")
    url = serializers.CharField(help_text="The customer's cockpit.")


class WorklistSerializer(serializers.Serializer):
    as_of = serializers.DateField(allow_null=True)
    items = WorkItemSerializer(many=True)


class WorklistView(CvmApiMixin, APIView):
    """The requesting user's worklist of the latest run: a rep's own customers, a manager's
    all; inside sales gets the free-service reasons only. Done and snoozed items are left out."""

    @extend_schema(responses={200: WorklistSerializer, 403: error_response("403")})
    def get(self, request):
        run = worklist.latest_completed_run()
        data = {"as_of": run.as_of if run else None, "items": worklist.worklist(user=request.user, run=run)}
        return Response(WorklistSerializer(data).data)


class DriverSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    amount = serializers.DecimalField(max_digits=16, decimal_places=2)


class ValueChangeSerializer(serializers.Serializer):
    previous_as_of = serializers.DateField(source="previous_run.as_of", allow_null=True)
    current_as_of = serializers.DateField(source="current_run.as_of", allow_null=True)
    previous_clv = serializers.DecimalField(max_digits=16, decimal_places=2, allow_null=True)
    current_clv = serializers.DecimalField(max_digits=16, decimal_places=2, allow_null=True)
    previous_segment = serializers.CharField(allow_blank=True)
    current_segment = serializers.CharField(allow_blank=True)
    drivers = DriverSerializer(many=True, help_text="Their amounts sum to current_clv - previous_clv.")
    previous_value_to_customer = serializers.DecimalField(max_digits=16, decimal_places=2, allow_null=True)
    current_value_to_customer = serializers.DecimalField(max_digits=16, decimal_places=2, allow_null=True)
    value_to_drivers = DriverSerializer(many=True)


class ValueChangeView(CvmApiMixin, APIView):
    """Why a visible customer's CLV and value to the customer changed between the two latest
    completed runs (by as-of date). Empty drivers before the second run."""

    read_roles = MONEY_ROLES

    @extend_schema(
        parameters=[OpenApiParameter("customer_id", int, OpenApiParameter.PATH, description="Customer id.")],
        responses={200: ValueChangeSerializer, 403: error_response("403"), 404: error_response("404")},
    )
    def get(self, request, customer_id):
        # DRF's get_object_or_404 answers 404 (not 500) for a malformed id too.
        customer = get_object_or_404(visible_customers(user=request.user), pk=customer_id)
        return Response(ValueChangeSerializer(customer_value_change(customer=customer)).data)
