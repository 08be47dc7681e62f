"""Why did this value change: named drivers that add up exactly to the change."""


import numpy as np
import pandas as pd
import pytest

from customers.models import Customer
from tests.valued_company import AS_OF, PREVIOUS_AS_OF
from valuation import services
from valuation.engine import PURCHASE_MODELS, BgNbdParams, EngineSettings, GammaGammaParams, ValuationModels
from valuation.engine.attribution import CLV_DRIVERS, RunModel, clv_change_drivers, point_clv
from valuation.engine.fit_quality import gate
from valuation.engine.money import to_cents
from valuation.engine.purchase_models import fit_purchase_model
from valuation.engine.simulate import simulate_customers
from valuation.models import CustomerValue, ValuationRun
from valuation.value_change import INPUT_FIELDS, _frame, customer_value_change, run_model

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


def bgnbd_model(gamma_gamma=None, population_margin=100.0) -> RunModel:
    purchase = BgNbdParams(r=0.8, alpha=6.0, a=0.6, b=3.0)
    return RunModel(ValuationModels(model="bgnbd", purchase=purchase, gamma_gamma=gamma_gamma, bgnbd=purchase,
                                    population_margin=population_margin, fit_quality=gate([], [])), EngineSettings())


def test_a_new_customer_starts_from_nothing():
    model = bgnbd_model()
    current = pd.DataFrame({"purchase_days": [2], "recency_weeks": [1.0], "age_weeks": [3.0],
                            "mean_repeat_margin": [80.0], "mean_purchase_margin": [80.0], "margin_window": [160.0],
                            "lost": [False], "clv": [123.45]}, index=[7])
    previous = pd.DataFrame(columns=current.columns)
    drivers = clv_change_drivers(previous, current, previous_model=model, current_model=model, weeks_between=4.3)
    row = drivers.loc[7]
    assert row["previous_clv"] == 0 and row["time_without_purchase"] == 0
    assert row[list(CLV_DRIVERS)].sum() == 12345


def test_rows_without_kept_inputs_still_add_up():
    """A previous row written before the model inputs were kept: no time driver, exact sum."""
    model = bgnbd_model()
    previous = pd.DataFrame({"purchase_days": [5], "recency_weeks": [None], "age_weeks": [None],
                             "mean_repeat_margin": [None], "mean_purchase_margin": [None], "margin_window": [None],
                             "lost": [False], "clv": [500.0]}, index=[3])
    current = pd.DataFrame({"purchase_days": [6], "recency_weeks": [50.0], "age_weeks": [60.0],
                            "mean_repeat_margin": [90.0], "mean_purchase_margin": [90.0], "margin_window": [400.0],
                            "lost": [False], "clv": [612.34]}, index=[3])
    row = clv_change_drivers(previous, current, previous_model=model, current_model=model, weeks_between=4.3).loc[3]
    assert row["time_without_purchase"] == 0
    assert row[list(CLV_DRIVERS)].sum() == 61234 - 50000


# --- the run's own model ------------------------------------------------------------------------------


GG = GammaGammaParams(p=4.0, q=3.0, v=120.0)


def fitted(name: str) -> RunModel:
    """The named purchase model fitted on a simulated population, with a Gamma-Gamma spend model."""
    sim = simulate_customers(600, BgNbdParams(r=0.8, alpha=6.0, a=0.6, b=3.0),
                             np.random.default_rng(1).integers(30, 700, 600) / 7.0, gamma_gamma=GG, seed=2)
    purchase = fit_purchase_model(name, sim["frequency"], sim["recency"], sim["T"])
    return RunModel(ValuationModels(model=name, purchase=purchase, gamma_gamma=GG, bgnbd=None,
                                    population_margin=GG.population_mean, fit_quality=gate([], [])),
                    EngineSettings())


