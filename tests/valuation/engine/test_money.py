"""The engine's rounding to cents: vectorised, it gives what to_money gives value by value."""

import numpy as np

from valuation.engine.money import to_cents, to_money


def test_to_cents_equals_to_money_value_by_value():
    rng = np.random.default_rng(11)
    amounts = np.concatenate([
        rng.normal(0, 5_000, 100_000),
        np.round(rng.uniform(-1e6, 1e6, 20_000), 2) + 0.005,  # half-cent ties in decimal, not in binary
        rng.integers(-10**6, 10**6, 20_000) / 1000.0,  # three decimals
        np.array([0.125, 1.015, 2.675, -0.005, 0.005, 1e13 + 0.005, -2.5e-3, 0.0, -0.0, np.nan, 9.2e15]),
    ])
    expected = [0 if np.isnan(v) else int(to_money(v).scaleb(2)) for v in amounts]
    cents = to_cents(amounts)
    assert cents.dtype == np.int64
    assert cents.tolist() == expected
    assert to_cents([0.125, 1.015, np.nan]).tolist() == [12, 102, 0]  # as written, half to even
