"""Customers simulated from the BG/NBD and Gamma-Gamma models.

Used by the tests (parameter recovery, interval coverage) and the benchmark; the process is
the one the models assume, so fitted parameters and predictive intervals can be checked
against known truth.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from .bgnbd import BgNbdParams
from .gamma_gamma import GammaGammaParams
from .settings import WEEKS_PER_MONTH


def _events(
    n: int,
    bgnbd: BgNbdParams,
    gamma_gamma: GammaGammaParams | None,
    end_weeks: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Repeat purchases in (0, end_weeks] after a first purchase at 0.

    Returns (customer index, time in weeks, value) of every repeat purchase and the value of
    each customer's first purchase. Drop-out happens only right after a repeat purchase.
    """
    lam = rng.gamma(bgnbd.r, 1.0 / bgnbd.alpha, n)
    drop = rng.beta(bgnbd.a, bgnbd.b, n)
    if gamma_gamma is not None:
        nu = rng.gamma(gamma_gamma.q, 1.0 / gamma_gamma.v, n)
        first_value = rng.gamma(gamma_gamma.p, 1.0 / nu)
    else:
        nu = None
        first_value = np.ones(n)
    time = np.zeros(n)
    active = np.flatnonzero(lam > 0)
    who, when, value = [], [], []
    while len(active):
        time[active] += rng.exponential(1.0, len(active)) / lam[active]
        active = active[time[active] <= end_weeks[active]]
        who.append(active)
        when.append(time[active])
        if nu is not None:
            value.append(rng.gamma(gamma_gamma.p, 1.0 / nu[active]))
        else:
            value.append(np.ones(len(active)))
        active = active[rng.random(len(active)) >= drop[active]]
    return np.concatenate(who), np.concatenate(when), np.concatenate(value), first_value


def simulate_customers(
    n: int,
    bgnbd: BgNbdParams,
    T: float | np.ndarray,
    *,
    holdout_weeks: float = 0.0,
    gamma_gamma: GammaGammaParams | None = None,
    monthly_discount_factor: float = 1.0,
    seed: int = 0,
) -> pd.DataFrame:
    """Per-customer calibration summary (frequency, recency, T, mean_repeat_margin) and the
    holdout outcome (holdout_purchases, holdout_margin) of n simulated customers.

    holdout_margin_discounted discounts a holdout purchase made in month m after T (months of
    WEEKS_PER_MONTH weeks, m = 1, 2, ...) by monthly_discount_factor ** m, the convention of
    the CLV calculation.
    """
    rng = np.random.default_rng(seed)
    T = np.broadcast_to(np.asarray(T, dtype=float), (n,)).copy()
    who, when, value, first_value = _events(n, bgnbd, gamma_gamma, T + holdout_weeks, rng)
    calibration = when <= T[who]
    cw, ct, cv = who[calibration], when[calibration], value[calibration]
    frequency = np.bincount(cw, minlength=n)
    recency = np.zeros(n)
    np.maximum.at(recency, cw, ct)
    value_sum = np.bincount(cw, weights=cv, minlength=n)
    hw, ht, hv = who[~calibration], when[~calibration], value[~calibration]
    month = np.ceil((ht - T[hw]) / WEEKS_PER_MONTH)
    return pd.DataFrame(
        {
            "frequency": frequency,
            "recency": recency,
            "T": T,
            "mean_repeat_margin": np.where(frequency > 0, value_sum / np.maximum(frequency, 1), 0.0),
            "first_margin": first_value,
            "holdout_purchases": np.bincount(hw, minlength=n),
            "holdout_margin": np.bincount(hw, weights=hv, minlength=n),
            "holdout_margin_discounted": np.bincount(
                hw, weights=hv * monthly_discount_factor**month, minlength=n
            ),
        }
    )


def simulate_transactions(
    n: int,
    bgnbd: BgNbdParams,
    gamma_gamma: GammaGammaParams,
    start: dt.date,
    end: dt.date,
    *,
    margin_rate: float = 0.3,
    seed: int = 0,
) -> pd.DataFrame:
    """Transaction rows (customer_id 1..n, date, revenue, cost) between start and end.

    First purchases fall uniformly on the days of [start, end]; repeat purchases follow the
    models and are rounded down to their day. Revenue = margin / margin_rate.
    """
    rng = np.random.default_rng(seed)
    days = (end - start).days
    first_day = rng.integers(0, days + 1, n)
    horizon = (days - first_day) / 7.0
    who, when, value, first_value = _events(n, bgnbd, gamma_gamma, horizon, rng)
    customer = np.r_[np.arange(n), who]
    day = np.r_[first_day, first_day[who] + np.floor(when * 7.0).astype(np.int64)]
    margin = np.r_[first_value, value]
    revenue = margin / margin_rate
    order = np.lexsort((day, customer))
    return pd.DataFrame(
        {
            "customer_id": customer[order] + 1,
            "date": pd.Timestamp(start) + pd.to_timedelta(day[order], unit="D"),
            "revenue": revenue[order],
            "cost": (revenue - margin)[order],
        }
    )
