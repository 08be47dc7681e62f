"""The segment dashboard's figures are plain dicts that plotly accepts as they are: plotly
refuses any property it does not know and gives each figure back unchanged. What plotly
computes itself (template, subplot layout, the total line) is checked against plotly."""

import datetime as dt
import json
import subprocess
import sys
from decimal import Decimal

import plotly.graph_objects as go
import pytest
from django.utils import translation
from plotly.subplots import make_subplots

from cockpit import dashboard_charts

SEGMENT_LABELS = {"uncritical": "Uncritical", "problem": "Problem", "potential": "Potential", "investment": "Investment"}
MONTHS = [dt.date(2025, m, 1) for m in range(1, 7)]
SERVICE_ROWS = [
    {"code": code, "name": f"Service {code}", "name_de": f"Leistung {code}" if i % 2 else "", "month": month,
     "cost": Decimal("12.5") * (i + 1) if i % 3 else None}
    for i, code in enumerate(["visit", "call", "training", "repair"])
    for month in MONTHS[:: i + 1]
] + [{"code": "visit", "name": "Service visit", "month": dt.date(2024, 1, 1), "cost": Decimal("99")}]
PERIODS = [
    {"period_end": dt.date(2024, 12, 31), "retained_revenue": Decimal("1000"), "referred_new_revenue": Decimal("50"),
     "nrr": Decimal("1.05"), "earned_growth_rate": Decimal("0.07")},
    {"period_end": None, "retained_revenue": None, "referred_new_revenue": 0, "nrr": None, "earned_growth_rate": -0.1},
]
BACKTEST = {"expected_repeat_purchases": 1234.5, "actual_repeat_purchases": 1200, "mae_per_customer": 0.42,
            "naive_mae_per_customer": None}


def scatter_points(count: int, only: str | None = None) -> list[tuple]:
    amounts = [Decimal("-5"), Decimal("0"), Decimal("0.5"), Decimal("1234.56"), None]
    segments = [*SEGMENT_LABELS, "unknown"]
    return [(i + 1, f"Kunde {i}", f"K-{i:05d}", only or segments[i % len(segments)],
             amounts[i % len(amounts)], amounts[(i * 3 + 1) % len(amounts)]) for i in range(count)]


def figures(separators: str) -> list[dict]:
    scatter = {"classic_label": "Margin", "currency": "EUR", "separators": separators}
    money = {"currency": "EUR", "separators": separators}
    return [
        dashboard_charts.segment_scatter([], segment_labels={}, thresholds={}, **scatter),
        dashboard_charts.segment_scatter(scatter_points(1, "problem"), segment_labels={"problem": "P"},
                                         thresholds={"classic_threshold": Decimal("150.5")}, **scatter),
        dashboard_charts.segment_scatter(scatter_points(40), segment_labels=SEGMENT_LABELS,
                                         thresholds={"classic_threshold": -3, "value_to_threshold": Decimal("42")},
                                         floor=0.1, **scatter),
        dashboard_charts.whale_curve([], customers=0, **money),
        dashboard_charts.whale_curve([(1, Decimal("5")), (2, Decimal("8.5")), (3, Decimal("-2")), (4, None)],
                                     customers=4, **money),
        dashboard_charts.service_cost_by_month([], months=[], **money),
        dashboard_charts.service_cost_by_month(SERVICE_ROWS, months=MONTHS, **money),
        dashboard_charts.earned_growth([], **money),
        dashboard_charts.earned_growth(PERIODS, **money),
        dashboard_charts.earned_growth(PERIODS, labels=["31.12.24", ""], **money),
        dashboard_charts.model_health({"expected_repeat_purchases": 3}, separators=separators),
        dashboard_charts.model_health(BACKTEST, separators=separators),
    ]


@pytest.mark.parametrize(("language", "separators"), [("en", ".,"), ("de", ",.")])
def test_plotly_takes_every_dashboard_figure_as_it_is(language, separators):
    with translation.override(language):
        built = figures(separators)
    for figure in built:
        assert json.loads(go.Figure(figure).to_json()) == json.loads(json.dumps(figure))


def test_plotly_would_refuse_a_misspelt_property():
    figure = dashboard_charts.whale_curve([(1, Decimal("5"))], customers=1, currency="EUR", separators=".,")
    figure["layout"]["xaxis"]["rnage"] = [0, 100]
    with pytest.raises(ValueError, match="rnage"):
        go.Figure(figure)


def test_the_template_is_the_one_plotly_writes():
    template = go.layout.Template(layout=dashboard_charts.TEMPLATE["layout"])
    assert template.to_plotly_json() == dashboard_charts.TEMPLATE


def test_model_health_lays_out_its_two_plots_as_make_subplots_does():
    figure = dashboard_charts.model_health(BACKTEST, separators=".,")
    reference = make_subplots(rows=1, cols=2, horizontal_spacing=0.15,
                              subplot_titles=("repeat purchases", "error per customer (MAE)")).to_plotly_json()["layout"]
    for key in ("xaxis", "yaxis", "xaxis2", "yaxis2", "annotations"):
        assert figure["layout"][key] == reference[key]
    assert [(trace["xaxis"], trace["yaxis"]) for trace in figure["data"]] == [("x", "y")] * 2 + [("x2", "y2")] * 2


def test_the_total_line_of_the_whale_curve_is_the_one_add_hline_draws():
    figure = dashboard_charts.whale_curve([(1, Decimal("5")), (2, Decimal("3"))], customers=2, currency="EUR",
                                          separators=".,")
    reference = go.Figure()
    reference.add_hline(y=3.0, line={"color": "#5b6b7c", "width": 1, "dash": "dot"}, annotation_text="total",
                        annotation_position="bottom right")
    layout = reference.to_plotly_json()["layout"]
    assert figure["layout"]["shapes"] == layout["shapes"]
    assert figure["layout"]["annotations"][1] == layout["annotations"][0]
    assert figure["layout"]["annotations"][0]["text"] == "peak"


def test_the_figures_show_real_amounts_and_the_floor():
    figure = dashboard_charts.segment_scatter([(7, "A", "K-7", "problem", Decimal("-5"), Decimal("250"))],
                                              segment_labels=SEGMENT_LABELS, thresholds={"value_to_threshold": 0},
                                              classic_label="Margin", currency="EUR", separators=".,")
    (trace,) = figure["data"]
    assert (trace["x"], trace["y"], trace["customdata"]) == ([1.0], [250.0], [[7, "A", "K-7", -5.0, 250.0]])
    assert trace["name"] == "Problem (1)"
    assert [shape["y0"] for shape in figure["layout"]["shapes"]] == [1.0]
    assert "shapes" not in dashboard_charts.segment_scatter(
        [], segment_labels={}, thresholds={}, classic_label="Margin", currency="EUR", separators=".,")["layout"]


def test_the_module_does_not_load_plotly():
    # The figures are built without plotly: importing the module on a fresh interpreter leaves plotly unloaded.
    code = ("import os, sys, django; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'cvm.settings'); django.setup(); "
            "import cockpit.dashboard_charts; print('plotly' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
