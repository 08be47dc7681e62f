"""The cockpit says what its figures are: empty states, live against valued totals, purchases."""

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from cockpit.charts import ChartLocale, cockpit_margin_vs_service_cost_figure
from tests.cockpit.factories import CustomerValueFactory
from tests.factories import CustomerFactory, ServiceEventFactory, TransactionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def newcomer(rep, run):
    customer = CustomerFactory(owner=rep, name="Neu GmbH", number="K-9")
    CustomerValueFactory(run=run, customer=customer, revenue_lifetime=0, margin_lifetime=0, revenue_window=0,
                         margin_window=0, is_thin=True)
    return customer


def test_a_customer_without_purchases_gets_no_flat_chart_and_says_so(client, rep, newcomer):
    client.force_login(rep)
    html = client.get(reverse("customers:detail", args=[newcomer.pk])).content.decode()
    assert 'id="monthly-chart"' not in html and 'id="no-activity"' in html
    assert 'id="no-purchases-yet"' in html and "Thin history" not in html
    assert 'id="no-purchases">No purchases yet.<' in html


def test_small_amounts_keep_cents_on_the_axis():
    months = [{"month": dt.date(2026, m, 1), "margin": Decimal(0), "service_cost": Decimal("0.75") if m == 3 else Decimal(0)}
              for m in range(1, 7)]
    figure = cockpit_margin_vs_service_cost_figure(months, locale=ChartLocale(), labels={"margin": "M", "service_cost": "S"})
    assert figure["layout"]["yaxis"]["tickformat"] == ",.2f"
    big = [dict(row, margin=Decimal("2500")) for row in months]
    assert cockpit_margin_vs_service_cost_figure(big, locale=ChartLocale(), labels={"margin": "M", "service_cost": "S"})["layout"]["yaxis"]["tickformat"] == ",.0f"


def test_valued_and_live_service_totals_say_which_is_which(client, rep, rep_customer):
    ServiceEventFactory(customer=rep_customer, date=timezone.localdate() - dt.timedelta(days=2))
    client.force_login(rep)
    html = client.get(reverse("customers:detail", args=[rep_customer.pk])).content.decode()
    valued = html[html.index('id="valued-services"'):][:300]
    assert "as valued on" in valued
    assert 'id="live-total-note"' in html and "Live from the service log" in html


# The cockpit with a warm cache, for one purchase as for 61 (a page of 25 is shown); 21 before
# its monthly chart, services by type and period figures were summed from one period rollup.
COCKPIT_QUERIES = 17


def test_purchases_are_listed_filtered_and_paged_in_constant_queries(client, rep, rep_customer, django_assert_num_queries):
    today = timezone.localdate()
    client.force_login(rep)
    url = reverse("customers:detail", args=[rep_customer.pk])
    TransactionFactory(customer=rep_customer, date=today - dt.timedelta(days=1), product="Pumpe P-200", external_id="R-1")
    client.get(url)  # warm up sessions and caches
    with django_assert_num_queries(COCKPIT_QUERIES):
        client.get(url)
    for day in range(60):
        TransactionFactory(customer=rep_customer, date=today - dt.timedelta(days=2 + day), product="Ventil V-1" if day % 2 else "Dichtung D-5",
                           channel="online", revenue=Decimal("100.00"), cost_of_goods=Decimal("60.00"))
    with django_assert_num_queries(COCKPIT_QUERIES):
        html = client.get(url).content.decode()
    table = html[html.index('id="transaction-table"'):html.index("</table>", html.index('id="transaction-table"'))]
    assert table.count("<tr>") == 25 + 1  # a page of 25 plus the head
    assert "R-1" in table and "Pumpe P-200" in table  # newest first
    assert 'rel="next"' in html
    page3 = client.get(url, {"tpage": 3}).content.decode()
    assert "Purchases 51–61" in page3
    found = client.get(url, {"tq": "pumpe"}).content.decode()
    table = found[found.index('id="transaction-table"'):found.index("</table>", found.index('id="transaction-table"'))]
    assert table.count("<tr>") == 2 and "Pumpe P-200" in table


def test_inside_sales_sees_purchases_without_money(client, inside_sales, rep_customer):
    TransactionFactory(customer=rep_customer, date=timezone.localdate() - dt.timedelta(days=1), product="Pumpe P-200",
                       revenue=Decimal("9876.54"))
    client.force_login(inside_sales)
    html = client.get(reverse("customers:detail", args=[rep_customer.pk])).content.decode()
    assert "Pumpe P-200" in html and "9,876.54" not in html
