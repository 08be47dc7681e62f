"""Future purchases and future margin of a customer who is alive today.

Two pieces feed the CLV (see clv.py):

- the expected, monthly discounted number of purchases in the horizon, from the closed form
  of Fader, Hardie & Lee (2005, eq. 10) evaluated at every month end;
- the predictive distribution of the discounted future margin, by Monte Carlo from the
  posterior of both models.

Given x repeat purchases in T weeks and alive at T, the BG/NBD posterior is
lambda ~ Gamma(r + x, alpha + T) and p ~ Beta(a, b + x) (FHL 2005, appendix); the customer
then makes K ~ Geometric(p) more purchases before dropping out, at the arrival times of a
Poisson process with rate lambda. With the Gamma-Gamma model (Fader & Hardie 2013) each
purchase is worth z_j = g_j / nu, g_j ~ Gamma(p_gg, 1), and nu | data ~ Gamma(p_gg x + q,
v + x zbar). Writing nu = h / (v + x zbar), h ~ Gamma(p_gg x + q, 1), the discounted future
margin is

    V = (v + x zbar) * W,   W = sum_j g_j d(t_j) / h,

where W's distribution depends on x and T only. So W is simulated once per distinct x (with
draws seeded by the random seed and x alone, never by the other customers in the call) and
on a fixed grid of T; each customer's quantiles are read off it. This keeps scoring
deterministic and identical whether customers are scored all at once or in chunks.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .bgnbd import BgNbdParams, bgnbd_expected_purchases_if_alive
from .gamma_gamma import GammaGammaParams
from .reductions import row_dot
from .settings import WEEKS_PER_MONTH, EngineSettings

# The T grid is uniform in log(alpha + T) with this step (5 % steps of alpha + T, the
# posterior's rate scale); quantiles are interpolated linearly in between. The interpolation
# error is far below the Monte Carlo error.
GRID_STEP = 0.05
# Event columns are drawn in blocks of this many purchases per draw.
_BLOCK = 16
# A draw never makes more purchases than this in the horizon (about 20 a week over three
# years): a guard against degenerate posteriors, not a modelling choice.
_MAX_PURCHASES = 3000
# Rows of (event x grid point) handled at once, to bound memory.
_CELLS_PER_BATCH = 4_000_000
# Distinct (x, T) rows per hyp2f1 batch.
_ROWS_PER_BATCH = 100_000


def month_discount_factors(settings: EngineSettings) -> np.ndarray:
    """d[m] = (1 + annual rate) ** (-m / 12) for m = 0..H: margin earned in month m is
    discounted to today as if received at that month's end."""
    return settings.monthly_discount_factor ** np.arange(settings.horizon_months + 1)


def purchases_if_alive(
    params: BgNbdParams, x: np.ndarray, T: np.ndarray, settings: EngineSettings
) -> tuple[np.ndarray, np.ndarray]:
    """Expected purchases in the horizon for a customer alive at T, plain and discounted.

    With G(t) = E[X(T, T+t) | alive, x, T] (eq. 10 without P(alive)) and month ends
    t_m = m * WEEKS_PER_MONTH: plain = G(t_H), discounted = sum_m d[m] (G(t_m) - G(t_{m-1})).
    The expectation depends on x and T only (not t_x), so it is computed once per distinct
    (x, T) pair.
    """
    x = np.asarray(x, dtype=float)
    T = np.asarray(T, dtype=float)
    if len(x) == 0:
        return np.zeros(0), np.zeros(0)
    # Hash-based grouping: np.unique(axis=0) sorts rows and is several times slower.
    inverse = pd.DataFrame({"x": x, "T": T}).groupby(["x", "T"], sort=False).ngroup().to_numpy()
    first = np.unique(inverse, return_index=True)[1]
    unique = np.stack([x[first], T[first]], axis=1)
    months = np.arange(1, settings.horizon_months + 1)
    t = months * WEEKS_PER_MONTH
    d = month_discount_factors(settings)
    plain = np.empty(len(unique))
    discounted = np.empty(len(unique))
    for start in range(0, len(unique), _ROWS_PER_BATCH):
        block = unique[start : start + _ROWS_PER_BATCH]
        G = bgnbd_expected_purchases_if_alive(params, t[None, :], block[:, :1], block[:, 1:])
        increments = np.diff(G, axis=1, prepend=0.0)
        plain[start : start + len(block)] = G[:, -1]
        discounted[start : start + len(block)] = row_dot(increments, d[1:])
    return plain[inverse], discounted[inverse]


def _grid_position(alpha: float, T: np.ndarray) -> np.ndarray:
    return np.log1p(T / alpha) / GRID_STEP


