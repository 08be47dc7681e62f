"""Plotly figures of the segment dashboard, as pure functions: rows in, figure JSON out.

Each builder returns a figure as plain lists and dicts, which the page embeds with
`json_script` and static/js/dashboard.js draws with the locally served plotly.js.
No database access here; labels are translated with gettext.

The dicts are written out exactly as plotly's graph_objects wrote them (`to_plotly_json()`),
including what plotly computes itself: the template, the subplot domains and titles of
`make_subplots`, the shape and annotation of `add_hline`. Building them through
graph_objects validated every property on every view (over 100 ms of the dashboard's first
view at a million customers). The tests hand each figure to plotly, which refuses an unknown
property, and check that it comes back unchanged.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

from django.utils.translation import gettext as _

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
# A small template instead of plotly's default one keeps every figure's JSON a few KB smaller
# (as plotly writes a `go.layout.Template(layout=...)` into a figure).
TEMPLATE = {
    "layout": {
        "font": {"family": "system-ui, 'DejaVu Sans', sans-serif", "size": 12, "color": "#1d2733"},
        "paper_bgcolor": "#fff",
        "plot_bgcolor": "#fff",
        "colorway": SERVICE_COLOURS,
        "xaxis": {"gridcolor": "#e7ecf1", "zerolinecolor": "#c4ccd5", "automargin": True},
        "yaxis": {"gridcolor": "#e7ecf1", "zerolinecolor": "#c4ccd5", "automargin": True},
        "hoverlabel": {"align": "left"},
    }
}
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
    by_segment: dict[str, list[tuple]] = {key: [] for key in segment_labels}
    for point in points:
        by_segment.setdefault(point[3], []).append(point)
    money = f"%{{customdata[3]:,.0f}} {currency}"
    classic_hover = _("%(classic)s: %(amount)s") % {"classic": classic_label, "amount": money}
    value_to_hover = _("value to the customer: %(amount)s") % {"amount": f"%{{customdata[4]:,.0f}} {currency}"}
    traces = []
    for segment, rows in by_segment.items():
        if not rows:
            continue
        classic = [_float(row[4]) for row in rows]
        value_to = [_float(row[5]) for row in rows]
        label = segment_labels.get(segment, segment)
        traces.append({
            "type": "scattergl",
            "mode": "markers",
            "name": f"{label} ({len(rows)})",
            "marker": {"color": SEGMENT_COLOURS.get(segment, "#475467"), "size": 7, "opacity": 0.75,
                       "line": {"width": 0}},
            "hovertemplate": (
                f"<b>%{{customdata[1]}}</b> · %{{customdata[2]}}<br>{classic_hover}<br>{value_to_hover}"
                f"<extra>{label}</extra>"
            ),
            "x": [max(v, floor) for v in classic],
            "y": [max(v, floor) for v in value_to],
            "customdata": [[row[0], row[1], row[2], c, v] for row, c, v in zip(rows, classic, value_to, strict=False)],
        })
    shapes = []
    classic_threshold = thresholds.get("classic_threshold")
    value_to_threshold = thresholds.get("value_to_threshold")
    line = {"color": "#1d2733", "width": 1, "dash": "dash"}
    if classic_threshold is not None:
        shapes.append({"type": "line", "xref": "x", "yref": "paper", "x0": max(float(classic_threshold), floor),
                       "x1": max(float(classic_threshold), floor), "y0": 0, "y1": 1, "line": line})
    if value_to_threshold is not None:
        shapes.append({"type": "line", "xref": "paper", "yref": "y", "y0": max(float(value_to_threshold), floor),
                       "y1": max(float(value_to_threshold), floor), "x0": 0, "x1": 1, "line": dict(line)})
    layout = _layout(
        separators=separators, height=520,
        xaxis={"type": "log", "title": {"text": _log_axis_title(classic_label, currency)}},
        yaxis={"type": "log", "title": {"text": _log_axis_title(_("value to the customer"), currency)}},
        hovermode="closest",
        dragmode="zoom",
    )
    # plotly leaves an empty list of annotations or shapes out of the figure.
    annotations = quadrant_labels(segment_labels)
    if annotations:
        layout["annotations"] = annotations
    if shapes:
        layout["shapes"] = shapes
    return {"data": traces, "layout": layout}


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


def _hline(y: float, *, line: dict, text: str) -> tuple[dict, dict]:
    """The shape and the annotation plotly's `fig.add_hline(y, line=..., annotation_text=text,
    annotation_position="bottom right")` writes into a single-plot figure."""
    shape = {"type": "line", "xref": "x domain", "yref": "y", "x0": 0, "x1": 1, "y0": y, "y1": y, "line": line}
    annotation = {"text": text, "showarrow": False, "xref": "x domain", "yref": "y", "x": 1, "y": y,
                  "xanchor": "right", "yanchor": "top"}
    return shape, annotation


def whale_curve(points: Sequence[tuple[int, Decimal]], *, customers: int, currency: str, separators: str) -> dict:
    """Cumulative profit after services over the share of customers, most profitable first."""
    profit_label = _("cumulative profit after services")
    traces = []
    extra = {}
    if customers and points:
        x = [100.0 * rank / customers for rank, _cumulative in points]
        y = [_float(cumulative) for _rank, cumulative in points]
        traces.append({
            "type": "scatter", "mode": "lines", "name": profit_label,
            "line": {"color": "#1f6feb", "width": 2}, "fill": "tozeroy", "fillcolor": "rgba(31,111,235,0.08)",
            "hovertemplate": _("%(share)s of customers: %(amount)s") % {
                "share": "%{x:.1f} %", "amount": f"%{{y:,.0f}} {currency}"} + "<extra></extra>",
            "x": [0.0, *x], "y": [0.0, *y],
        })
        peak = max(range(len(y)), key=y.__getitem__)
        total_line, total_label = _hline(y[-1], line={"color": "#5b6b7c", "width": 1, "dash": "dot"}, text=_("total"))
        extra = {
            "annotations": [
                {"x": x[peak], "y": y[peak], "text": _("peak"), "showarrow": True, "arrowhead": 2, "ax": 0, "ay": -28},
                total_label,
            ],
            "shapes": [total_line],
        }
    layout = _layout(
        separators=separators, showlegend=False, **extra,
        xaxis={"title": {"text": _("share of customers, most profitable first (%)")}, "range": [0, 100]},
        yaxis={"title": {"text": f"{profit_label} ({currency})"}, "tickformat": ",.0f"},
    )
    return {"data": traces, "layout": layout}


def service_cost_by_month(rows: Sequence[dict], *, months: Sequence[dt.date], currency: str, separators: str) -> dict:
    """Stacked bars: standard cost of the free services per month, one colour per service type."""
    cost_label = _("standard cost")
    index = {month: i for i, month in enumerate(months)}
    series: dict[str, dict] = {}
    for row in rows:
        entry = series.setdefault(row["code"], {"name": localized_name(row["name"], row.get("name_de", "")), "y": [0.0] * len(months)})
        if row["month"] in index:
            entry["y"][index[row["month"]]] += _float(row["cost"])
    x = [month.isoformat() for month in months]
    traces = [
        {
            "type": "bar", "x": list(x), "y": entry["y"], "name": entry["name"],
            "marker": {"color": SERVICE_COLOURS[position % len(SERVICE_COLOURS)]},
            "hovertemplate": f"{entry['name']}<br>%{{x|%b %Y}}: %{{y:,.0f}} {currency}<extra></extra>",
        }
        for position, entry in enumerate(series.values())
    ]
    layout = _layout(
        separators=separators, height=380,
        barmode="stack",
        xaxis={"type": "date", "tickformat": "%b\n%Y", "dtick": "M3"},
        yaxis={"title": {"text": f"{cost_label} ({currency})"}, "tickformat": ",.0f"},
    )
    return {"data": traces, "layout": layout}


def earned_growth(periods: Sequence[dict], *, currency: str, separators: str,
                  labels: Sequence[str] | None = None) -> dict:
    """Revenue retained from existing customers and won by referral, with the growth rates.

    labels: one per period (e.g. the localised end date); the period end by default.
    """
    retained, referred, revenue = _("retained revenue"), _("referred"), _("revenue")
    labels = list(labels) if labels is not None else [str(p.get("period_end") or "") for p in periods]
    traces = [
        {"type": "bar", "x": list(labels), "y": [_float(p.get("retained_revenue")) for p in periods],
         "name": retained, "marker": {"color": "#1f6feb"},
         "hovertemplate": f"%{{y:,.0f}} {currency}<extra>{retained}</extra>"},
        {"type": "bar", "x": list(labels), "y": [_float(p.get("referred_new_revenue")) for p in periods],
         "name": _("revenue from referred new customers"), "marker": {"color": "#12b76a"},
         "hovertemplate": f"%{{y:,.0f}} {currency}<extra>{referred}</extra>"},
        {"type": "scatter", "x": list(labels), "y": [_percent(p.get("nrr")) for p in periods], "yaxis": "y2",
         "mode": "lines+markers", "name": _("net revenue retention"), "line": {"color": "#7a5af8"},
         "hovertemplate": "%{y:.1f} %<extra>NRR</extra>"},
        {"type": "scatter", "x": list(labels), "y": [_percent(p.get("earned_growth_rate")) for p in periods],
         "yaxis": "y2", "mode": "lines+markers", "name": _("earned growth rate"), "line": {"color": "#f79009"},
         "hovertemplate": "%{y:.1f} %<extra>EGR</extra>"},
    ]
    layout = _layout(
        separators=separators,
        barmode="stack",
        xaxis={"type": "category"},
        yaxis={"title": {"text": f"{revenue} ({currency})"}, "tickformat": ",.0f"},
        yaxis2={"title": {"text": _("rate (%)")}, "overlaying": "y", "side": "right", "showgrid": False,
                "ticksuffix": " %"},
    )
    return {"data": traces, "layout": layout}


def _percent(value) -> float | None:
    return None if value is None else 100.0 * float(value)


# The two side-by-side plots of `make_subplots(rows=1, cols=2, horizontal_spacing=0.15)`, as
# plotly lays them out: each (1 - 0.15) / 2 = 0.425 of the width, the titles centred above them.
_HALF_WIDTH = (1.0 - 0.15) / 2
_SUBPLOT_DOMAINS = ([0.0, _HALF_WIDTH], [1.0 - _HALF_WIDTH, 1.0])


def _subplot_title(text: str, domain: list[float]) -> dict:
    return {"font": {"size": 16}, "showarrow": False, "text": text, "x": (domain[0] + domain[1]) / 2,
            "xanchor": "center", "xref": "paper", "y": 1.0, "yanchor": "bottom", "yref": "paper"}


def model_health(backtest: dict, *, separators: str) -> dict:
    """Back-test on the holdout: expected vs actual repeat purchases (left), the model's mean
    absolute error per customer vs a naive guess (right; lower is better)."""
    bars = [
        (1, _("forecast"), backtest.get("expected_repeat_purchases"), "#1f6feb", ",.0f"),
        (1, _("actual"), backtest.get("actual_repeat_purchases"), "#8b98a5", ",.0f"),
        (2, _("model"), backtest.get("mae_per_customer"), "#1f6feb", ",.2f"),
        (2, _("naive baseline"), backtest.get("naive_mae_per_customer"), "#8b98a5", ",.2f"),
    ]
    traces = [
        {"type": "bar", "x": [label], "y": [value], "marker": {"color": colour}, "texttemplate": f"%{{y:{number}}}",
         "textposition": "auto", "hovertemplate": f"{label}: %{{y:{number}}}<extra></extra>", "showlegend": False,
         "xaxis": "x" if col == 1 else f"x{col}", "yaxis": "y" if col == 1 else f"y{col}"}
        for col, label, value, colour, number in bars
    ]
    left, right = _SUBPLOT_DOMAINS
    layout = _layout(
        separators=separators, height=300, showlegend=False,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        xaxis={"anchor": "y", "domain": list(left)},
        yaxis={"anchor": "x", "domain": [0.0, 1.0]},
        xaxis2={"anchor": "y2", "domain": list(right)},
        yaxis2={"anchor": "x2", "domain": [0.0, 1.0]},
        annotations=[_subplot_title(_("repeat purchases"), left), _subplot_title(_("error per customer (MAE)"), right)],
    )
    return {"data": traces, "layout": layout}
