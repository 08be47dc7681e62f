"""API shapes of valuation runs, customer values and the segment summary."""

from rest_framework import serializers

from customers.serializers import MoneyFieldsMixin

from .models import CustomerValue, Segment, ValuationRun, segment_strategy

VALUE_FROM_FIELDS = (
    "revenue_lifetime", "margin_lifetime", "revenue_window", "margin_window", "profit_after_services",
    "share_of_supply", "abc_class", "purchase_days", "p_alive", "expected_purchases", "clv", "clv_low", "clv_high",
    "clv_to_infinity", "median_lifetime_weeks", "basis", "is_thin", "referral_value",
)


class StrategyField(serializers.CharField):
    """The strategy of a segment, read from the segment column."""

    def to_representation(self, value) -> str:
        return str(segment_strategy(value))


class CustomerValueSerializer(MoneyFieldsMixin, serializers.ModelSerializer):
    """Both value dimensions of one customer in one run. Inside sales gets only segment,
    strategy and the value to the customer."""

    money_fields = VALUE_FROM_FIELDS

    customer_number = serializers.CharField(source="customer.number", read_only=True)
    customer_name = serializers.CharField(source="customer.name", read_only=True)
    as_of = serializers.DateField(source="run.as_of", read_only=True)
    strategy = StrategyField(source="segment", read_only=True)
    value_to_by_type = serializers.DictField(child=serializers.JSONField(), read_only=True)

    class Meta:
        model = CustomerValue
        fields = [
            "customer", "customer_number", "customer_name", "run", "as_of", "segment", "strategy",
            "value_to_customer", "service_count", "service_hours", "value_to_by_type", *VALUE_FROM_FIELDS,
        ]
        read_only_fields = fields


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
    model = serializers.SerializerMethodField(help_text="The purchase model the run chose by its back-test.")
    models_compared = serializers.SerializerMethodField(
        help_text="Per model: passed its checks, and the back-test's per-customer MAE and RMSE of holdout "
                  "purchases and margin, predicted and actual totals, total error; versus_best (mean squared-error "
                  "difference to the lowest RMSE, its standard error, tied when within one); chosen, and for the "
                  "chosen model the reason it won.")
    fit_quality = serializers.SerializerMethodField(
        help_text="ok, problems [{code, model, message}] and the fallback used when the fit failed its checks.")
    range_calibration = serializers.SerializerMethodField(
        help_text="Share of customers above the 90th / below the 10th percentile of their holdout forecast.")

    class Meta:
        model = ValuationRun
        fields = [
            "id", "as_of", "status", "trigger", "stage", "progress", "chunk_count", "chunks_done", "started_at",
            "finished_at", "heartbeat_at", "customer_count", "transaction_count", "service_event_count",
            "rows_written", "error", "model", "models_compared", "fit_quality", "range_calibration",
        ]
        read_only_fields = fields

    def get_model(self, run) -> str | None:
        return (run.backtest or {}).get("model") or (run.parameters or {}).get("model")

    def get_models_compared(self, run) -> dict | None:
        compared = (run.backtest or {}).get("models_compared")
        if not compared:
            return None
        keys = ("mae", "rmse", "predicted_total", "actual_total", "total_error")
        chosen = (run.backtest or {}).get("model")
        return {
            name: {
                "passed": bool((entry.get("fit_quality") or {}).get("ok")),
                "purchases": {k: (entry.get("purchases") or {}).get(k) for k in keys} if entry.get("purchases") else None,
                "margin": {k: (entry.get("margin") or {}).get(k) for k in keys} if entry.get("margin") else None,
                "versus_best": entry.get("versus_best"),
                "chosen": name == chosen,
                "reason": (run.backtest or {}).get("reason") if name == chosen else None,
            }
            for name, entry in compared.items()
        }

    def get_fit_quality(self, run) -> dict | None:
        return (run.backtest or {}).get("fit_quality") or (run.parameters or {}).get("fit_quality")

    def get_range_calibration(self, run) -> dict | None:
        return (run.backtest or {}).get("range_calibration")

    def get_progress(self, run) -> float | None:
        if run.status == ValuationRun.Status.COMPLETED:
            return 1.0
        if not run.chunk_count:
            return None
        return round(min(getattr(run, "chunks_done", 0) / run.chunk_count, 1.0), 4)
