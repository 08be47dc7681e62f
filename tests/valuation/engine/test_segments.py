"""ABC classes and segments with global thresholds."""

import pandas as pd
import pytest

from valuation.engine import SEGMENTS, EngineSettings, Thresholds, classify, compute_thresholds


def scored_frame() -> pd.DataFrame:
    # Window margins 50, 30, 10, 6, 4, 0, -5: total positive 100.
    return pd.DataFrame(
        {
            "margin_window": [50.0, 30.0, 10.0, 6.0, 4.0, 0.0, -5.0],
            "clv": [500.0, 10.0, 300.0, 5.0, 0.0, 0.0, 0.0],
            "value_to_customer": [200.0, 300.0, 0.0, 0.0, 50.0, 0.0, 0.0],
            "active": [True, True, True, True, True, True, False],
        },
        index=pd.Index(list("abcdefg"), name="customer_id"),
    )


def test_abc_by_cumulative_margin():
    frame = scored_frame()
    thresholds = compute_thresholds(frame, EngineSettings())
    # Cumulative shares 50, 80, 90, 96, 100 %: A closes at the customer reaching 80 %.
    assert thresholds.abc_a_min_margin == 30.0
    assert thresholds.abc_b_min_margin == 6.0
    result = classify(frame, thresholds, EngineSettings())
    assert result["abc_class"].tolist() == ["A", "A", "B", "B", "C", "C", "C"]


def test_median_segments_over_active_customers():
    frame = scored_frame()
    thresholds = compute_thresholds(frame, EngineSettings())
    # Active clv: 500, 10, 300, 5, 0, 0 -> median 7.5; value to: 200, 300, 0, 0, 50, 0 -> 25.
    assert thresholds.classic_threshold == 7.5
    assert thresholds.value_to_threshold == 25.0
    result = classify(frame, thresholds, EngineSettings())
    assert result["segment"].tolist() == [
        "investment", "investment", "potential", "uncritical", "problem", "uncritical", "uncritical"
    ]
    assert result.loc["e", "strategy"] == SEGMENTS["problem"][1]


def test_zero_threshold_leaves_customers_without_services_low():
    frame = scored_frame().assign(value_to_customer=[0.0, 0.0, 0.0, 0.0, 10.0, 0.0, 0.0])
    settings = EngineSettings()
    thresholds = compute_thresholds(frame, settings)
    assert thresholds.value_to_threshold == 0.0
    result = classify(frame, thresholds, settings)
    assert result.loc["e", "segment"] == "problem"
    assert result.loc["a", "segment"] == "potential"


def test_margin_classic_value_and_other_policies():
    frame = scored_frame()
    settings = EngineSettings(classic_value="margin_window", segment_policy="quantile", segment_quantile=0.8)
    thresholds = compute_thresholds(frame, settings)
    assert thresholds.classic_threshold == pytest.approx(pd.Series([50, 30, 10, 6, 4, 0.0]).quantile(0.8))
    fixed = EngineSettings(segment_policy="fixed", fixed_classic_threshold=20, fixed_value_to_threshold=100)
    result = classify(frame, compute_thresholds(frame, fixed), fixed)
    assert result.loc["b", "segment"] == "problem"  # clv 10 <= 20, services 300 > 100


def test_chunked_classification_equals_whole():
    frame = scored_frame()
    settings = EngineSettings()
    thresholds = compute_thresholds(frame, settings)
    whole = classify(frame, thresholds, settings)
    parts = pd.concat(
        [classify(frame.iloc[:3], thresholds, settings), classify(frame.iloc[3:], thresholds, settings)]
    )
    pd.testing.assert_frame_equal(parts, whole)


def test_thresholds_round_trip():
    t = Thresholds(1.0, 2.0, 3.0, 4.0)
    assert Thresholds.from_dict(t.to_dict()) == t


def test_nobody_with_positive_margin_is_all_c():
    frame = scored_frame().assign(margin_window=0.0)
    result = classify(frame, compute_thresholds(frame, EngineSettings()), EngineSettings())
    assert set(result["abc_class"]) == {"C"}
