"""Why did this value change: named drivers that add up exactly to the change."""


import pandas as pd
import pytest

from customers.models import Customer
from valuation.engine import score_customers
from valuation.engine.attribution import clv_change_drivers, point_clv
from valuation.models import CustomerValue
from valuation.value_change import customer_value_change

pytestmark = pytest.mark.django_db


def test_drivers_add_up_to_the_clv_change_for_every_customer(two_runs):
    previous, current = two_runs
    before = {v.customer_id: v for v in CustomerValue.objects.filter(run=previous)}
    after = {v.customer_id: v for v in CustomerValue.objects.filter(run=current)}
    assert len(after) == 90
    moved = 0
    for customer in Customer.objects.all():
        change = customer_value_change(customer=customer)
        assert change.available
        assert change.previous_clv == before[customer.pk].clv
        assert change.current_clv == after[customer.pk].clv
        assert sum(d["amount"] for d in change.drivers) == after[customer.pk].clv - before[customer.pk].clv
        assert sum(d["amount"] for d in change.value_to_drivers) == (
            after[customer.pk].value_to_customer - before[customer.pk].value_to_customer)
        moved += any(d["amount"] for d in change.drivers)
    assert moved > 40  # a month passed: most customers' values moved


def test_drivers_are_what_they_say(two_runs):
    """A customer without a purchase between the runs changes by time (and refit) only; one
    who bought has a new-purchases driver; the lost one has its status driver; new hotline
    services show as new free services."""
    previous, current = two_runs
    rows = {v.customer_id: v for v in CustomerValue.objects.filter(run=current)}
    old = {v.customer_id: v for v in CustomerValue.objects.filter(run=previous)}
    quiet = [c for c in rows if rows[c].purchase_days == old[c].purchase_days and rows[c].purchase_days > 1]
    bought = [c for c in rows if rows[c].purchase_days > old[c].purchase_days and old[c].purchase_days > 1]
    assert quiet and bought
    for pk in quiet[:5]:
        drivers = {d["name"]: d["amount"] for d in customer_value_change(customer=Customer.objects.get(pk=pk)).drivers}
        assert drivers["new_purchases"] == 0
        assert drivers["time_without_purchase"] < 0
    assert any(
        {d["name"]: d["amount"] for d in customer_value_change(customer=Customer.objects.get(pk=pk)).drivers}["new_purchases"] != 0
        for pk in bought[:5]
    )
    spoiled = Customer.objects.get(number="S0000")
    to_drivers = {d["name"]: d["amount"] for d in customer_value_change(customer=spoiled).value_to_drivers}
    assert to_drivers["new_services"] > 0


def test_point_clv_is_the_engines_clv():
    """The attribution's model CLV is score_customers' point estimate."""
    from valuation.engine import BgNbdParams, EngineSettings, GammaGammaParams, ModelFit
    from valuation.engine.attribution import RunModel

    fit = ModelFit(BgNbdParams(r=0.8, alpha=6.0, a=0.6, b=3.0), GammaGammaParams(p=4.0, q=3.0, v=120.0),
                   population_margin=180.0)
    summary = pd.DataFrame({"purchase_days": [0, 1, 3, 8, 4], "frequency": [0, 0, 2, 7, 3],
                            "recency_weeks": [0, 0, 20.0, 70.0, 10.0], "age_weeks": [0, 30.0, 40.0, 80.0, 90.0],
                            "mean_repeat_margin": [0, 0, 150.0, 90.0, -20.0]})
    settings = EngineSettings(simulation_draws=20)
    expected = score_customers(summary, fit, settings)["clv"].to_numpy()
    assert point_clv(RunModel(fit, settings), summary) == pytest.approx(expected, rel=1e-12)


def test_a_new_customer_starts_from_nothing():
    from valuation.engine import BgNbdParams, EngineSettings, ModelFit
    from valuation.engine.attribution import RunModel

    model = RunModel(ModelFit(BgNbdParams(r=0.8, alpha=6.0, a=0.6, b=3.0), None, population_margin=100.0),
                     EngineSettings())
    current = pd.DataFrame({"purchase_days": [2], "recency_weeks": [1.0], "age_weeks": [3.0],
                            "mean_repeat_margin": [80.0], "clv": [123.45], "active": [True]}, index=[7])
    previous = pd.DataFrame(columns=current.columns)
    drivers = clv_change_drivers(previous, current, previous_model=model, current_model=model, weeks_between=4.3)
    row = drivers.loc[7]
    assert row["previous_clv"] == 0 and row["time_without_purchase"] == 0
    assert row[["time_without_purchase", "new_purchases", "model_refit", "status_change"]].sum() == 12345


def test_rows_without_kept_inputs_still_add_up():
    """A previous row written before the model inputs were kept: no time driver, exact sum."""
    from valuation.engine import BgNbdParams, EngineSettings, ModelFit
    from valuation.engine.attribution import RunModel

    model = RunModel(ModelFit(BgNbdParams(r=0.8, alpha=6.0, a=0.6, b=3.0), None, population_margin=100.0),
                     EngineSettings())
    previous = pd.DataFrame({"purchase_days": [5], "recency_weeks": [None], "age_weeks": [None],
                             "mean_repeat_margin": [None], "clv": [500.0], "active": [True]}, index=[3])
    current = pd.DataFrame({"purchase_days": [6], "recency_weeks": [50.0], "age_weeks": [60.0],
                            "mean_repeat_margin": [90.0], "clv": [612.34], "active": [True]}, index=[3])
    row = clv_change_drivers(previous, current, previous_model=model, current_model=model, weeks_between=4.3).loc[3]
    assert row["time_without_purchase"] == 0
    assert row[["time_without_purchase", "new_purchases", "model_refit", "status_change"]].sum() == 61234 - 50000
