"""The customer list: a column chooser (with the CLV range), remembered; saved filters per user."""

import pytest
from django.urls import reverse

from cockpit.models import SavedCustomerFilter

pytestmark = pytest.mark.django_db


def _heads(html: str) -> str:
    return html[html.index('id="customer-table"'):html.index("</thead>", html.index('id="customer-table"'))]


def test_the_clv_range_is_a_column_to_choose(client, rep, rep_customer):
    client.force_login(rep)
    url = reverse("customers:list")
    assert "CLV range" not in _heads(client.get(url).content.decode())
    html = client.get(url, {"columns": "1", "col": ["segment", "clv", "clv_range"]}).content.decode()
    heads = _heads(html)
    assert "CLV range" in heads and "Margin" not in heads and "Value to customer" not in heads
    assert "€30,864 – €59,259" in html or "clv-range" in html
    # Remembered for the next visit, in the same order as the table.
    assert "CLV range" in _heads(client.get(url).content.decode())


def test_the_range_shows_low_and_high(client, rep, rep_customer):
    value = rep_customer.values.get()
    client.force_login(rep)
    html = client.get(reverse("customers:list"), {"columns": "1", "col": ["clv_range"]}).content.decode()
    low, high = f"€{value.clv_low:,.0f}", f"€{value.clv_high:,.0f}"
    assert f'<td class="num clv-range">{low} – {high}</td>' in html


def test_inside_sales_cannot_choose_money_columns(client, inside_sales, rep_customer):
    client.force_login(inside_sales)
    html = client.get(reverse("customers:list"), {"columns": "1", "col": ["clv", "clv_range", "margin_window", "segment"]}).content.decode()
    heads = _heads(html)
    assert "CLV" not in heads and "Margin" not in heads and "Segment" in heads
    chooser = html[html.index('id="column-chooser"'):html.index("</details>")]
    assert 'value="clv"' not in chooser and 'value="margin_window"' not in chooser


def test_a_saved_filter_is_kept_per_user_and_applied(client, rep, other_rep, rep_customer):
    client.force_login(rep)
    response = client.post(reverse("customers:save_filter"), {"name": "Problem cases", "segment": "problem", "sort": "-clv", "page": "3"})
    assert response.status_code == 302 and response["Location"].endswith("?segment=problem&sort=-clv")
    saved = SavedCustomerFilter.objects.get(user=rep)
    assert saved.query == "segment=problem&sort=-clv"
    html = client.get(reverse("customers:list")).content.decode()
    assert '<a href="?segment=problem&amp;sort=-clv">Problem cases</a>' in html
    # Another rep neither sees nor deletes it.
    client.force_login(other_rep)
    assert "Problem cases" not in client.get(reverse("customers:list")).content.decode()
    client.post(reverse("customers:delete_filter", args=[saved.pk]))
    assert SavedCustomerFilter.objects.filter(pk=saved.pk).exists()
    client.force_login(rep)
    client.post(reverse("customers:delete_filter", args=[saved.pk]))
    assert not SavedCustomerFilter.objects.exists()


def test_a_filter_needs_a_name(client, rep):
    client.force_login(rep)
    client.post(reverse("customers:save_filter"), {"name": "  ", "segment": "problem"})
    assert not SavedCustomerFilter.objects.exists()
