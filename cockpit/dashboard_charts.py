"""Plotly figures of the segment dashboard, as pure functions: rows in, figure JSON out.

Each builder returns `fig.to_plotly_json()` (plain lists and dicts), which the page embeds
with `json_script` and static/js/dashboard.js draws with the locally served plotly.js.
No database access here; labels are translated with gettext.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

import plotly.graph_objects as go
from django.utils.translation import gettext as _
from plotly.subplots import make_subplots

from services.models import localized_name

SEGMENT_COLOURS = {
    "uncritical": "#8b98a5",
    "problem": "#d92d20",
    "potential": "#f79009",
    "investment": "#12b76a",
}
SERVICE_COLOURS = [
    "#1f6feb", "#12b76a", "#f79009", "#d92d20", "#7a5af8", "#0ba5ec", "#ee46bc", "#669f2a", "#b54708", "#475467",
]
# A small template instead of plotly's default one keeps every figure's JSON a few KB smaller.
TEMPLATE = go.layout.Template(
    layout={
        "font": {"family": "system-ui, 'DejaVu Sans', sans-serif", "size": 12, "color": "#1d2733"},
        "paper_bgcolor": "#fff",
        "plot_bgcolor": "#fff",
        "colorway": SERVICE_COLOURS,
        "xaxis": {"gridcolor": "#e7ecf1", "zerolinecolor": "#c4ccd5", "automargin": True},
        "yaxis": {"gridcolor": "#e7ecf1", "zerolinecolor": "#c4ccd5", "automargin": True},
        "hoverlabel": {"align": "left"},
    }
)
# Log axes cannot show zero or negative amounts: those are drawn on this floor (and said so).
LOG_FLOOR = 1.0


def _layout(*, separators: str, height: int = 360, **layout) -> dict:
    return {
        "template": TEMPLATE,
        "separators": separators,
        "height": height,
        "margin": {"l": 10, "r": 10, "t": 30, "b": 10},
        "legend": {"orientation": "h", "y": -0.18, "x": 0},
        **layout,
    }


def _log_axis_title(measure: str, currency: str) -> str:
    # Whole phrases for the translators: gettext calls inside f-strings are not extracted.
    return _("%(measure)s (%(currency)s, log scale)") % {"measure": measure, "currency": currency}


def _float(value) -> float:
    return float(value) if value is not None else 0.0


def segment_scatter(points: Sequence[tuple], *, segment_labels: dict[str, str], thresholds: dict,
                    classic_label: str, currency: str, separators: str, floor: float = LOG_FLOOR) -> dict:
    """The 2x2 matrix: classic value (x) against value to the customer (y), log axes.

    points: (customer id, name, number, segment, classic value, value to the customer).
    Amounts below `floor` (zero, negative) are drawn on the floor; the hover shows the real
    amount. customdata[0] is the customer id (the click opens the cockpit).
    """
    fig = go.Figure()
    by_segment: dict[str, list[tuple]] = {key: [] for key in segment_labels}
    for point in points:
        by_segment.setdefault(point[3], []).append(point)
    money = f"%{{customdata[3]:,.0f}} {currency}"
    # plotly checks every element of a list it is given (about a second for 5,000 points): the
    # traces are built empty and their plain lists put into the figure's JSON afterwards.
    arrays = []
    for segment, rows in by_segment.items():
        if not rows:
            continue
        classic = [_float(row[4]) for row in rows]
        value_to = [_float(row[5]) for row in rows]
        arrays.append({
            "x": [max(v, floor) for v in classic],
            "y": [max(v, floor) for v in value_to],
            "customdata": [[row[0], row[1], row[2], c, v] for row, c, v in zip(rows, classic, value_to, strict=False)],
        })
        fig.add_trace(
            go.Scattergl(
                mode="markers",
                name=f"{segment_labels.get(segment, segment)} ({len(rows)})",
                marker={"color": SEGMENT_COLOURS.get(segment, "#475467"), "size": 7, "opacity": 0.75,
                        "line": {"width": 0}},
                hovertemplate=(
                    "<b>%{customdata[1]}</b> · %{customdata[2]}<br>"
                    + _("%(classic)s: %(amount)s") % {"classic": classic_label, "amount": money}
                    + "<br>"
                    + _("value to the customer: %(amount)s") % {"amount": f"%{{customdata[4]:,.0f}} {currency}"}
                    + f"<extra>{segment_labels.get(segment, segment)}</extra>"
                ),
            )
        )
    shapes = []
    classic_threshold = thresholds.get("classic_threshold")
    value_to_threshold = thresholds.get("value_to_threshold")
    line = {"color": "#1d2733", "width": 1, "dash": "dash"}
    if classic_threshold is not None:
        shapes.append({"type": "line", "xref": "x", "yref": "paper", "x0": max(float(classic_threshold), floor),
                       "x1": max(float(classic_threshold), floor), "y0": 0, "y1": 1, "line": line})
    if value_to_threshold is not None:
        shapes.append({"type": "line", "xref": "paper", "yref": "y", "y0": max(float(value_to_threshold), floor),
                       "y1": max(float(value_to_threshold), floor), "x0": 0, "x1": 1, "line": line})
    fig.update_layout(
        **_layout(separators=separators, height=520),
        annotations=quadrant_labels(segment_labels),
        xaxis={"type": "log", "title": {"text": _log_axis_title(classic_label, currency)}},
        yaxis={"type": "log", "title": {"text": _log_axis_title(_("value to the customer"), currency)}},
        shapes=shapes,
        hovermode="closest",
        dragmode="zoom",
    )
    figure = fig.to_plotly_json()
    for trace, lists in zip(figure["data"], arrays, strict=True):
        trace.update(lists)
    return figure


# Where each segment sits in the 2x2 matrix: (x, y) in the plot's paper coordinates.
QUADRANTS = {"problem": (0, 1), "investment": (1, 1), "uncritical": (0, 0), "potential": (1, 0)}
# Darker than the markers, as the badges: text needs more contrast than a dot.
LABEL_COLOURS = {"uncritical": "#3d4b59", "problem": "#912018", "potential": "#8a4b00", "investment": "#05603a"}


def quadrant_labels(segment_labels: dict[str, str]) -> list[dict]:
    """The segment's name in each corner of the matrix, so the reader needs no legend."""
    labels = []
    for segment, (x, y) in QUADRANTS.items():
        if segment not in segment_labels:
            continue
        labels.append({
            "text": f"<b>{segment_labels[segment]}</b>", "xref": "paper", "yref": "paper", "x": x, "y": y,
            "xanchor": "left" if x == 0 else "right", "yanchor": "top" if y == 1 else "bottom",
            "showarrow": False, "font": {"size": 12, "color": LABEL_COLOURS[segment]},
            "bgcolor": "rgba(255,255,255,0.85)", "borderpad": 3,
        })
    return labels


