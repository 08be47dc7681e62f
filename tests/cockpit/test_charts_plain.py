"""The chart figures are plain dicts that plotly accepts as they are: plotly refuses any
property it does not know and gives each figure back unchanged."""

import datetime as dt
import json
from decimal import Decimal

import plotly.graph_objects as go
import pytest

from cockpit.charts import (
    ChartLocale,
    cockpit_margin_vs_service_cost_figure,
    cockpit_value_history_figure,
    value_change_waterfall_figure,
)

LOCALES = [ChartLocale(), ChartLocale(decimal=",", thousands=".", currency_symbol="CHF", symbol_after=True)]
MONTHS = [{"month": dt.date(2025, m, 1), "margin": Decimal("-12.5") * m, "service_cost": Decimal("3.25")} for m in range(1, 13)]
HISTORY = [
    {"run__as_of": dt.date(2025, m, 28), "clv": Decimal("100") * m, "clv_low": None if m == 2 else Decimal("50"),
     "clv_high": Decimal("300"), "value_to_customer": Decimal("7.5")}
    for m in range(1, 5)
]


def figures(locale: ChartLocale, show: bool) -> list[dict]:
    return [
        cockpit_margin_vs_service_cost_figure(MONTHS, locale=locale, labels={"margin": "M", "service_cost": "S"},
                                              show_margin=show),
        cockpit_margin_vs_service_cost_figure(MONTHS[:1], locale=locale, labels={"margin": "M", "service_cost": "S"},
                                              show_margin=show),
        cockpit_value_history_figure(HISTORY, locale=locale, show_money=show,
                                     labels={"clv": "C", "clv_range": "R", "value_to_customer": "V"}),
        value_change_waterfall_figure(start_label="a", end_label="b", start=Decimal("10"), end=Decimal("5.5"),
                                      drivers=[("x", Decimal("-3")), ("y", -1.5)], locale=locale),
    ]


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("show", [True, False])
def test_plotly_takes_every_figure_as_it_is(locale, show):
    for figure in figures(locale, show):
        assert json.loads(go.Figure(figure).to_json()) == figure


def test_plotly_would_refuse_a_misspelt_property():
    figure = figures(LOCALES[0], True)[0]
    figure["data"][0]["hovertemplat"] = "x"
    with pytest.raises(ValueError, match="hovertemplat"):
        go.Figure(figure)


def test_inside_sales_figures_carry_no_money_traces():
    margin, _single, history, _waterfall = figures(LOCALES[0], False)
    assert [trace["name"] for trace in margin["data"]] == ["S"]
    assert [trace["name"] for trace in history["data"]] == ["V"]


def test_amounts_json_cannot_carry_are_gaps_as_plotly_wrote_them():
    months = [{"month": dt.date(2025, 1, 1), "margin": Decimal("NaN"), "service_cost": float("inf")},
              {"month": dt.date(2025, 2, 1), "margin": Decimal("5"), "service_cost": Decimal("1")}]
    figure = cockpit_margin_vs_service_cost_figure(months, locale=LOCALES[0], labels={"margin": "M", "service_cost": "S"})
    assert [trace["y"] for trace in figure["data"]] == [[None, 5.0], [None, 1.0]]
    json.dumps(figure, allow_nan=False)  # what the page's JSON.parse can read
