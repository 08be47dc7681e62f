"""The dashboard's figures on hand-made data."""

import datetime as dt
from decimal import Decimal

import pytest

from cockpit import dashboard_charts
from customers.models import Customer
from services.models import ServiceType, StandardCost
from tests.factories import CustomerFactory, ServiceEventFactory
from valuation import dashboard
from valuation.dashboard import DashboardFilters
from valuation.models import CustomerValue, Segment

from .factories import CompletedRunFactory, CustomerValueFactory

pytestmark = pytest.mark.django_db
ALL = DashboardFilters()


def value(run, segment, *, margin, services, clv=0, customer=None, **extra):
    return CustomerValueFactory(
        run=run, customer=customer or CustomerFactory(), segment=segment, margin_window=Decimal(margin),
        value_to_customer=Decimal(services), profit_after_services=Decimal(margin) - Decimal(services),
        clv=Decimal(clv), revenue_window=Decimal(margin) * 3, **extra,
    )


def test_segment_table_sums_per_segment_and_in_total():
    run = CompletedRunFactory()
    value(run, Segment.PROBLEM, margin=100, services=400, clv=50)
    value(run, Segment.PROBLEM, margin=300, services=250, clv=150)
    value(run, Segment.INVESTMENT, margin=5000, services=900, clv=9000)
    value(CompletedRunFactory(as_of=dt.date(2025, 1, 1)), Segment.PROBLEM, margin=1, services=1)  # other run

    table, totals = dashboard.segment_summary(dashboard.run_values(run=run, filters=ALL))

    rows = {row["segment"]: row for row in table}
    assert [row["segment"] for row in table] == ["uncritical", "problem", "potential", "investment"]
    assert rows["problem"]["customers"] == 2
    assert rows["problem"]["margin"] == Decimal("400.00")
    assert rows["problem"]["revenue"] == Decimal("1200.00")
    assert rows["problem"]["service_cost"] == Decimal("650.00")
    assert rows["problem"]["clv"] == Decimal("200.00")
    assert rows["problem"]["profit"] == Decimal("-250.00")
    assert rows["problem"]["unprofitable"] == 1
    assert rows["uncritical"]["customers"] == 0 and rows["uncritical"]["profit"] == Decimal("0")
    assert totals["customers"] == 3
    assert totals["profit"] == Decimal("3850.00")
    assert totals["service_cost"] == Decimal("1550.00")
    assert totals["profitable"] == 2


def test_filters_narrow_every_figure():
    run = CompletedRunFactory()
    north = CustomerFactory(region="North", industry="Steel")
    south = CustomerFactory(region="South", industry="Steel")
    value(run, Segment.PROBLEM, margin=10, services=500, customer=north)
    value(run, Segment.PROBLEM, margin=20, services=700, customer=south)
    hotline = ServiceType.objects.get(code="hotline")
    today = dt.date(2026, 1, 20)
    ServiceEventFactory(customer=north, service_type=hotline, date=today, quantity=Decimal(1))
    ServiceEventFactory(customer=south, service_type=hotline, date=today, quantity=Decimal(2))

    board = dashboard.segment_dashboard(filters=DashboardFilters(region="North"), today=today)

    assert board.totals["customers"] == 1
    assert [row[0] for row in board.scatter] == [north.pk]
    assert [row["customer_id"] for row in board.actions["renegotiate"]] == [north.pk]
    assert [row["customer_id"] for row in board.actions["unprofitable"]] == [north.pk]
    assert sum(row["cost"] for row in board.service_cost) == Decimal("65.00")  # one hotline hour
    assert board.whale[-1][1] == Decimal("-490.00")


