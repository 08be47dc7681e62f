"""API shapes of customers and transactions, and the field types the other apps' serializers share."""

from decimal import Decimal

from django.contrib.auth import get_user_model
from rest_framework import serializers

from core.plausibility import EARLIEST_ACQUISITION, EARLIEST_DATE, MAX_AMOUNT, latest_plausible_date

from .access import sees_money
from .models import MONEY, Customer, SurveyAnswer, Transaction


class MoneyFieldsMixin:
    """Drops ``money_fields`` (value from the customer) for users who may not see them.

    The schema marks these fields as optional (see ``CvmAutoSchema``): inside sales gets
    responses without them.
    """

    money_fields: tuple[str, ...] = ()

    def get_fields(self):
        fields = super().get_fields()
        request = self.context.get("request")
        if request is not None and request.user.is_authenticated and not sees_money(request.user):
            for name in self.money_fields:
                fields.pop(name, None)
        return fields


class SafeSlugRelatedField(serializers.SlugRelatedField):
    """Refuses NUL and lone surrogate characters before the lookup: PostgreSQL cannot even compare them."""

    def to_internal_value(self, data):
        if isinstance(data, str) and ("\x00" in data or any("\ud800" <= ch <= "\udfff" for ch in data)):
            self.fail("does_not_exist", slug_name=self.slug_field, value=data.encode("unicode_escape").decode())
        return super().to_internal_value(data)


class PlausibleDateField(serializers.DateField):
    """A date between ``earliest`` and tomorrow: older or future dates are typing errors."""

    def __init__(self, *, earliest=EARLIEST_DATE, **kwargs):
        self.earliest = earliest
        super().__init__(**kwargs)

    def to_internal_value(self, value):
        day = super().to_internal_value(value)
        if day < self.earliest:
            raise serializers.ValidationError(f"Implausible date: before {self.earliest.isoformat()}.")
        latest = latest_plausible_date()
        if day > latest:
            raise serializers.ValidationError(f"Implausible date: after {latest.isoformat()} (in the future).")
        return day


def money_field(*, minimum=-MAX_AMOUNT, **kwargs) -> serializers.DecimalField:
    return serializers.DecimalField(
        max_digits=MONEY["max_digits"], decimal_places=MONEY["decimal_places"],
        min_value=Decimal(minimum), max_value=Decimal(MAX_AMOUNT), **kwargs,
    )


class CustomerSerializer(MoneyFieldsMixin, serializers.ModelSerializer):
    money_fields = ("yearly_wallet",)

    owner = SafeSlugRelatedField(
        slug_field="username", queryset=get_user_model().objects.all(), allow_null=True, required=False,
        help_text="Username of the responsible sales rep.",
    )
    acquired_on = PlausibleDateField(earliest=EARLIEST_ACQUISITION, allow_null=True, required=False)
    lost_on = PlausibleDateField(earliest=EARLIEST_ACQUISITION, allow_null=True, required=False)
    yearly_wallet = money_field(minimum=0, allow_null=True, required=False)

    class Meta:
        model = Customer
        fields = [
            "id", "number", "name", "industry", "region", "owner", "acquired_on", "acquisition_channel",
            "referred_by", "status", "lost_on", "yearly_wallet", "created_at", "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    def validate(self, attrs):
        merged = {name: getattr(self.instance, name) for name in ("status", "lost_on")} if self.instance else {}
        merged.update(attrs)
        status = merged.get("status", Customer.Status.ACTIVE)
        if status == Customer.Status.LOST and not merged.get("lost_on"):
            raise serializers.ValidationError({"lost_on": "A lost customer needs the date it was lost."})
        if status == Customer.Status.ACTIVE and merged.get("lost_on"):
            raise serializers.ValidationError({"lost_on": "An active customer has no lost date."})
        referrer = attrs.get("referred_by")
        if referrer is not None and self.instance is not None and referrer.pk == self.instance.pk:
            raise serializers.ValidationError({"referred_by": "A customer cannot refer itself."})
        return attrs


class TransactionSerializer(serializers.ModelSerializer):
    customer_number = serializers.CharField(source="customer.number", read_only=True)
    date = PlausibleDateField()
    revenue = money_field()
    cost_of_goods = money_field(required=False)
    margin = serializers.DecimalField(max_digits=15, decimal_places=2, read_only=True)

    class Meta:
        model = Transaction
        fields = [
            "id", "external_id", "customer", "customer_number", "date", "revenue", "cost_of_goods", "margin",
            "product", "channel",
        ]


class TransactionBulkRowSerializer(serializers.Serializer):
    """One row of a bulk upload: checked without queries; customers are resolved for all rows at once."""

    external_id = serializers.CharField(max_length=64)
    customer = serializers.IntegerField(min_value=1)
    date = PlausibleDateField()
    revenue = money_field()
    cost_of_goods = money_field(required=False, default=Decimal("0"))
    product = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    channel = serializers.CharField(max_length=50, required=False, allow_blank=True, default="")


class SurveyAnswerSerializer(serializers.ModelSerializer):
    customer_number = serializers.CharField(source="customer.number", read_only=True)
    answered_on = PlausibleDateField()
    score = serializers.IntegerField(min_value=0, max_value=10, help_text="0-10: 9-10 promoter, 0-6 detractor.")

    class Meta:
        model = SurveyAnswer
        fields = ["id", "external_id", "customer", "customer_number", "answered_on", "score", "comment", "contact",
                  "logged_by", "created_at"]
        read_only_fields = ["logged_by", "created_at"]
