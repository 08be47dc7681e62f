"""Forms of the manager pages: dashboard filters and the settings sections."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.utils.formats import date_format
from django.utils.translation import gettext_lazy as _

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
    cost_per_unit = forms.DecimalField(
        label=_("Cost per unit"), max_digits=12, decimal_places=2, localize=True,
        help_text=_("Per occurrence, hour or day, as the service type counts."),
    )

    def clean_cost_per_unit(self):
        cost = self.cleaned_data["cost_per_unit"]
        if cost < 0:
            raise forms.ValidationError(_("A standard cost cannot be negative."), code="negative")
        return cost


class SegmentPolicyForm(forms.ModelForm):
    class Meta:
        model = ValuationPolicy
        fields = ["classic_value", "segment_policy", "segment_quantile", "fixed_classic_threshold",
                  "fixed_value_to_threshold"]
        localized_fields = ["segment_quantile", "fixed_classic_threshold", "fixed_value_to_threshold"]
        help_texts = {
            "classic_value": _("The figure on the classic-value axis of the four segments."),
            "segment_quantile": _("Used by the quantile rule: 0.5 is the median, 0.75 puts a quarter above."),
            "fixed_classic_threshold": _("Used by the fixed-amounts rule."),
            "fixed_value_to_threshold": _("Used by the fixed-amounts rule."),
        }

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("segment_policy") == ValuationPolicy.SegmentPolicy.FIXED:
            for name in ("fixed_classic_threshold", "fixed_value_to_threshold"):
                if cleaned.get(name) is None and name not in self.errors:
                    self.add_error(name, _("The fixed-amounts rule needs this amount."))
        quantile = cleaned.get("segment_quantile")
        if quantile is not None and not Decimal(0) < quantile < Decimal(1):
            self.add_error("segment_quantile", _("The quantile must lie between 0 and 1, e.g. 0.5 for the median."))
        return cleaned


class ValuationSettingsForm(forms.ModelForm):
    class Meta:
        model = ValuationPolicy
        fields = ["window_months", "horizon_months", "annual_discount_rate", "abc_a_share", "abc_b_share",
                  "holdout_weeks"]
        localized_fields = ["annual_discount_rate", "abc_a_share", "abc_b_share"]
        help_texts = {
            "window_months": _("Revenue, margin and free services are counted over this many months."),
            "horizon_months": _("How far ahead the CLV looks."),
            "annual_discount_rate": _("As a fraction: 0.10 is 10 % a year."),
            "abc_a_share": _("Customers making up this share of the margin are class A (0.80 = 80 %)."),
            "abc_b_share": _("A and B together make up this share; the rest is C (0.95 = 95 %)."),
            "holdout_weeks": _("The last weeks held back to check the model's forecasts."),
        }

    def clean(self):
        cleaned = super().clean()
        for name in ("window_months", "horizon_months", "holdout_weeks"):
            if cleaned.get(name) is not None and cleaned[name] < 1:
                self.add_error(name, _("Must be at least 1."))
        rate = cleaned.get("annual_discount_rate")
        if rate is not None and not Decimal(0) <= rate < Decimal(1):
            self.add_error("annual_discount_rate", _("Give the rate as a fraction between 0 and 1, e.g. 0.10 for 10 %."))
        a, b = cleaned.get("abc_a_share"), cleaned.get("abc_b_share")
        if a is not None and not Decimal(0) < a <= Decimal(1):
            self.add_error("abc_a_share", _("The A share must lie above 0 and at most 1, e.g. 0.80."))
        elif b is not None and not Decimal(0) < b <= Decimal(1):
            self.add_error("abc_b_share", _("The A+B share must lie above 0 and at most 1, e.g. 0.95."))
        elif a is not None and b is not None and b < a:
            self.add_error("abc_b_share", _("The A+B share cannot be smaller than the A share."))
        return cleaned
