"""API shapes of valuation runs, customer values and the segment summary."""

from rest_framework import serializers

from customers.serializers import MoneyFieldsMixin

from .models import CustomerValue, Segment, ValuationRun, segment_strategy

VALUE_FROM_FIELDS = (
    "revenue_lifetime", "margin_lifetime", "revenue_window", "margin_window", "profit_after_services",
    "share_of_supply", "abc_class", "purchase_days", "p_alive", "expected_purchases", "clv", "clv_low", "clv_high",
    "is_thin", "referral_value",
)


class CustomerValueSerializer(MoneyFieldsMixin, serializers.ModelSerializer):
    """Both value dimensions of one customer in one run. Inside sales gets only segment,
    strategy and the value to the customer."""

    money_fields = VALUE_FROM_FIELDS

    customer_number = serializers.CharField(source="customer.number", read_only=True)
    customer_name = serializers.CharField(source="customer.name", read_only=True)
    as_of = serializers.DateField(source="run.as_of", read_only=True)
    strategy = serializers.SerializerMethodField()
    value_to_by_type = serializers.DictField(child=serializers.JSONField(), read_only=True)

    class Meta:
        model = CustomerValue
        fields = [
            "customer", "customer_number", "customer_name", "run", "as_of", "segment", "strategy",
            "value_to_customer", "service_count", "service_hours", "value_to_by_type", *VALUE_FROM_FIELDS,
        ]
        read_only_fields = fields

    def get_strategy(self, value: CustomerValue) -> str:
        return str(segment_strategy(value.segment))


class SegmentRowSerializer(MoneyFieldsMixin, serializers.Serializer):
    money_fields = ("revenue", "margin", "clv", "profit_after_services")

    segment = serializers.ChoiceField(choices=Segment.choices)
    label = serializers.CharField()
    strategy = serializers.CharField()
    customers = serializers.IntegerField()
    service_cost = serializers.DecimalField(max_digits=18, decimal_places=2, help_text="Value to the customers.")
    revenue = serializers.DecimalField(max_digits=18, decimal_places=2, help_text="Revenue in the window.")
    margin = serializers.DecimalField(max_digits=18, decimal_places=2, help_text="Margin in the window.")
    clv = serializers.DecimalField(max_digits=18, decimal_places=2)
    profit_after_services = serializers.DecimalField(max_digits=18, decimal_places=2)


class SegmentSummarySerializer(serializers.Serializer):
    run = serializers.IntegerField(allow_null=True, help_text="The latest completed run; null before the first.")
    as_of = serializers.DateField(allow_null=True)
    segments = SegmentRowSerializer(many=True)


class ValuationRunSerializer(serializers.ModelSerializer):
    chunks_done = serializers.IntegerField(read_only=True)
    progress = serializers.SerializerMethodField(help_text="Share of chunks written, 0 to 1; null before chunks exist.")

    class Meta:
        model = ValuationRun
        fields = [
            "id", "as_of", "status", "trigger", "stage", "progress", "chunk_count", "chunks_done", "started_at",
            "finished_at", "heartbeat_at", "customer_count", "transaction_count", "service_event_count",
            "rows_written", "error",
        ]
        read_only_fields = fields

    def get_progress(self, run) -> float | None:
        if run.status == ValuationRun.Status.COMPLETED:
            return 1.0
        if not run.chunk_count:
            return None
        return round(min(getattr(run, "chunks_done", 0) / run.chunk_count, 1.0), 4)