def test_segment_migration_counts_customers_by_old_and_new_segment():
    earlier, latest = CompletedRunFactory(as_of=dt.date(2025, 9, 30)), CompletedRunFactory()
    moves = [("problem", "investment"), ("problem", "investment"), ("problem", "problem"),
             ("uncritical", "potential"), ("investment", "investment")]
    for before, now in moves:
        customer = CustomerFactory()
        value(earlier, before, margin=1, services=1, customer=customer)
        value(latest, now, margin=1, services=1, customer=customer)
    value(latest, "uncritical", margin=1, services=1)  # new since the earlier run
    value(earlier, "problem", margin=1, services=1)  # gone since

    counts = dashboard.segment_migration(run=latest, earlier=earlier, filters=ALL)["counts"]
    assert counts == {("problem", "investment"): 2, ("problem", "problem"): 1,
                      ("uncritical", "potential"): 1, ("investment", "investment"): 1}

    board = dashboard.segment_dashboard(filters=ALL)
    assert board.earlier == earlier
    matrix = board.migration
    problem_row = next(row for row in matrix["rows"] if row["segment"] == "problem")
    assert problem_row["cells"] == [0, 1, 0, 2]  # columns: uncritical, problem, potential, investment
    assert matrix["new"] == [1, 0, 0, 0]
    assert matrix["moved"] == 3 and matrix["compared"] == 5


def test_whale_curve_ends_at_the_total_profit_and_peaks_at_the_profitable_ones():
    run = CompletedRunFactory()
    profits = [Decimal(p) for p in ("1200.50", "-300.25", "800", "-50", "0", "75.75")]
    for profit in profits:
        value(run, Segment.INVESTMENT, margin=profit + 100, services=100)
    board = dashboard.segment_dashboard(filters=ALL)

    assert [rank for rank, _ in board.whale] == [1, 2, 3, 4, 5, 6]
    assert board.whale[-1][1] == sum(profits) == Decimal("1726.00")
    assert max(cum for _, cum in board.whale) == Decimal("2076.25")  # sum of the positive ones
    assert board.whale[0][1] == Decimal("1200.50")


def test_whale_curve_is_thinned_but_keeps_ends_and_peak():
    run = CompletedRunFactory()
    customers = Customer.objects.bulk_create(Customer(number=f"W{i}", name=f"W{i}") for i in range(1500))
    CustomerValue.objects.bulk_create(
        CustomerValue(run=run, customer=c, revenue_lifetime=0, margin_lifetime=0, revenue_window=0, margin_window=0,
                      value_to_customer=0, profit_after_services=Decimal(1000 - i), abc_class="C", p_alive=1,
                      expected_purchases=0, clv=0, clv_low=0, clv_high=0, segment="uncritical")
        for i, c in enumerate(customers)
    )
    values = dashboard.run_values(run=run, filters=ALL)
    ranks = dashboard.whale_pick_ranks(1500, 1000)  # profits 1000 down to 1 are positive
    curve = dashboard.whale_curve(values, ranks=ranks)
    assert 500 <= len(curve) <= 503
    assert curve[0][0] == 1 and curve[-1][0] == 1500
    assert curve[-1][1] == sum(Decimal(1000 - i) for i in range(1500))
    assert max(c for _, c in curve) == sum(Decimal(1000 - i) for i in range(1000)) == Decimal(500500)


def test_monthly_service_cost_uses_the_cost_valid_on_each_day():
    hotline = ServiceType.objects.get(code="hotline")  # 65.00 from the catalogue
    StandardCost.objects.create(service_type=hotline, valid_from=dt.date(2025, 11, 15), cost_per_unit=Decimal("80.00"))
    training = ServiceType.objects.get(code="training")  # 950.00 a day
    customer = CustomerFactory()
    ServiceEventFactory(customer=customer, service_type=hotline, date=dt.date(2025, 11, 14), quantity=Decimal("2"))
    ServiceEventFactory(customer=customer, service_type=hotline, date=dt.date(2025, 11, 15), quantity=Decimal("1.5"))
    ServiceEventFactory(customer=customer, service_type=hotline, date=dt.date(2025, 12, 1), quantity=Decimal("1"))
    ServiceEventFactory(customer=customer, service_type=training, date=dt.date(2025, 11, 30), quantity=Decimal("0.5"))
    ServiceEventFactory(customer=customer, service_type=hotline, date=dt.date(2023, 11, 30))  # before the 24 months

    months = dashboard.month_starts(today=dt.date(2025, 12, 10))
    assert len(months) == 24 and months[0] == dt.date(2024, 1, 1) and months[-1] == dt.date(2025, 12, 1)
    rows = dashboard.service_cost_by_month(filters=ALL, months=months)
    costs = {(row["code"], row["month"]): row["cost"] for row in rows}
    assert costs == {
        ("hotline", dt.date(2025, 11, 1)): Decimal("250.00"),  # 2 x 65 + 1.5 x 80
        ("hotline", dt.date(2025, 12, 1)): Decimal("80.00"),
        ("training", dt.date(2025, 11, 1)): Decimal("475.00"),
    }
    figure = dashboard_charts.service_cost_by_month(rows, months=months, currency="EUR", separators=".,")
    hotline_trace = next(t for t in figure["data"] if t["name"] == hotline.name)
    assert list(hotline_trace["y"])[-2:] == [250.0, 80.0]


