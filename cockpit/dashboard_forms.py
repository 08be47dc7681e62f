"""Forms of the manager pages: dashboard filters and the settings sections."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.utils.formats import date_format
from django.utils.translation import gettext_lazy as _

from core.numbers import FlexibleDecimalField
from services.models import ServiceType
from valuation.models import ValuationPolicy


class DashboardFilterForm(forms.Form):
    """GET filters; an unknown value is reported and ignored, the page still answers."""

    owner = forms.TypedChoiceField(label=_("Owner"), required=False, coerce=int, empty_value=None)
    region = forms.ChoiceField(label=_("Region"), required=False)
    industry = forms.ChoiceField(label=_("Industry"), required=False)
    compare = forms.TypedChoiceField(label=_("Compare with the run of"), required=False, coerce=int, empty_value=None)

    def __init__(self, *args, choices: dict, runs: list, **kwargs):
        super().__init__(*args, **kwargs)
        everyone = [("", _("all"))]
        self.fields["owner"].choices = everyone + [(str(pk), name) for pk, name in choices["owners"]]
        self.fields["region"].choices = everyone + [(r, r) for r in choices["regions"]]
        self.fields["industry"].choices = everyone + [(i, i) for i in choices["industries"]]
        self.fields["compare"].choices = [("", _("about 3 months earlier"))] + [
            (str(run.pk), date_format(run.as_of, "SHORT_DATE_FORMAT")) for run in runs
        ]
        # The run picker sits in the migration section but belongs to the filter form.
        self.fields["compare"].widget.attrs["form"] = "dashboard-filters"
        for field in self.fields.values():
            field.widget.attrs["data-autosubmit"] = ""


class StandardCostForm(forms.Form):
    service_type = forms.ModelChoiceField(label=_("Service type"), queryset=ServiceType.objects.all())
    # A date picker always sends and expects ISO dates, whatever the page's language; typed
    # dates in the language's own format (22.11.2026) are accepted as well.
    valid_from = forms.DateField(
        label=_("Valid from"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    cost_per_unit = FlexibleDecimalField(
        label=_("Cost per unit"), max_digits=12, decimal_places=2, localize=True,
        help_text=_("Per occurrence, hour or day, as the service type counts."),
    )


class PolicyFieldsForm(forms.ModelForm):
    """Fields only: the rules and their messages are valuation.policy's (one place), which
    names the field at fault; the model's constraints stay the database's last guard."""

    def _get_validation_exclusions(self):
        # Leave model validation to the service: excluded fields skip the model's constraints.
        return {field.name for field in self.instance._meta.fields}


class SegmentPolicyForm(PolicyFieldsForm):
    class Meta:
        model = ValuationPolicy
        fields = ["classic_value", "segment_policy", "segment_quantile", "fixed_classic_threshold",
                  "fixed_value_to_threshold"]
        localized_fields = ["segment_quantile", "fixed_classic_threshold", "fixed_value_to_threshold"]
        field_classes = dict.fromkeys(localized_fields, FlexibleDecimalField)
        help_texts = {
            "classic_value": _("The figure on the classic-value axis of the four segments."),
            "segment_quantile": _("Used by the quantile rule: 0.5 is the median, 0.75 puts a quarter above."),
            "fixed_classic_threshold": _("Used by the fixed-amounts rule."),
            "fixed_value_to_threshold": _("Used by the fixed-amounts rule."),
        }


class ValuationSettingsForm(PolicyFieldsForm):
    class Meta:
        model = ValuationPolicy
        fields = ["window_months", "horizon_months", "annual_discount_rate", "abc_a_share", "abc_b_share",
                  "holdout_weeks", "hours_per_day"]
        localized_fields = ["annual_discount_rate", "abc_a_share", "abc_b_share", "hours_per_day"]
        field_classes = dict.fromkeys(("annual_discount_rate", "abc_a_share", "abc_b_share", "hours_per_day"), FlexibleDecimalField)
        help_texts = {
            "window_months": _("Revenue, margin and free services are counted over this many months."),
            "horizon_months": _("How far ahead the CLV looks."),
            "annual_discount_rate": _("As a fraction: 0.10 is 10 % a year."),
            "abc_a_share": _("Customers making up this share of the margin are class A (0.80 = 80 %)."),
            "abc_b_share": _("A and B together make up this share; the rest is C (0.95 = 95 %)."),
            "holdout_weeks": _("The last weeks held back to check the model's forecasts."),
            "hours_per_day": _("The time given is shown in hours: a service logged in days counts this many hours a day."),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["hours_per_day"].required = False  # left empty: the saved value stays


class ServiceTypeForm(forms.ModelForm):
    """A service type's names in both languages, unit, description, order and availability."""

    class Meta:
        model = ServiceType
        fields = ["name", "name_de", "unit", "description", "active", "sort_order"]
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}
        help_texts = {
            "name": _("Shown on English pages and statements."),
            "name_de": _("Shown on German pages and statements; empty shows the English name."),
            "active": _("Inactive types stay on past services but are no longer offered for logging."),
        }


class NewServiceTypeForm(ServiceTypeForm):
    """A new type needs its first standard cost, valid from a day."""

    cost_per_unit = FlexibleDecimalField(
        label=_("Standard cost per unit"), max_digits=12, decimal_places=2, min_value=Decimal("0"),
    )
    valid_from = forms.DateField(
        label=_("Valid from"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