def whale_curve(points: Sequence[tuple[int, Decimal]], *, customers: int, currency: str, separators: str) -> dict:
    """Cumulative profit after services over the share of customers, most profitable first."""
    fig = go.Figure()
    profit_label = _("cumulative profit after services")
    if customers and points:
        x = [100.0 * rank / customers for rank, _cumulative in points]
        y = [_float(cumulative) for _rank, cumulative in points]
        fig.add_trace(
            go.Scatter(
                mode="lines", name=profit_label,
                line={"color": "#1f6feb", "width": 2}, fill="tozeroy", fillcolor="rgba(31,111,235,0.08)",
                hovertemplate=_("%(share)s of customers: %(amount)s") % {
                    "share": "%{x:.1f} %", "amount": f"%{{y:,.0f}} {currency}"} + "<extra></extra>",
            )
        )
        peak = max(range(len(y)), key=y.__getitem__)
        fig.add_annotation(x=x[peak], y=y[peak], text=_("peak"), showarrow=True, arrowhead=2, ax=0, ay=-28)
        fig.add_hline(y=y[-1], line={"color": "#5b6b7c", "width": 1, "dash": "dot"},
                      annotation_text=_("total"), annotation_position="bottom right")
    fig.update_layout(
        **_layout(separators=separators, showlegend=False),
        xaxis={"title": {"text": _("share of customers, most profitable first (%)")}, "range": [0, 100]},
        yaxis={"title": {"text": f"{profit_label} ({currency})"}, "tickformat": ",.0f"},
    )
    figure = fig.to_plotly_json()
    if figure["data"]:  # the points as plain lists, past plotly's element-by-element checks
        figure["data"][0].update(x=[0.0, *x], y=[0.0, *y])
    return figure