def test_scatter_sample_keeps_small_segments_whole_and_respects_the_budget():
    run = CompletedRunFactory()
    customers = Customer.objects.bulk_create(Customer(number=f"S{i}", name=f"S{i}") for i in range(400))
    segments = ["problem"] * 5 + ["investment"] * 395
    CustomerValue.objects.bulk_create(
        CustomerValue(run=run, customer=c, revenue_lifetime=0, margin_lifetime=0, revenue_window=0, margin_window=0,
                      value_to_customer=10, profit_after_services=0, abc_class="C", p_alive=1,
                      expected_purchases=0, clv=i, clv_low=0, clv_high=0, segment=segments[i])
        for i, c in enumerate(customers)
    )
    values = dashboard.run_values(run=run, filters=ALL)
    counts = {"problem": 5, "investment": 395}
    sample = dashboard.scatter_sample(values, classic_field="clv", counts=counts, budget=60)
    assert sum(1 for row in sample if row[3] == "problem") == 5
    drawn = sum(1 for row in sample if row[3] == "investment")
    assert 40 <= drawn <= 70  # ~55 expected; deterministic, not exact
    assert sample == dashboard.scatter_sample(values, classic_field="clv", counts=counts, budget=60)


def test_scatter_quotas_give_small_segments_everything():
    shares = dashboard.scatter_quotas({"problem": 10, "investment": 100_000, "uncritical": 50_000, "potential": 0},
                                      budget=5000)
    assert shares["problem"] == 1.0
    assert "potential" not in shares
    drawn = 10 + shares["investment"] * 100_000 + shares["uncritical"] * 50_000
    assert drawn == pytest.approx(5000)


def test_action_lists_follow_their_rules():
    run = CompletedRunFactory(settings={"classic_value": "clv", "horizon_months": 24})
    loser = value(run, Segment.PROBLEM, margin=100, services=900, clv=10)
    spoiled = value(run, Segment.PROBLEM, margin=2000, services=1500, clv=3000)
    gone = value(run, Segment.PROBLEM, margin=3000, services=2000, clv=0, p_alive=0.0, basis="lost")
    at_risk = value(run, Segment.INVESTMENT, margin=100, services=0, clv=50, p_alive=0.2,
                    margin_lifetime=Decimal(90000))
    value(run, Segment.INVESTMENT, margin=100, services=0, clv=50, p_alive=0.8, margin_lifetime=Decimal(90000))
    # A: margin 10,000 over 24 months would be 20,000; CLV 9,000 < 10,000 -> on the list; 11,000 is not.
    fading = value(run, Segment.POTENTIAL, margin=10000, services=0, clv=9000, abc_class="A")
    value(run, Segment.POTENTIAL, margin=10000, services=0, clv=11000, abc_class="A")

    lists = dashboard.segment_dashboard(filters=ALL).actions

    assert [r["customer_id"] for r in lists["unprofitable"]] == [loser.customer_id]
    assert [r["customer_id"] for r in lists["renegotiate"]] == [spoiled.customer_id, loser.customer_id]
    assert [r["customer_id"] for r in lists["win_back"]] == [at_risk.customer_id, gone.customer_id]
    assert [r["customer_id"] for r in lists["a_today_c_tomorrow"]] == [fading.customer_id]
    assert lists["unprofitable"][0]["url"] == f"/customers/{loser.customer_id}/"


def test_dashboard_without_a_run_explains_itself(client, manager):
    client.force_login(manager)
    response = client.get("/dashboard/")
    assert response.status_code == 200
    assert "No valuation yet" in response.content.decode()
    assert b'action="/settings/recompute/"' in response.content


def test_dashboard_page_shows_sample_size_and_click_target(client, manager):
    run = CompletedRunFactory()
    for i in range(3):
        value(run, Segment.INVESTMENT, margin=100 * i, services=10)
    client.force_login(manager)
    html = client.get("/dashboard/").content.decode()
    assert "Showing 3 of 3 customers" in html
    assert 'data-click-url="/customers/{id}/"' in html
    assert 'id="fig-scatter"' in html and "plotly-strict.min.js" in html


