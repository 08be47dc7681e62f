"""Plotly figures as plain dicts, drawn in the page by static/js/charts.js.

Pure functions: rows in, a figure dict out (no queries). Pages pass the dict through
`json_script`, so charts work under a strict Content-Security-Policy (no inline script).
The dicts are written out as plotly.js reads them: building them through plotly's
graph_objects validated every property on every page view (4-5 ms of a cockpit's CPU). The
tests hand each figure to plotly, which refuses an unknown property, and check that it
comes back unchanged.
"""

import math
from dataclasses import dataclass

INK = "#1d2733"
MUTED = "#5b6b7c"
GRID = "#e6ebf0"
MARGIN_COLOUR = "#1f6feb"
SERVICE_COLOUR = "#d9822b"
CLV_COLOUR = "#067647"


@dataclass(frozen=True)
class ChartLocale:
    """How numbers look in the reader's language: plotly's `separators` and the currency."""

    decimal: str = "."
    thousands: str = ","
    currency_symbol: str = "€"
    symbol_after: bool = False

    @property
    def separators(self) -> str:
        return self.decimal + self.thousands

    def money_axis(self, largest: float | None = None) -> dict:
        """A money axis; below 10 the ticks keep cents (",.0f" would label 0.5 and 1 both "1")."""
        affix = {"ticksuffix": "\u00a0" + self.currency_symbol} if self.symbol_after else {"tickprefix": self.currency_symbol}
        small = largest is not None and largest < 10
        return {"tickformat": ",.2f" if small else ",.0f", "separatethousands": True, "rangemode": "tozero", **affix}

    def money_hover(self, label: str) -> str:
        amount = "%{y:,.2f}"
        shown = f"{amount}\u00a0{self.currency_symbol}" if self.symbol_after else f"{self.currency_symbol}{amount}"
        return f"{label}: {shown}<extra></extra>"


# Plotly's "none" template, as plotly writes it into a figure.
NO_TEMPLATE = {"data": {"scatter": [{"type": "scatter"}]}}


def _figure(layout: dict, *traces: dict) -> dict:
    return {"data": list(traces), "layout": layout}


def _layout(locale: ChartLocale, largest: float | None = None, **extra) -> dict:
    return {
        "template": NO_TEMPLATE,
        "separators": locale.separators,
        "font": {"family": "system-ui, DejaVu Sans, sans-serif", "size": 12, "color": INK},
        "margin": {"l": 60, "r": 16, "t": 16, "b": 40},
        "height": 300,
        "legend": {"orientation": "h", "y": -0.18, "x": 0},
        "hovermode": "x unified",
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "xaxis": {"gridcolor": GRID, "linecolor": GRID},
        "yaxis": {"gridcolor": GRID, "zerolinecolor": MUTED, **locale.money_axis(largest)},
        **extra,
    }


def cockpit_margin_vs_service_cost_figure(
    months: list[dict], *, locale: ChartLocale, labels: dict, show_margin: bool = True
) -> dict:
    """Monthly margin (bars) against the monthly standard cost of free services (line).

    `months`: rows with `month` (first day), `margin` and `service_cost`. Inside sales sees
    no margin, so `show_margin=False` leaves that trace out of the figure entirely.
    """
    x = [row["month"].isoformat() for row in months]
    largest = max([abs(float(row["service_cost"])) for row in months]
                  + ([abs(float(row["margin"])) for row in months] if show_margin else []), default=0.0)
    layout = _layout(locale, largest, xaxis={"gridcolor": GRID, "tickformat": "%b %Y", "dtick": "M1"})
    margin = {
        "type": "bar",
        "x": x,
        "y": [_number(row["margin"]) for row in months],
        "name": labels["margin"],
        "marker": {"color": MARGIN_COLOUR},
        "hovertemplate": locale.money_hover(labels["margin"]),
    }
    service_cost = _money_line(x, [row["service_cost"] for row in months], labels["service_cost"], SERVICE_COLOUR, 3, locale)
    return _figure(layout, margin, service_cost) if show_margin else _figure(layout, service_cost)


def cockpit_value_history_figure(
    history: list[dict], *, locale: ChartLocale, labels: dict, show_money: bool = True
) -> dict:
    """CLV (with its range) and value to the customer across the completed valuation runs.

    `history`: rows with `run__as_of`, `clv`, `clv_low`, `clv_high`, `value_to_customer`.
    """
    x = [row["run__as_of"].isoformat() for row in history]
    value_to_customer = _money_line(
        x, [r["value_to_customer"] for r in history], labels["value_to_customer"], SERVICE_COLOUR, 2, locale
    )
    if not show_money:
        return _figure(_layout(locale), value_to_customer)
    clv_range = {
        "type": "scatter",
        "x": x + x[::-1],
        # A run under the fallback claims no range: a gap in the band.
        "y": [_number(r["clv_high"]) for r in history] + [_number(r["clv_low"]) for r in history][::-1],
        "fill": "toself",
        "mode": "lines",
        "fillcolor": "rgba(6,118,71,0.12)",
        "line": {"width": 0},
        "name": labels["clv_range"],
        "hoverinfo": "skip",
    }
    clv = _money_line(x, [r["clv"] for r in history], labels["clv"], CLV_COLOUR, 2, locale)
    return _figure(_layout(locale), clv_range, clv, value_to_customer)


def _money_line(x: list[str], amounts: list, name: str, colour: str, width: int, locale: ChartLocale) -> dict:
    return {
        "type": "scatter",
        "x": x,
        "y": [_number(amount) for amount in amounts],
        "name": name,
        "mode": "lines+markers",
        "line": {"color": colour, "width": width},
        "hovertemplate": locale.money_hover(name),
    }


def _number(value) -> float | None:
    # JSON has no NaN or infinity: the page could not read the figure (plotly wrote them as null).
    number = None if value is None else float(value)
    return number if number is not None and math.isfinite(number) else None


def value_change_waterfall_figure(
    *, start_label: str, end_label: str, start, end, drivers: list[tuple[str, object]], locale: ChartLocale
) -> dict:
    """The CLV of the previous run, each driver's change, and the CLV of the latest run as a
    waterfall: the bars between the two totals add up to the difference."""
    names = [start_label, *[name for name, _amount in drivers], end_label]
    values = [_number(start), *[_number(amount) for _name, amount in drivers], _number(end)]
    measures = ["absolute", *["relative"] * len(drivers), "total"]
    layout = _layout(locale, hovermode="closest", showlegend=False, height=320, margin={"l": 60, "r": 16, "t": 16, "b": 110})
    waterfall = {
        "type": "waterfall",
        "x": names,
        "y": values,
        "measure": measures,
        "increasing": {"marker": {"color": CLV_COLOUR}},
        "decreasing": {"marker": {"color": "#b42318"}},
        "totals": {"marker": {"color": MARGIN_COLOUR}},
        "connector": {"line": {"color": MUTED, "width": 1}},
        "hovertemplate": locale.money_hover("%{x}"),
    }
    return _figure(layout, waterfall)