def quiet_company(weeks_between: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Customers who bought nothing between two runs, ages in whole days as the run computes them."""
    days = np.array([1, 1, 2, 3, 5, 8, 12, 4])
    age_days = np.array([10, 200, 300, 420, 510, 700, 800, 90])
    previous = pd.DataFrame({
        "purchase_days": days, "recency_weeks": np.minimum(age_days, [0, 0, 150, 400, 90, 650, 790, 80]) / 7.0,
        "age_weeks": age_days / 7.0, "mean_repeat_margin": np.where(days > 1, [0, 0, 90.0, 150, 40, 75, 210, 60], 0.0),
        "mean_purchase_margin": [55.0, 70, 80, 140, 45, 70, 200, 62], "margin_window": [55.0, 0, 80, 280, 90, 210, 800, 190],
        "lost": False,
    }, index=pd.Index(np.arange(1, 9), name="customer_id"))
    current = previous.assign(age_weeks=(age_days + round(weeks_between * 7)) / 7.0)
    return previous, current


@pytest.mark.parametrize("name", PURCHASE_MODELS)
def test_when_only_time_passed_the_change_is_time_alone(name):
    """Same models in both runs, no purchase, no status change: the refit driver is exactly 0
    and the time driver is the whole change, for each purchase model."""
    model = fitted(name)
    weeks = 30 / 7.0
    previous, current = quiet_company(weeks)
    previous["clv"] = to_cents(point_clv(model, previous)) / 100.0  # as the run stores them
    current["clv"] = to_cents(point_clv(model, current)) / 100.0
    drivers = clv_change_drivers(previous, current, previous_model=model, current_model=model, weeks_between=weeks)
    change = drivers["current_clv"] - drivers["previous_clv"]
    assert (change < 0).sum() >= 4  # time without a purchase lowers the value of repeat buyers
    assert (drivers["model_refit"] == 0).all()
    assert (drivers["new_purchases"] == 0).all()
    assert (drivers["status_change"] == 0).all()
    assert (drivers["time_without_purchase"] == change).all()


@pytest.mark.parametrize("name", PURCHASE_MODELS)
def test_a_refit_alone_is_the_refit_driver(name):
    """Same inputs, new parameters of the same model: the whole change is model_refit, and it
    is the difference of the two runs' CLVs (no other formula creeps in)."""
    before, after = fitted(name), fitted(name)
    purchase = after.models.purchase
    after = RunModel(ValuationModels(**{**after.models.__dict__, "purchase": type(purchase)(
        **{**purchase.__dict__, "r": purchase.r * 1.2})}), after.settings)
    previous, _ = quiet_company(0.0)
    current = previous.copy()
    previous["clv"] = point_clv(before, previous)
    current["clv"] = point_clv(after, current)
    drivers = clv_change_drivers(previous, current, previous_model=before, current_model=after, weeks_between=0.0)
    assert (drivers[["time_without_purchase", "new_purchases", "status_change"]] == 0).all().all()
    expected = to_cents(current["clv"]) - to_cents(previous["clv"])
    assert (drivers["model_refit"].to_numpy() == expected).all()
    assert (expected != 0).sum() >= 6


def test_a_customer_marked_lost_moves_by_the_status_driver():
    model = fitted("pareto_nbd")
    previous, current = quiet_company(0.0)
    current.loc[4, "lost"] = True
    previous["clv"] = point_clv(model, previous)
    current["clv"] = point_clv(model, current)
    row = clv_change_drivers(previous, current, previous_model=model, current_model=model, weeks_between=0.0).loc[4]
    assert row["current_clv"] == 0 and row["previous_clv"] > 0
    assert row["status_change"] == -row["previous_clv"]
    assert row["model_refit"] == row["time_without_purchase"] == row["new_purchases"] == 0


@pytest.fixture
def forced_model(monkeypatch):
    """Runs that use the purchase model given, whatever the back-test would choose."""

    def force(name):
        monkeypatch.setattr(services, "run_backtest", lambda **kwargs: {"model": name, "reason": "test"})

    return force


@pytest.mark.parametrize("name", PURCHASE_MODELS)
def test_rescoring_a_runs_inputs_with_its_stored_models_gives_its_clv(company, forced_model, name):
    """For each purchase model: a run's stored inputs, scored again with the run's stored
    parameters, give its stored CLV to the cent, for every customer."""
    forced_model(name)
    run = services.run_valuation(as_of=AS_OF)
    assert run.parameters["model"] == name and run.parameters["fit_quality"]["fallback"] is None
    rows = list(CustomerValue.objects.filter(run=run).select_related("customer").values(*INPUT_FIELDS, "customer_id"))
    assert len(rows) == 90 and sum(row["basis"] == "model" for row in rows) > 80
    customers = {c.pk: c for c in Customer.objects.all()}
    inputs = pd.concat([_frame(row, customers[row["customer_id"]]) for row in rows])
    rescored = to_cents(point_clv(run_model(ValuationRun.objects.get(pk=run.pk)), inputs))
    stored = np.array([int(row["clv"] * 100) for row in rows])
    assert (rescored == stored).all()
    assert (stored > 0).sum() > 60


@pytest.mark.parametrize(("before", "after"), [("bgnbd", "bgnbd"), ("mbgnbd", "pareto_nbd"), ("pareto_nbd", "bgnbd")])
def test_drivers_add_up_with_the_runs_chosen_models(company, forced_model, before, after):
    """Each run scores with its own chosen model; the drivers still add up to the change to the
    cent, and the model and status drivers carry no unexplained remainder."""
    forced_model(before)
    services.run_valuation(as_of=PREVIOUS_AS_OF)
    forced_model(after)
    services.run_valuation(as_of=AS_OF)
    refit_only = 0
    for customer in Customer.objects.all():
        change = customer_value_change(customer=customer)
        assert change.available
        drivers = {d["name"]: d["amount"] for d in change.drivers}
        assert sum(drivers.values()) == change.current_clv - change.previous_clv
        refit_only += drivers["model_refit"] != 0
    assert refit_only > 40