def test_scatter_figure_clips_to_the_floor_and_carries_the_id():
    points = [(7, "Acme", "C-7", "problem", Decimal("-500"), Decimal("0")),
              (8, "Beta", "C-8", "investment", Decimal("5000"), Decimal("900"))]
    figure = dashboard_charts.segment_scatter(
        points, segment_labels={"problem": "problem group", "investment": "investment customers"},
        thresholds={"classic_threshold": 1000, "value_to_threshold": 0}, classic_label="CLV", currency="EUR",
        separators=".,",
    )
    problem = figure["data"][0]
    assert problem["type"] == "scattergl"
    assert list(problem["x"]) == [1.0] and list(problem["y"]) == [1.0]
    assert problem["customdata"][0][0] == 7 and problem["customdata"][0][3] == -500.0
    assert figure["layout"]["xaxis"]["type"] == "log"
    assert [shape["x0"] for shape in figure["layout"]["shapes"] if shape["xref"] == "x"] == [1000.0]
    assert [shape["y0"] for shape in figure["layout"]["shapes"] if shape["yref"] == "y"] == [1.0]  # 0 -> floor


BACKTEST = {
    "model": "pareto_nbd", "holdout_weeks": 52.0, "customers": 3,
    "reason": "lowest RMSE of holdout margin among models within 25% of the actual total",
    "fit_quality": {"ok": False, "fallback": "own_margin_per_purchase", "problems": [
        {"code": "spend_q_at_most_1", "model": "gamma_gamma", "message": "The spend data want q <= 1."}]},
    "range_calibration": {"share_above_high": 0.112, "share_below_low": 0.034, "interval": [0.1, 0.9]},
    "models_compared": {
        name: {"fit_quality": {"ok": True},
               "purchases": {"mae": 0.5 + k, "rmse": 1.0 + k, "predicted_total": 100.0, "actual_total": 110.0},
               "margin": {"mae": 40.0 + k, "rmse": 90.0 + k, "predicted_total": 9000.0 + k, "actual_total": 10000.0,
                          "total_error": -0.1},
               "conditional_expectations": [
                   {"frequency": f"{f}+" if f == 7 else str(f), "customers": 10 - f, "predicted_purchases": 0.25 * f,
                    "actual_purchases": 0.3 * f, "predicted_margin": 10.0 * f, "actual_margin": 11.0 * f}
                   for f in range(8)]}
        for k, name in enumerate(("bgnbd", "mbgnbd", "pareto_nbd"))
    },
}


def test_model_health_panel_shows_the_choice_the_comparison_and_the_problems(client, manager):
    run = CompletedRunFactory(backtest=BACKTEST)
    value(run, Segment.INVESTMENT, margin=100, services=10)
    client.force_login(manager)
    html = client.get("/dashboard/").content.decode()
    assert "Model: Pareto/NBD" in html
    assert "The fit did not pass its checks:" in html
    assert "Gamma-Gamma: The spend data imply an infinite mean margin per purchase (q ≤ 1)." in html
    assert "each customer&#x27;s own mean margin per purchase replaces the spend model" in html
    assert 'id="model-comparison"' in html and "MBG/NBD" in html and "BG/NBD" in html
    assert "92.00" in html  # Pareto/NBD's margin RMSE
    assert 'id="conditional-expectations"' in html and "7+" in html
    assert "11.2%" in html and "3.4%" in html  # range calibration


def test_run_api_reports_model_choice_and_fit_quality(client, manager):
    run = CompletedRunFactory(backtest=BACKTEST)
    client.force_login(manager)
    data = client.get(f"/api/v1/valuation-runs/{run.pk}/").json()
    assert data["model"] == "pareto_nbd"
    assert data["fit_quality"]["ok"] is False and data["fit_quality"]["problems"][0]["code"] == "spend_q_at_most_1"
    assert data["models_compared"]["mbgnbd"]["margin"]["rmse"] == 91.0
    assert data["range_calibration"]["share_above_high"] == 0.112


