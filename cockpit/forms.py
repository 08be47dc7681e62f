"""Input of the customer pages: list filters and the period of the cockpit and statement."""

import datetime as dt

from django import forms
from django.utils import formats
from django.utils.translation import gettext_lazy as _

from core.plausibility import EARLIEST_ACQUISITION, LATEST_PERIOD_DATE
from valuation.models import Segment

from .statement import MAX_STATEMENT_DAYS

ABC_CLASSES = [("", _("all")), ("A", "A"), ("B", "B"), ("C", "C")]


class CustomerFilterForm(forms.Form):
    """The customer list's search, filters and sort; every field optional."""

    q = forms.CharField(label=_("Name or number"), required=False, max_length=100)
    segment = forms.ChoiceField(label=_("Segment"), required=False, choices=[("", _("all"))] + Segment.choices)
    abc_class = forms.ChoiceField(label=_("ABC class"), required=False, choices=ABC_CLASSES)
    owner = forms.TypedChoiceField(label=_("Owner"), required=False, coerce=int, empty_value=None)
    region = forms.CharField(label=_("Region"), required=False, max_length=100)
    industry = forms.CharField(label=_("Industry"), required=False, max_length=100)
    sort = forms.CharField(required=False, max_length=40, widget=forms.HiddenInput)
    page = forms.IntegerField(required=False, min_value=1, max_value=100000, widget=forms.HiddenInput)

    def __init__(self, *args, owners=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].choices = [("", _("all"))] + [
            (pk, name) for pk, name in owners
        ]
        if not owners:
            del self.fields["owner"]

    def list_filters(self) -> dict:
        """Keyword arguments for customers.selectors.filtered_customers (empty when invalid)."""
        if not self.is_valid():
            return {}
        data = self.cleaned_data
        return {
            "search": data["q"],
            "segment": data["segment"],
            "abc_class": data["abc_class"],
            "owner_id": data.get("owner"),
            "region": data["region"].strip(),
            "industry": data["industry"].strip(),
        }


class PeriodForm(forms.Form):
    """`from` and `to` (both days included), as ISO dates or in the language's date format."""

    def __init__(self, *args, default: tuple[dt.date, dt.date], max_days: int = MAX_STATEMENT_DAYS, **kwargs):
        super().__init__(*args, **kwargs)
        self.default = default
        self.max_days = max_days
        # A date picker sends ISO dates; a typed or linked date may come in the language's format.
        widget = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
        input_formats = ["%Y-%m-%d", *formats.get_format("DATE_INPUT_FORMATS")]
        # "from" is a Python keyword, so these fields cannot be class attributes.
        self.fields["from"] = forms.DateField(label=_("From"), required=False, widget=widget, input_formats=input_formats)
        self.fields["to"] = forms.DateField(label=_("To"), required=False, widget=widget, input_formats=input_formats)
        self.fields["from"].error_messages["invalid"] = _("Enter the start as a date, e.g. 2025-01-31.")
        self.fields["to"].error_messages["invalid"] = _("Enter the end as a date, e.g. 2025-12-31.")
        if not self.is_bound:
            self.initial = {"from": default[0], "to": default[1]}

    def clean(self):
        data = super().clean()
        start = data.get("from") or self.default[0]
        end = data.get("to") or self.default[1]
        if "from" in self.errors or "to" in self.errors:
            return data
        if start < EARLIEST_ACQUISITION or end > LATEST_PERIOD_DATE:
            raise forms.ValidationError(
                _("Choose dates between %(first)s and %(last)s.")
                % {"first": formats.date_format(EARLIEST_ACQUISITION), "last": formats.date_format(LATEST_PERIOD_DATE)}
            )
        if start > end:
            raise forms.ValidationError(_("The period starts after it ends: check the two dates."))
        if (end - start).days > self.max_days:
            raise forms.ValidationError(
                _("The period is too long: choose at most %(years)s years.") % {"years": self.max_days // 366}
            )
        data["from"], data["to"] = start, end
        return data

    def period(self) -> tuple[dt.date, dt.date]:
        """The chosen period, or the default one when the input is invalid."""
        if self.is_valid():
            return self.cleaned_data["from"], self.cleaned_data["to"]
        return self.default
