"""The service-logging form: keyboard-first, and complete without JavaScript."""

from decimal import Decimal

from django import forms
from django.utils import formats, timezone
from django.utils.translation import gettext_lazy as _

from core.numbers import FlexibleDecimalField
from core.plausibility import EARLIEST_DATE
from customers.access import can_log_for, visible_customers

from .models import ServiceEvent
from .selectors import active_service_types

# The search box fills in "number — name"; without JavaScript the number alone is enough.
NUMBER_SEPARATOR = " — "


class ServiceEventForm(forms.Form):
    customer = forms.CharField(
        label=_("Customer"),
        max_length=240,
        help_text=_("Customer number, or start typing a name or number and pick with ↓ and Enter."),
        widget=forms.TextInput(
            attrs={
                "autocomplete": "off",
                "role": "combobox",
                "aria-autocomplete": "list",
                "aria-expanded": "false",
                "aria-controls": "customer-options",
                "spellcheck": "false",
            }
        ),
    )
    service_type = forms.ModelChoiceField(label=_("Service"), queryset=None, empty_label=_("Choose a service …"))
    date = forms.DateField(label=_("Date"), localize=True, widget=forms.DateInput(attrs={"inputmode": "numeric"}))
    quantity = FlexibleDecimalField(
        label=_("Quantity"),
        max_digits=8,
        decimal_places=2,
        min_value=Decimal("0.01"),
        localize=True,
        help_text=_("Occurrences, hours or days, as the service counts."),
        widget=forms.TextInput(attrs={"inputmode": "decimal", "size": 6}),
    )
    note = forms.CharField(label=_("Background"), required=False, max_length=2000)

    def __init__(self, *args, user, event: ServiceEvent | None = None, multiline_note: bool = False, **kwargs):
        if event is not None and not kwargs.get("data") and not args:
            kwargs.setdefault("initial", {
                "customer": f"{event.customer.number}{NUMBER_SEPARATOR}{event.customer.name}",
                "service_type": event.service_type_id,
                "date": event.date,
                "quantity": event.quantity,
                "note": event.note,
            })
        super().__init__(*args, **kwargs)
        self.user = user
        types = active_service_types()
        if event is not None:
            # An entry of a type retired since keeps its type when edited.
            types = types | type(event.service_type).objects.filter(pk=event.service_type_id)
        self.fields["service_type"].queryset = types
        self.fields["date"].initial = timezone.localdate
        self.fields["quantity"].initial = 1
        if multiline_note:
            self.fields["note"].widget = forms.Textarea(attrs={"rows": 3})

    def clean_customer(self):
        text = self.cleaned_data["customer"].strip()
        number = text.split(NUMBER_SEPARATOR, 1)[0].strip()
        visible = visible_customers(user=self.user).select_related("owner")
        customer = visible.filter(number=number).first() or (
            visible.filter(number=number.upper()).first() if number.upper() != number else None
        )
        if customer is None:
            raise forms.ValidationError(
                _("No customer with the number “%(number)s” that you may log for."), params={"number": number}
            )
        if not can_log_for(self.user, customer):
            raise forms.ValidationError(_("You may log services only for your own customers."))
        return customer

    def clean_date(self):
        date = self.cleaned_data["date"]
        if date > timezone.localdate():
            raise forms.ValidationError(_("The date lies in the future: log a service once it was given."))
        if date < EARLIEST_DATE:
            # The same limit as the API and the import.
            raise forms.ValidationError(
                _("Implausible date: before %(date)s.") % {"date": formats.date_format(EARLIEST_DATE)}
            )
        return date