def service_cost_by_month(rows: Sequence[dict], *, months: Sequence[dt.date], currency: str, separators: str) -> dict:
    """Stacked bars: standard cost of the free services per month, one colour per service type."""
    fig = go.Figure()
    cost_label = _("standard cost")
    index = {month: i for i, month in enumerate(months)}
    series: dict[str, dict] = {}
    for row in rows:
        entry = series.setdefault(row["code"], {"name": localized_name(row["name"], row.get("name_de", "")), "y": [0.0] * len(months)})
        if row["month"] in index:
            entry["y"][index[row["month"]]] += _float(row["cost"])
    x = [month.isoformat() for month in months]
    for position, entry in enumerate(series.values()):
        fig.add_trace(
            go.Bar(
                x=x, y=entry["y"], name=entry["name"], marker={"color": SERVICE_COLOURS[position % len(SERVICE_COLOURS)]},
                hovertemplate=f"{entry['name']}<br>%{{x|%b %Y}}: %{{y:,.0f}} {currency}<extra></extra>",
            )
        )
    fig.update_layout(
        **_layout(separators=separators, height=380),
        barmode="stack",
        xaxis={"type": "date", "tickformat": "%b\n%Y", "dtick": "M3"},
        yaxis={"title": {"text": f"{cost_label} ({currency})"}, "tickformat": ",.0f"},
    )
    return fig.to_plotly_json()


def earned_growth(periods: Sequence[dict], *, currency: str, separators: str,
                  labels: Sequence[str] | None = None) -> dict:
    """Revenue retained from existing customers and won by referral, with the growth rates.

    labels: one per period (e.g. the localised end date); the period end by default.
    """
    fig = go.Figure()
    retained, referred, revenue = _("retained revenue"), _("referred"), _("revenue")
    labels = list(labels) if labels is not None else [str(p.get("period_end") or "") for p in periods]
    fig.add_trace(go.Bar(x=labels, y=[_float(p.get("retained_revenue")) for p in periods],
                         name=retained, marker={"color": "#1f6feb"},
                         hovertemplate=f"%{{y:,.0f}} {currency}<extra>{retained}</extra>"))
    fig.add_trace(go.Bar(x=labels, y=[_float(p.get("referred_new_revenue")) for p in periods],
                         name=_("revenue from referred new customers"), marker={"color": "#12b76a"},
                         hovertemplate=f"%{{y:,.0f}} {currency}<extra>{referred}</extra>"))
    fig.add_trace(go.Scatter(x=labels, y=[_percent(p.get("nrr")) for p in periods], yaxis="y2", mode="lines+markers",
                             name=_("net revenue retention"), line={"color": "#7a5af8"},
                             hovertemplate="%{y:.1f} %<extra>NRR</extra>"))
    fig.add_trace(go.Scatter(x=labels, y=[_percent(p.get("earned_growth_rate")) for p in periods], yaxis="y2",
                             mode="lines+markers", name=_("earned growth rate"), line={"color": "#f79009"},
                             hovertemplate="%{y:.1f} %<extra>EGR</extra>"))
    fig.update_layout(
        **_layout(separators=separators),
        barmode="stack",
        xaxis={"type": "category"},
        yaxis={"title": {"text": f"{revenue} ({currency})"}, "tickformat": ",.0f"},
        yaxis2={"title": {"text": _("rate (%)")}, "overlaying": "y", "side": "right", "showgrid": False,
                "ticksuffix": " %"},
    )
    return fig.to_plotly_json()


def _percent(value) -> float | None:
    return None if value is None else 100.0 * float(value)


def model_health(backtest: dict, *, separators: str) -> dict:
    """Back-test on the holdout: expected vs actual repeat purchases (left), the model's mean
    absolute error per customer vs a naive guess (right; lower is better)."""
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.15, subplot_titles=(
        _("repeat purchases"), _("error per customer (MAE)")))
    bars = [
        (1, _("forecast"), backtest.get("expected_repeat_purchases"), "#1f6feb", ",.0f"),
        (1, _("actual"), backtest.get("actual_repeat_purchases"), "#8b98a5", ",.0f"),
        (2, _("model"), backtest.get("mae_per_customer"), "#1f6feb", ",.2f"),
        (2, _("naive baseline"), backtest.get("naive_mae_per_customer"), "#8b98a5", ",.2f"),
    ]
    for col, label, value, colour, number in bars:
        fig.add_trace(
            go.Bar(x=[label], y=[value], marker={"color": colour}, texttemplate=f"%{{y:{number}}}",
                   textposition="auto", hovertemplate=f"{label}: %{{y:{number}}}<extra></extra>", showlegend=False),
            row=1, col=col,
        )
    fig.update_layout(**_layout(separators=separators, height=300, showlegend=False))
    fig.update_layout(margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return fig.to_plotly_json()
