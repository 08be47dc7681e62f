from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import formats
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from core.templatetags.money import CURRENCY_SYMBOLS, SYMBOL_AFTER
from customers.access import any_role, customer_or_404, sees_all_customers, sees_money, visible_customers
from customers.selectors import customer_filter_choices
from services.forms import ServiceEventForm

from . import list_columns, panels, saved_filters, selectors
from .charts import ChartLocale, cockpit_margin_vs_service_cost_figure, cockpit_value_history_figure
from .forms import CustomerFilterForm, PeriodForm
from .statement import render_statement_pdf, statement_filename, value_statement


def chart_locale() -> ChartLocale:
    language = (get_language() or settings.LANGUAGE_CODE).split("-")[0]
    return ChartLocale(
        decimal=formats.get_format("DECIMAL_SEPARATOR"),
        thousands=formats.get_format("THOUSAND_SEPARATOR"),
        currency_symbol=CURRENCY_SYMBOLS.get(settings.CVM_CURRENCY, settings.CVM_CURRENCY),
        symbol_after=language in SYMBOL_AFTER,
    )


@any_role
def customer_list(request):
    choices = customer_filter_choices(user=request.user)
    form = CustomerFilterForm(request.GET or None, owners=choices["owners"])
    filters = form.list_filters() if form.is_bound else {}
    data = form.cleaned_data if form.is_bound and form.is_valid() else {}
    sort = data.get("sort") or "name"
    page = selectors.customer_list_page(user=request.user, filters=filters, sort=sort, page=data.get("page") or 1)
    show_money = sees_money(request.user)
    is_rep = not sees_all_customers(request.user)
    offered = list_columns.offered_columns(show_money=show_money, is_rep=is_rep)
    columns = list_columns.chosen_columns(request, offered=offered)
    return render(
        request,
        "cockpit/list.html",
        {
            "form": form,
            "page": page,
            "sort": sort,
            "sortable": selectors.allowed_sorts(user=request.user),
            "choices": choices,
            "show_money": show_money,
            "filtered": any(filters.values()),
            "is_rep": is_rep,
            "offered_columns": offered,
            "columns": columns,
            "value_column_count": len([key for key in columns if key != "owner"]),
            "saved_filters": saved_filters.saved_filters(user=request.user),
            "filter_query": saved_filters.filter_query(request.GET),
        },
    )


@any_role
def customer_detail(request, pk: int):
    customer = customer_or_404(user=request.user, pk=pk, queryset=visible_customers(user=request.user).select_related("owner"))
    period_form = PeriodForm(request.GET or None, default=selectors.default_period())
    start, end = period_form.period()
    cockpit = selectors.customer_cockpit(customer=customer, start=start, end=end)
    show_money = sees_money(request.user)
    locale = chart_locale()
    monthly_chart = cockpit_margin_vs_service_cost_figure(
        cockpit.months,
        locale=locale,
        labels={"margin": _("Margin"), "service_cost": _("Free services (standard cost)")},
        show_margin=show_money,
    )
    history_chart = (
        cockpit_value_history_figure(
            cockpit.history,
            locale=locale,
            labels={"clv": _("CLV"), "clv_range": _("CLV range"), "value_to_customer": _("Value to the customer")},
            show_money=show_money,
        )
        if len(cockpit.history) > 1
        else None
    )
    log_form = ServiceEventForm(user=request.user, initial={"customer": f"{customer.number} — {customer.name}"})
    transactions = selectors.transaction_page(
        customer_id=customer.pk, start=start, end=end, search=request.GET.get("tq", ""),
        page=int(request.GET["tpage"]) if request.GET.get("tpage", "").isdigit() else 1,
    )
    return render(
        request,
        "cockpit/detail.html",
        {
            "customer": customer,
            "cockpit": cockpit,
            "value": cockpit.value,
            "period_form": period_form,
            "show_money": show_money,
            "may_open_statement": show_money,
            "monthly_chart": monthly_chart,
            "history_chart": history_chart,
            "log_form": log_form,
            "period_query": request.GET.urlencode(),
            "transactions": transactions,
            "period_params": [(name, request.GET[name]) for name in ("from", "to") if request.GET.get(name)],
        }
        | panels.cockpit_panels(customer=customer, value=cockpit.value, start=start, end=end, params=request.GET,
                                show_money=show_money, locale=locale, rollup=cockpit.rollup,
                                type_names={row["code"]: row["name"] for row in cockpit.window_by_type}),
    )


@any_role
def customer_statement(request, pk: int):
    """The value statement. Inside sales may not open it (403): it is a negotiation document
    for whoever sells to the customer, and sits next to the figures inside sales may not see."""
    if not sees_money(request.user):
        raise PermissionDenied
    customer = customer_or_404(user=request.user, pk=pk, queryset=visible_customers(user=request.user).select_related("owner"))
    period_form = PeriodForm(request.GET or None, default=selectors.default_period())
    context = {"customer": customer, "period_form": period_form}
    if period_form.is_bound and not period_form.is_valid():
        return render(request, "cockpit/statement.html", context, status=400)
    start, end = period_form.period()
    statement = value_statement(customer=customer, start=start, end=end)
    context |= {"statement": statement, "period_query": f"from={start.isoformat()}&to={end.isoformat()}"}
    context |= panels.what_if_context(value=selectors.latest_customer_value(customer_id=customer.pk), params=request.GET)
    if request.GET.get("format") == "pdf":
        pdf = render_statement_pdf(statement=statement, context=context)
        response = HttpResponse(pdf, content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{statement_filename(statement)}"'
        return response
    return render(request, "cockpit/statement.html", context)