TIED_BACKTEST = {
    **BACKTEST, "model": "bgnbd", "tied": ["bgnbd", "mbgnbd"],
    "reason": "RMSE of holdout margin within one standard error of the lowest (bgnbd, mbgnbd); of these the "
              "highest log-likelihood on the whole history up to the valuation day",
    "models_compared": {
        name: {**entry, "versus_best": {"mse_difference": d, "standard_error": 40.0, "tied": d <= 40.0}}
        for (name, entry), d in zip(BACKTEST["models_compared"].items(), (20.0, 0.0, 364.0), strict=True)
    },
}


def test_model_health_panel_and_api_say_why_a_tied_model_won(client, manager):
    run = CompletedRunFactory(backtest=TIED_BACKTEST)
    value(run, Segment.INVESTMENT, margin=100, services=10)
    client.force_login(manager)
    html = client.get("/dashboard/").content.decode()
    assert "Model: BG/NBD" in html
    assert "within one standard error of the best" in html and "highest likelihood" in html
    # The two tied models are marked, Pareto/NBD (not tied) is not.
    table = html[html.index('id="model-comparison"'):html.index("</table>", html.index('id="model-comparison"'))]
    assert table.count("≈</span>") == 2
    assert "Measured on the ranges of" not in html  # the calibration is the chosen model's own


def test_range_calibration_of_the_back_tests_pick_says_whose_it_is(client, manager):
    run = CompletedRunFactory(backtest={
        **TIED_BACKTEST, "range_calibration": {**TIED_BACKTEST["range_calibration"], "model": "mbgnbd"}})
    value(run, Segment.INVESTMENT, margin=100, services=10)
    client.force_login(manager)
    html = client.get("/dashboard/").content.decode()
    assert "Measured on the ranges of MBG/NBD, the back-test's pick before the tie was broken." in html
    client.cookies.load({"django_language": "de"})
    html = client.get("/dashboard/", HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "Gemessen an den Spannen von MBG/NBD" in html


def test_tied_model_api_names_the_chosen_model(client, manager):
    run = CompletedRunFactory(backtest=TIED_BACKTEST)
    client.force_login(manager)
    data = client.get(f"/api/v1/valuation-runs/{run.pk}/").json()
    assert data["models_compared"]["bgnbd"]["chosen"] is True
    assert data["models_compared"]["bgnbd"]["reason"].startswith("RMSE of holdout margin within one standard error")
    assert data["models_compared"]["mbgnbd"]["chosen"] is False and data["models_compared"]["mbgnbd"]["reason"] is None
    assert data["models_compared"]["pareto_nbd"]["versus_best"]["tied"] is False


def test_service_cost_panel_ends_at_the_runs_as_of_date_not_today():
    run = CompletedRunFactory(as_of=dt.date(2025, 6, 30))
    customer = CustomerFactory()
    value(run, Segment.PROBLEM, margin=100, services=400, customer=customer)
    hotline = ServiceType.objects.get(code="hotline")
    ServiceEventFactory(customer=customer, service_type=hotline, date=dt.date(2025, 6, 10), quantity=Decimal(1))
    ServiceEventFactory(customer=customer, service_type=hotline, date=dt.date(2025, 7, 15), quantity=Decimal(1))

    board = dashboard.segment_dashboard(filters=ALL, today=dt.date(2026, 1, 20))

    assert board.service_months[-1] == dt.date(2025, 6, 1)
    assert board.service_months[0] == dt.date(2023, 7, 1)
    assert [row["month"] for row in board.service_cost] == [dt.date(2025, 6, 1)]


def test_filters_whose_names_hold_the_keys_separator_keep_their_own_figures():
    """Region "A:B" with no industry and region "A" with industry "B:" are different customers;
    the cached figures of one must not answer for the other."""
    run = CompletedRunFactory()
    first = CustomerFactory(region="A:B", industry="")
    value(run, Segment.PROBLEM, margin=10, services=500, customer=first)
    for margin in (20, 30):
        value(run, Segment.PROBLEM, margin=margin, services=700, customer=CustomerFactory(region="A", industry="B:"))
    today = dt.date(2026, 1, 20)

    one = dashboard.segment_dashboard(filters=DashboardFilters(region="A:B"), today=today)
    other = dashboard.segment_dashboard(filters=DashboardFilters(region="A", industry="B:"), today=today)

    assert one.totals["customers"] == 1
    assert other.totals["customers"] == 2
