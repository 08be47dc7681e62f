"""Logging an NPS answer from the cockpit."""

from django import forms
from django.contrib import messages
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from customers.access import any_role, customer_or_404
from customers.services import log_survey_answer


class SurveyAnswerForm(forms.Form):
    answered_on = forms.DateField(label=gettext_lazy("Answered on"), initial=timezone.localdate,
                                  widget=forms.DateInput(attrs={"type": "date"}))
    score = forms.IntegerField(label=gettext_lazy("Score (0-10)"), min_value=0, max_value=10)
    contact = forms.CharField(label=gettext_lazy("Contact"), max_length=200, required=False)
    comment = forms.CharField(label=gettext_lazy("Comment"), required=False, widget=forms.Textarea(attrs={"rows": 2}))


@any_role
@require_POST
def log_answer(request, pk: int):
    customer = customer_or_404(user=request.user, pk=pk)
    form = SurveyAnswerForm(request.POST)
    if form.is_valid():
        log_survey_answer(user=request.user, customer=customer, **form.cleaned_data)
        messages.success(request, _("Survey answer saved."))
    else:
        messages.error(request, _("The answer was not saved: %(errors)s")
                       % {"errors": " ".join(str(e) for errors in form.errors.values() for e in errors)})
    return redirect(reverse("customers:detail", args=[customer.pk]) + "#nps")
