from decimal import Decimal

from cockpit import dashboard_charts

LABELS = {"uncritical": "unkritisch", "problem": "Problemgruppe", "potential": "Potenzial prüfen",
          "investment": "Investitionskunden"}


def test_each_quadrant_of_the_scatter_is_labelled_with_its_segment():
    figure = dashboard_charts.segment_scatter(
        [(1, "A", "C-1", "problem", Decimal("10"), Decimal("900"))], segment_labels=LABELS,
        thresholds={"classic_threshold": 1000, "value_to_threshold": 200}, classic_label="CLV", currency="EUR",
        separators=",.",
    )
    corners = {(a["x"], a["y"]): a["text"] for a in figure["layout"]["annotations"] if a["xref"] == "paper"}
    assert corners[(0, 1)] == "<b>Problemgruppe</b>"  # low classic value, high value to the customer
    assert corners[(1, 1)] == "<b>Investitionskunden</b>"
    assert corners[(0, 0)] == "<b>unkritisch</b>"
    assert corners[(1, 0)] == "<b>Potenzial prüfen</b>"
