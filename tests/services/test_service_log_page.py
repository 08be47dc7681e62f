import datetime as dt
import re

import pytest
from django.urls import reverse

from tests.factories import CustomerFactory, ServiceEventFactory

pytestmark = pytest.mark.django_db


def test_recent_entries_are_sorted_by_the_day_of_the_service(client, inside_sales):
    customer = CustomerFactory()
    # Logged in this order (a late entry for an old day comes last) ...
    for day in [dt.date(2026, 3, 2), dt.date(2026, 3, 9), dt.date(2026, 1, 15), dt.date(2026, 3, 5)]:
        ServiceEventFactory(customer=customer, date=day, logged_by=inside_sales)
    client.force_login(inside_sales)
    html = client.get(reverse("services:log")).content.decode()
    table = html[html.index('id="recent-entries"'):]
    days = re.findall(r'data-label="Date">([^<]+)<', table)
    # ... and shown newest day first.
    assert days == ["03/09/2026", "03/05/2026", "03/02/2026", "01/15/2026"]
