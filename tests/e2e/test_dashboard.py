"""A manager opens the segment dashboard, sees the scatter, clicks a customer, lands on the cockpit."""

import datetime as dt
import random
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from customers.models import Customer
from services.models import ServiceEvent, ServiceType
from tests.e2e.conftest import screenshot
from tests.valuation.factories import ChunkFactory, CompletedRunFactory, RunningRunFactory
from valuation.models import CustomerValue

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def make_valuation(n: int = 120) -> None:
    rng = random.Random(7)
    regions = ["Bavaria", "Saxony", "Hesse"]
    customers = Customer.objects.bulk_create(
        Customer(number=f"K{i:05d}", name=f"Kunde {i} GmbH", region=regions[i % 3], industry="Machinery")
        for i in range(n)
    )
    earlier = CompletedRunFactory(as_of=dt.date(2025, 9, 30))
    run = CompletedRunFactory()
    rows = []
    for target, jitter in ((earlier, 0.7), (run, 1.0)):
        for customer in customers:
            margin = Decimal(round(rng.lognormvariate(7.5, 1.2) * jitter, 2))
            services = Decimal(round(rng.choice([0, 0, rng.lognormvariate(5.5, 1.3)]), 2))
            clv = Decimal(round(float(margin) * rng.uniform(0.2, 3.5), 2))
            high_classic, high_services = clv >= 1000, services >= 200
            segment = {(False, False): "uncritical", (False, True): "problem",
                       (True, False): "potential", (True, True): "investment"}[(high_classic, high_services)]
            rows.append(CustomerValue(
                run=target, customer=customer, revenue_lifetime=margin * 9, margin_lifetime=margin * 3,
                revenue_window=margin * 3, margin_window=margin, value_to_customer=services,
                profit_after_services=margin - services, abc_class=rng.choice("AABCC"), p_alive=rng.random(),
                expected_purchases=rng.uniform(0, 6), clv=clv, clv_low=clv * Decimal("0.6"),
                clv_high=clv * Decimal("1.5"), segment=segment,
            ))
    CustomerValue.objects.bulk_create(rows)
    types = list(ServiceType.objects.all())
    today = timezone.localdate()
    ServiceEvent.objects.bulk_create(
        ServiceEvent(customer=rng.choice(customers), service_type=rng.choice(types),
                     date=today - dt.timedelta(days=rng.randrange(0, 720)), quantity=Decimal(rng.choice([1, 1, 2, 0.5])))
        for _ in range(400)
    )


def test_manager_clicks_a_point_and_lands_on_the_cockpit(page, live_server, login, manager):
    make_valuation()
    login(manager)
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(f"{live_server.url}/dashboard/")
    page.wait_for_selector("#segment-scatter[data-drawn=true]")
    page.wait_for_selector("#fig-service-cost", state="attached")
    assert page.locator("#segment-scatter .main-svg").count() >= 1
    screenshot(page, "dashboard")

    page.locator("#segment-scatter").scroll_into_view_if_needed()
    target = page.evaluate(
        """() => {
            const gd = document.getElementById('segment-scatter');
            const trace = gd.data.find(t => t.x && t.x.length);
            const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
            const box = gd.getBoundingClientRect();
            return {
                id: trace.customdata[0][0],
                x: box.left + xa._offset + xa.l2p(xa.d2l(trace.x[0])),
                y: box.top + ya._offset + ya.l2p(ya.d2l(trace.y[0])),
            };
        }"""
    )
    page.mouse.move(target["x"], target["y"])
    page.wait_for_selector("#segment-scatter .hoverlayer .hovertext")
    page.mouse.click(target["x"], target["y"])
    page.wait_for_url(f"**/customers/{target['id']}/")
    assert page.url == f"{live_server.url}/customers/{target['id']}/"


def test_dashboard_on_a_tablet(page, live_server, login, manager):
    make_valuation(40)
    login(manager)
    page.set_viewport_size({"width": 820, "height": 1180})
    page.goto(f"{live_server.url}/dashboard/?region=Bavaria")
    page.wait_for_selector("#segment-scatter[data-drawn=true]")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 820  # no sideways scrolling of the page itself
    screenshot(page, "dashboard-tablet")


def test_settings_page_follows_a_running_valuation(page, live_server, login, manager):
    CompletedRunFactory(rows_written=120)
    run = RunningRunFactory(as_of=timezone.localdate(), stage="scoring")
    chunks = ChunkFactory.create_batch(4, run=run)
    login(manager)
    page.goto(f"{live_server.url}/settings/")
    assert page.locator("#run-status [data-field=stage_display]").inner_text() == "scoring the customers"
    assert page.locator("[data-recompute-button]").is_disabled()

    for chunk in chunks:
        chunk.status = "done"
        chunk.save()
    type(run).objects.filter(pk=run.pk).update(status="completed", stage="done", finished_at=timezone.now(),
                                               rows_written=120)
    expect(page.locator("#run-status [data-field=status_display]")).to_have_text("completed", timeout=8000)
    assert page.locator("[data-show-when-completed]").is_visible()
    assert page.locator("[data-recompute-button]").is_enabled()
    screenshot(page, "settings")
