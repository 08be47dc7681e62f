"""API shapes of service types, their standard-cost history and service events."""

from decimal import Decimal

from rest_framework import serializers

from core.plausibility import EARLIEST_DATE, MAX_QUANTITY
from customers.models import Customer
from customers.serializers import PlausibleDateField, SafeSlugRelatedField

from .models import ServiceEvent, ServiceType, StandardCost


class StandardCostSerializer(serializers.ModelSerializer):
    service_type = SafeSlugRelatedField(slug_field="code", queryset=ServiceType.objects.all())
    valid_from = serializers.DateField()
    cost_per_unit = serializers.DecimalField(
        max_digits=12, decimal_places=2, min_value=Decimal("0"), max_value=Decimal("9999999999.99")
    )
    created_by = serializers.CharField(source="created_by.username", read_only=True, allow_null=True)

    class Meta:
        model = StandardCost
        fields = ["id", "service_type", "valid_from", "cost_per_unit", "created_by", "created_at"]
        read_only_fields = ["created_at"]

    def validate_valid_from(self, value):
        if value < EARLIEST_DATE:
            raise serializers.ValidationError(f"Implausible date: before {EARLIEST_DATE.isoformat()}.")
        if value.year > 2100:
            raise serializers.ValidationError("Implausible date: after 2100.")
        return value


class StandardCostEntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = StandardCost
        fields = ["valid_from", "cost_per_unit"]


class ServiceTypeSerializer(serializers.ModelSerializer):
    standard_costs = StandardCostEntrySerializer(many=True, read_only=True, help_text="Newest first.")

    class Meta:
        model = ServiceType
        fields = ["id", "code", "name", "name_de", "description", "unit", "active", "sort_order", "standard_costs"]


class ServiceEventSerializer(serializers.ModelSerializer):
    customer = serializers.PrimaryKeyRelatedField(queryset=Customer.objects.none())
    customer_number = serializers.CharField(source="customer.number", read_only=True)
    customer_name = serializers.CharField(source="customer.name", read_only=True)
    service_type = SafeSlugRelatedField(slug_field="code", queryset=ServiceType.objects.all())
    date = PlausibleDateField()
    quantity = serializers.DecimalField(
        max_digits=8, decimal_places=2, min_value=Decimal("0.01"), max_value=Decimal(str(MAX_QUANTITY)),
        required=False, default=Decimal("1"),
    )
    note = serializers.CharField(required=False, allow_blank=True, max_length=10_000, default="")
    logged_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    external_id = serializers.CharField(max_length=64, required=False, allow_null=True, allow_blank=True)
    unit_cost = serializers.DecimalField(
        max_digits=12, decimal_places=2, read_only=True, help_text="Standard cost per unit valid on the day."
    )
    value = serializers.DecimalField(
        max_digits=22, decimal_places=4, read_only=True, help_text="Quantity x standard cost: value to the customer."
    )

    class Meta:
        model = ServiceEvent
        fields = [
            "id", "customer", "customer_number", "customer_name", "service_type", "date", "quantity", "note",
            "logged_by", "external_id", "unit_cost", "value", "created_at", "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    def validate_external_id(self, value):
        value = value or None
        if value is not None:
            taken = ServiceEvent.objects.filter(external_id=value)
            if self.instance is not None:
                taken = taken.exclude(pk=self.instance.pk)
            if taken.exists():
                raise serializers.ValidationError("A service event with this external id already exists.")
        return value


class ServiceEventBulkRowSerializer(serializers.Serializer):
    """One row of a bulk upload: checked without queries; the rest is done for all rows at once."""

    external_id = serializers.CharField(max_length=64, required=False, allow_null=True, allow_blank=True, default=None)
    customer = serializers.IntegerField(min_value=1)
    service_type = serializers.CharField(max_length=40)
    date = PlausibleDateField()
    quantity = serializers.DecimalField(
        max_digits=8, decimal_places=2, min_value=Decimal("0.01"), max_value=Decimal(str(MAX_QUANTITY)),
        required=False, default=Decimal("1"),
    )
    note = serializers.CharField(required=False, allow_blank=True, max_length=10_000, default="")


class ServiceEventHistorySerializer(serializers.Serializer):
    history_id = serializers.IntegerField()
    history_date = serializers.DateTimeField()
    history_type = serializers.ChoiceField(
        choices=[("+", "created"), ("~", "changed"), ("-", "deleted")], help_text="+ created, ~ changed, - deleted"
    )
    history_user = serializers.CharField(source="history_user.username", allow_null=True, help_text="Username.")
    customer = serializers.IntegerField(source="customer_id")
    service_type = serializers.CharField(source="service_type.code", allow_null=True)
    date = serializers.DateField()
    quantity = serializers.DecimalField(max_digits=8, decimal_places=2)
    note = serializers.CharField(allow_blank=True)
    logged_by = serializers.IntegerField(source="logged_by_id", allow_null=True)
    external_id = serializers.CharField(allow_null=True)