def _simulate_group(
    x: int,
    grid_points: np.ndarray,
    bgnbd: BgNbdParams,
    gamma_gamma: GammaGammaParams | None,
    settings: EngineSettings,
) -> np.ndarray:
    """Sorted draws of W for x repeat purchases at each grid point; shape (len(grid), S).

    Every random number comes from generators seeded with (random_seed, x); blocks are drawn
    in a fixed order, so a longer run only appends draws and never changes earlier ones.
    """
    S = settings.simulation_draws
    horizon = settings.horizon_weeks
    H = settings.horizon_months
    d = month_discount_factors(settings)
    purchase_rng = np.random.default_rng([settings.random_seed, 0, x])
    spend_rng = np.random.default_rng([settings.random_seed, 1, x])

    gamma = purchase_rng.standard_gamma(bgnbd.r + x, S)  # lambda = gamma / (alpha + T)
    drop = purchase_rng.beta(bgnbd.a, bgnbd.b + x, S)
    K = purchase_rng.geometric(np.clip(drop, 1e-12, 1.0))  # purchases until drop-out
    K = np.minimum(K, _MAX_PURCHASES)
    if gamma_gamma is not None:
        h = spend_rng.standard_gamma(gamma_gamma.p * x + gamma_gamma.q, S)
    else:
        h = np.ones(S)

    scale_T = bgnbd.alpha * np.exp(grid_points * GRID_STEP)  # alpha + T at each grid point
    # Unit-rate arrival times u map to weeks as u * (alpha + T) / gamma; the smallest T
    # needs the longest stretch of unit time.
    u_max = horizon * gamma / scale_T.min()
    sims, times, values = [], [], []
    running = np.zeros(S)
    column = 0
    open_ = np.flatnonzero((K > 0) & (u_max > 0))
    while len(open_) and column < _MAX_PURCHASES:
        # Draw full blocks for all S draws so the stream does not depend on what is open.
        arrivals = running[:, None] + np.cumsum(purchase_rng.standard_exponential((S, _BLOCK)), axis=1)
        if gamma_gamma is not None:
            spend = spend_rng.standard_gamma(gamma_gamma.p, (S, _BLOCK))
        else:
            spend = np.ones((S, _BLOCK))
        running = arrivals[:, -1].copy()
        cols = column + np.arange(_BLOCK)
        valid = (cols[None, :] < K[:, None]) & (arrivals <= u_max[:, None])
        sim_idx, col_idx = np.nonzero(valid)
        sims.append(sim_idx)
        times.append(arrivals[sim_idx, col_idx] / gamma[sim_idx])
        values.append(spend[sim_idx, col_idx])
        column += _BLOCK
        open_ = np.flatnonzero((column < K) & (running <= u_max))

    sims_a = np.concatenate(sims) if sims else np.zeros(0, np.int64)
    times_a = np.concatenate(times) if times else np.zeros(0)
    values_a = np.concatenate(values) if values else np.zeros(0)

    out = np.zeros((len(scale_T), S))
    per_batch = max(1, _CELLS_PER_BATCH // max(len(sims_a), 1))
    for start in range(0, len(scale_T), per_batch):
        scales = scale_T[start : start + per_batch]
        weeks = times_a[:, None] * scales[None, :]
        month = np.ceil(weeks / WEEKS_PER_MONTH).astype(np.int64)
        inside = (month <= H) & (weeks <= horizon)
        contribution = values_a[:, None] * d[np.minimum(month, H)] * inside
        cell = np.arange(len(scales))[None, :] * S + sims_a[:, None]
        W = np.bincount(cell.ravel(), weights=contribution.ravel(), minlength=len(scales) * S)
        out[start : start + len(scales)] = W.reshape(len(scales), S) / h[None, :]
    out.sort(axis=1)
    return out


def _read_quantile(table: np.ndarray, rows: np.ndarray, level: np.ndarray) -> np.ndarray:
    """Empirical quantile (linear interpolation between order statistics) per row."""
    S = table.shape[1]
    pos = np.clip(level, 0.0, 1.0) * (S - 1)
    i0 = np.minimum(np.floor(pos).astype(np.int64), S - 2)
    frac = pos - i0
    return table[rows, i0] * (1.0 - frac) + table[rows, i0 + 1] * frac


def margin_interval(
    bgnbd: BgNbdParams,
    gamma_gamma: GammaGammaParams | None,
    x: np.ndarray,
    T: np.ndarray,
    p_alive: np.ndarray,
    scale: np.ndarray,
    settings: EngineSettings,
) -> tuple[np.ndarray, np.ndarray]:
    """Quantiles interval_low and interval_high of the discounted future margin V.

    V = 0 if the customer is no longer alive (probability 1 - p_alive), else scale * W. So
    Q_V(u) = 0 for u <= 1 - p_alive and scale * Q_W((u - 1 + p_alive) / p_alive) above.
    ``scale`` is v + x zbar for the Gamma-Gamma posterior (v for customers without repeat
    data), or a fixed margin per purchase when no spend model is available; a customer with
    scale <= 0 or p_alive == 0 gets [0, 0].
    """
    n = len(x)
    low = np.zeros(n)
    high = np.zeros(n)
    use = (scale > 0) & (p_alive > 0)
    if not use.any():
        return low, high
    x_int = np.asarray(x, dtype=np.int64)
    pos = _grid_position(bgnbd.alpha, np.asarray(T, dtype=float))
    k_lo = np.floor(pos).astype(np.int64)
    frac = pos - k_lo
    levels = (settings.interval_low, settings.interval_high)
    for value in np.unique(x_int[use]):
        members = np.flatnonzero(use & (x_int == value))
        grid = np.unique(np.r_[k_lo[members], k_lo[members] + 1])
        table = _simulate_group(int(value), grid, bgnbd, gamma_gamma, settings)
        row_lo = np.searchsorted(grid, k_lo[members])
        row_hi = row_lo + 1
        pa = p_alive[members]
        w = frac[members]
        for level, out in zip(levels, (low, high), strict=False):
            u = (level - (1.0 - pa)) / pa
            q = (1.0 - w) * _read_quantile(table, row_lo, u) + w * _read_quantile(table, row_hi, u)
            out[members] = np.where(u > 0, scale[members] * q, 0.0)
    return low, high


def simulation_mean(
    bgnbd: BgNbdParams,
    gamma_gamma: GammaGammaParams | None,
    x: int,
    T: float,
    settings: EngineSettings,
) -> float:
    """Mean of the simulated W at the grid point nearest below T (a check on the draws)."""
    k = int(math.floor(_grid_position(bgnbd.alpha, np.array([T]))[0]))
    return float(_simulate_group(x, np.array([k]), bgnbd, gamma_gamma, settings).mean())
