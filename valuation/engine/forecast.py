"""Forecasts of any of the three purchase models with the Gamma-Gamma spend model: ranges that
include parameter uncertainty, value to infinity and remaining lifetime.

Ranges (10th-90th percentiles) come from Monte Carlo: every draw s uses its own parameters theta_s ~ Normal(theta_hat, Sigma) on the log scale,
Sigma the inverse observed information of the maximum-likelihood fit (the usual
large-sample approximation of the sampling distribution; see e.g. Pawitan 2001, "In All
Likelihood", ch. 9). So each percentile mixes the customer's own uncertainty (posterior of
rate, drop-out and spend) with the uncertainty of the population parameters.

Given alive at T with x repeat purchases: lambda = g / (alpha_s + T), g ~ Gamma(r_s + x, 1);
BG/NBD drop-out p ~ Beta(a_s, b_s + x) (MBG/NBD: b_s + x + 1) and K ~ Geometric(p) more
purchases; Pareto/NBD death after an Exp(mu) time, mu = g' / (beta_s + T), g' ~ Gamma(s_s, 1).
Spend: the customer's mean margin per purchase is p_s / nu, nu = h / (v_s + x zbar),
h ~ Gamma(p_s x + q_s, 1) (Gamma-Gamma posterior); each purchase scatters around it as a
Gamma with shape k, k measured from the spread of each customer's own purchases (the
Gamma-Gamma p, fitted to the spread of customers' averages, understated it by half on CDNOW),
or k = p_s when not measurable. Without a spend model (the gate's own-spend fallback) the
customer's own mean margin over x + 1 purchase days is uncertain too: its posterior under
Gamma(k) purchases (see _simulate_group) and each purchase's Gamma(k) spread enter the
same way; only when k cannot be measured is every purchase worth exactly the mean. The
table W of a frequency x is simulated once on a grid of T (uniform in log(alpha_hat + T))
and scaled per customer by v_hat + x zbar (the own mean without a spend model); the draw's own
v_s enters as the factor v_s / v_hat, which overstates the parameter part slightly for
customers with much data (there x zbar dominates v). P(alive) is taken at the estimate.
Seeds depend on (random_seed, x) only, so a customer's range does not depend on who else is
scored in the same call.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd

from .gamma_gamma import FINITE_BOUNDS, GammaGammaParams
from .likelihood import LOG_BOUND
from .purchase_models import (
    PurchaseParams,
    expected_purchases_if_alive,
    log_parameters,
    model_name,
    survival_if_alive,
)
from .reductions import row_dot
from .settings import WEEKS_PER_MONTH, EngineSettings
from .threads import map_on_threads

GRID_STEP = 0.05
_BLOCK = 16
_MAX_PURCHASES = 3000
_CELLS_PER_BATCH = 4_000_000
_ROWS_PER_BATCH = 20_000
# Threads simulating the ranges' groups (one per repeat-purchase count) at once: numpy leaves
# the interpreter lock in their array work, so at 1M customers two threads scored in 7.1 s
# where one took 11.0 s (0.8 s more CPU), with identical results. Each thread holds up to
# _CELLS_PER_BATCH cells of a few arrays (~200 MB).
RANGE_THREADS = 2
# Value to infinity: monthly steps over the CLV horizon, then yearly steps to this many
# years; at a 10 % discount rate what lies beyond is below 0.01 % of a year's margin.
RLV_YEARS = 100
# Remaining lifetimes are searched up to this many weeks (100 years) and reported as at
# most this.
MAX_LIFETIME_WEEKS = 5200.0


def parameter_draws(
    purchase: PurchaseParams, gamma_gamma: GammaGammaParams | None, draws: int, seed: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """Natural-scale parameter draws, (draws, 4) for the purchase model and (draws, 3)
    (p, q, v) for the spend model, from Normal(theta_hat, Sigma) on the log scale
    ((log p, log(q-1), log v) for Gamma-Gamma so that q stays above 1). Without a covariance
    the estimate is repeated (no parameter uncertainty can be claimed; the fit-quality gate
    reports that case)."""
    rng = np.random.default_rng([seed, 2])
    theta = log_parameters(purchase)
    cov = np.asarray(purchase.covariance) if purchase.covariance is not None else None
    if cov is not None:
        # Draws stay inside the bounds the fit itself searched (every purchase model: +-LOG_BOUND
        # on each log-parameter): a nearly flat likelihood (a huge variance) would otherwise
        # overflow into infinite parameters.
        P = np.exp(np.clip(rng.multivariate_normal(theta, cov, draws, method="cholesky"), -LOG_BOUND, LOG_BOUND))
    else:
        P = np.tile(np.exp(theta), (draws, 1))
    if gamma_gamma is None:
        return P, None
    phi = np.array([math.log(gamma_gamma.p), math.log(max(gamma_gamma.q - 1.0, 1e-12)), math.log(gamma_gamma.v)])
    if gamma_gamma.covariance is not None:
        low, high = np.array(FINITE_BOUNDS).T  # the spend fit's own search range per parameter
        d = np.clip(rng.multivariate_normal(phi, np.asarray(gamma_gamma.covariance), draws, method="cholesky"),
                    low, high)
    else:
        d = np.tile(phi, (draws, 1))
    G = np.column_stack([np.exp(d[:, 0]), 1.0 + np.exp(d[:, 1]), np.exp(d[:, 2])])
    return P, G


def _grid_position(alpha: float, T: np.ndarray) -> np.ndarray:
    return np.log1p(np.asarray(T, dtype=float) / alpha) / GRID_STEP


def _simulate_group(
    x: int,
    grid: np.ndarray,
    purchase: PurchaseParams,
    P: np.ndarray,
    G: np.ndarray | None,
    v_hat: float,
    horizon_weeks: float,
    month_weights: np.ndarray,
    seed: int,
    spend_shape: float | None = None,
) -> np.ndarray:
    """Sorted draws of W for x repeat purchases at each grid point; shape (len(grid), S)."""
    S = len(P)
    kind = model_name(purchase)
    last_month = len(month_weights) - 1
    rng = np.random.default_rng([seed, 0, x])
    spend_rng = np.random.default_rng([seed, 1, x])
    T_grid = purchase.alpha * np.expm1(grid * GRID_STEP)
    rate_scale = P[:, 1][:, None] + T_grid[None, :]  # alpha_s + T_k, (S, grid)

    g = rng.standard_gamma(P[:, 0] + x)
    if kind == "pareto_nbd":
        K = np.full(S, _MAX_PURCHASES)
        # Death at E (beta_s + T) / g' weeks after T: kept as per-draw (slope, intercept) in T.
        death_slope = rng.standard_exponential(S) / np.maximum(rng.standard_gamma(P[:, 2]), 1e-300)
        death = (death_slope, death_slope * P[:, 3])
    else:
        extra = 1.0 if kind == "mbgnbd" else 0.0
        drop = rng.beta(P[:, 2], P[:, 3] + x + extra)
        K = np.minimum(rng.geometric(np.clip(drop, 1e-12, 1.0)), _MAX_PURCHASES)
        death = None
    if G is not None:
        h = spend_rng.standard_gamma(G[:, 0] * x + G[:, 1])
        ratio = G[:, 2] / v_hat
        # Each purchase is Gamma(shape k) around the customer's mean p_s / nu: with a measured
        # within-customer shape k the draw is g_k / k * p_s / nu (same mean, measured spread).
        shape = np.full(S, spend_shape) if spend_shape else G[:, 0]
        ratio = ratio * G[:, 0] / shape
    elif spend_shape:
        # No spend model (the gate's own-spend fallback): scale is the customer's own mean
        # margin over n = x + 1 purchase days. Purchases ~ Gamma(k, rate k / mu); with the
        # prior density 1 / rate^2 the posterior of that rate is Gamma(k n + 1, k n zbar), so
        # mu = zbar k n / h, h ~ Gamma(k n + 1), and E[mu] = zbar: the range is centred on the
        # expected value and holds both the customer's unknown mean and each purchase's spread.
        n = x + 1.0
        h = spend_rng.standard_gamma(np.full(S, spend_shape * n + 1.0))
        shape = np.full(S, spend_shape)
        ratio = np.full(S, n)
    else:
        h = np.ones(S)
        ratio = np.ones(S)

    u_max = horizon_weeks * g / rate_scale.min(axis=1)
    sims, times, values = [], [], []
    running = np.zeros(S)
    column = 0
    open_ = np.flatnonzero((K > 0) & (u_max > 0))
    while len(open_) and column < _MAX_PURCHASES:
        arrivals = running[:, None] + np.cumsum(rng.standard_exponential((S, _BLOCK)), axis=1)
        spend = (
            spend_rng.standard_gamma(np.repeat(shape[:, None], _BLOCK, axis=1))
            if G is not None or spend_shape
            else np.ones((S, _BLOCK))
        )
        running = arrivals[:, -1].copy()
        cols = column + np.arange(_BLOCK)
        valid = (cols[None, :] < K[:, None]) & (arrivals <= u_max[:, None])
        sim_idx, col_idx = np.nonzero(valid)
        sims.append(sim_idx)
        times.append(arrivals[sim_idx, col_idx] / g[sim_idx])
        values.append(spend[sim_idx, col_idx])
        column += _BLOCK
        open_ = np.flatnonzero((column < K) & (running <= u_max))

    sims_a = np.concatenate(sims) if sims else np.zeros(0, np.int64)
    times_a = np.concatenate(times) if times else np.zeros(0)
    values_a = np.concatenate(values) if values else np.zeros(0)

    alpha_a = P[sims_a, 1]
    if death is not None:
        death_s, death_b = death[0][sims_a], death[1][sims_a]
    out = np.zeros((len(grid), S))
    per_batch = max(1, _CELLS_PER_BATCH // max(len(sims_a), 1))
    for start in range(0, len(grid), per_batch):
        cols_k = np.arange(start, min(start + per_batch, len(grid)))
        # weeks = times (alpha_s + T_k), by broadcasting rather than a (events x grid) gather.
        weeks = (times_a * alpha_a)[:, None] + times_a[:, None] * T_grid[cols_k][None, :]
        month = np.ceil(weeks / WEEKS_PER_MONTH).astype(np.int64)
        inside = (weeks <= horizon_weeks) & (month <= last_month)
        if death is not None:
            inside &= weeks < death_b[:, None] + death_s[:, None] * T_grid[cols_k][None, :]
        contribution = values_a[:, None] * month_weights[np.minimum(month, last_month)] * inside
        cell = np.arange(len(cols_k))[None, :] * S + sims_a[:, None]
        W = np.bincount(cell.ravel(), weights=contribution.ravel(), minlength=len(cols_k) * S)
        out[cols_k] = W.reshape(len(cols_k), S) * (ratio / h)[None, :]
    out.sort(axis=1)
    return out


def _read_quantile(table: np.ndarray, rows: np.ndarray, level: np.ndarray) -> np.ndarray:
    """Empirical quantile (linear interpolation between order statistics) per row."""
    S = table.shape[1]
    pos = np.clip(level, 0.0, 1.0) * (S - 1)
    i0 = np.minimum(np.floor(pos).astype(np.int64), S - 2)
    frac = pos - i0
    return table[rows, i0] * (1.0 - frac) + table[rows, i0 + 1] * frac


def simulation_mean(
    purchase: PurchaseParams, gamma_gamma: GammaGammaParams | None, x: int, T: float, settings: EngineSettings
) -> float:
    """Mean of the simulated W (discounted horizon margin per unit of scale, given alive) at
    the grid point nearest below T, at the estimated parameters: a check on the draws."""
    k = int(math.floor(_grid_position(purchase.alpha, np.array([T]))[0]))
    P, G = parameter_draws(
        replace(purchase, covariance=None),
        replace(gamma_gamma, covariance=None) if gamma_gamma is not None else None,
        settings.simulation_draws,
        settings.random_seed,
    )
    table = _simulate_group(
        x,
        np.array([k]),
        purchase,
        P,
        G,
        gamma_gamma.v if gamma_gamma is not None else 1.0,
        settings.horizon_weeks,
        discount_factors(settings, settings.horizon_months),
        settings.random_seed,
    )
    return float(table.mean())


def margin_quantiles(
    purchase: PurchaseParams,
    gamma_gamma: GammaGammaParams | None,
    x: np.ndarray,
    T: np.ndarray,
    p_alive: np.ndarray,
    scale: np.ndarray,
    levels: tuple[float, ...],
    *,
    horizon_weeks: float,
    month_weights: np.ndarray,
    settings: EngineSettings,
    spend_shape: float | None = None,
) -> list[np.ndarray]:
    """Quantiles at ``levels`` of the future margin V = 0 if gone (1 - p_alive), else
    scale x W. Q_V(u) = 0 for u <= 1 - p_alive and scale Q_W((u - 1 + p_alive) / p_alive)
    above. ``scale`` is v_hat + x zbar with a Gamma-Gamma model, else a fixed margin per
    purchase; month_weights[m] weighs margin earned in month m (discount factors, or ones)."""
    n = len(x)
    out = [np.zeros(n) for _ in levels]
    use = (scale > 0) & (p_alive > 0)
    if not use.any():
        return out
    P, G = parameter_draws(purchase, gamma_gamma, settings.simulation_draws, settings.random_seed)
    v_hat = gamma_gamma.v if gamma_gamma is not None else 1.0
    x_int = np.asarray(x, dtype=np.int64)
    pos = _grid_position(purchase.alpha, T)
    k_lo = np.floor(pos).astype(np.int64)
    frac = pos - k_lo
    # Customers grouped by x with one stable sort (each group in customer order).
    used = np.flatnonzero(use)
    order = used[np.argsort(x_int[used], kind="stable")]
    values, starts = np.unique(x_int[order], return_index=True)
    ends = np.r_[starts[1:], len(order)]

    def quantiles_of_group(group: tuple[int, int, int]) -> None:
        value, start, end = group
        members = order[start:end]
        grid = np.unique(np.r_[k_lo[members], k_lo[members] + 1])
        table = _simulate_group(
            int(value), grid, purchase, P, G, v_hat, horizon_weeks, month_weights, settings.random_seed, spend_shape
        )
        row_lo = np.searchsorted(grid, k_lo[members])
        pa = p_alive[members]
        w = frac[members]
        for level, result in zip(levels, out, strict=False):
            u = (level - (1.0 - pa)) / pa
            q = (1.0 - w) * _read_quantile(table, row_lo, u) + w * _read_quantile(table, row_lo + 1, u)
            result[members] = np.where(u > 0, scale[members] * q, 0.0)

    # Each group has its own seeds and writes only its members: the groups run in any order,
    # on RANGE_THREADS threads, largest first so that the threads finish together.
    groups = sorted(zip(values.tolist(), starts.tolist(), ends.tolist(), strict=True), key=lambda g: g[1] - g[2])
    map_on_threads(quantiles_of_group, groups, threads=RANGE_THREADS, name="valuation-range")
    return out


def discount_factors(settings: EngineSettings, months: int) -> np.ndarray:
    """d[m] = (1 + annual rate) ** (-m / 12), m = 0..months (month-end convention)."""
    return settings.monthly_discount_factor ** np.arange(months + 1)


def _distinct(x: np.ndarray, T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    inverse = pd.DataFrame({"x": x, "T": T}).groupby(["x", "T"], sort=False).ngroup().to_numpy()
    first = np.unique(inverse, return_index=True)[1]
    return np.stack([x[first], T[first]], axis=1), inverse


def purchases_if_alive(
    purchase: PurchaseParams, x: np.ndarray, T: np.ndarray, settings: EngineSettings
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For a customer alive at T: expected purchases over the horizon, the same discounted
    month by month (as predictive.purchases_if_alive), and discounted to infinity.

    With G(t) = E[X(T, T+t) | alive]: horizon = G(t_H); discounted = sum_m d[m] (G(t_m) -
    G(t_{m-1})) over months m = 1..H; to infinity adds the steps after month H up to
    RLV_YEARS years (grid in the code). Computed once per distinct (x, T).
    """
    x = np.asarray(x, dtype=float)
    T = np.asarray(T, dtype=float)
    if len(x) == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    unique, inverse = _distinct(x, T)
    H = settings.horizon_months
    # G is evaluated at months 1, 2, 3 and every third month to H (linear in between: G is
    # smooth and concave, the discounting error is far below 0.1 %), then at yearly points
    # to 10 years and every 5 years to RLV_YEARS; each step beyond H is discounted at its
    # middle month end.
    coarse = np.unique(np.r_[[1, 2, 3], np.arange(3, H + 1, 3), H])
    coarse = coarse[coarse <= H]
    tail = np.unique(np.r_[np.arange(H + 12, 121, 12), np.arange(180, RLV_YEARS * 12 + 1, 60)])
    tail = tail[tail > H]
    points = np.r_[coarse, tail]
    tail_edges = np.r_[H, tail]
    tail_weights = settings.monthly_discount_factor ** ((tail_edges[:-1] + tail_edges[1:]) / 2.0 + 0.5)
    d_h = discount_factors(settings, H)[1:]
    months = np.arange(1, H + 1)
    t = points * WEEKS_PER_MONTH
    plain = np.empty(len(unique))
    horizon = np.empty(len(unique))
    infinite = np.empty(len(unique))
    for start in range(0, len(unique), _ROWS_PER_BATCH):
        block = unique[start : start + _ROWS_PER_BATCH]
        Gt = expected_purchases_if_alive(purchase, t[None, :], block[:, :1], block[:, 1:])
        G_head = Gt[:, : len(coarse)]
        # Monthly G by linear interpolation over the coarse months (G(0) = 0).
        xs = np.r_[0, coarse]
        pos = np.searchsorted(xs, months, side="left")
        lo = np.maximum(pos - 1, 0)
        frac = (months - xs[lo]) / (xs[pos] - xs[lo])
        G_full = np.c_[np.zeros(len(block)), G_head]
        G_month = G_full[:, lo] * (1 - frac) + G_full[:, pos] * frac
        inc = np.diff(G_month, axis=1, prepend=0.0)
        plain[start : start + len(block)] = G_month[:, -1]
        horizon[start : start + len(block)] = row_dot(inc, d_h)
        tail_inc = np.diff(np.c_[G_month[:, -1], Gt[:, len(coarse) :]], axis=1)
        infinite[start : start + len(block)] = horizon[start : start + len(block)] + row_dot(tail_inc, tail_weights)
    return plain[inverse], horizon[inverse], infinite[inverse]


def median_remaining_weeks(
    purchase: PurchaseParams, x: np.ndarray, T: np.ndarray, p_alive: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Median remaining lifetime in weeks, unconditional and given alive.

    Remaining lifetime L: 0 if the customer is already gone, else distributed with survival
    S(t) = P(alive at T+t | alive at T) (purchase_models.survival_if_alive). Given alive, the
    median solves S(t) = 1/2; unconditionally, p_alive S(t) = 1/2, which is 0 when
    p_alive <= 1/2 (more likely gone than not). Solved on a log grid of t (1 day to
    MAX_LIFETIME_WEEKS) with log-linear interpolation; values beyond are reported as
    MAX_LIFETIME_WEEKS.
    """
    x = np.asarray(x, dtype=float)
    T = np.asarray(T, dtype=float)
    n = len(x)
    if n == 0:
        return np.zeros(0), np.zeros(0)
    unique, inverse = _distinct(x, T)
    grid = np.geomspace(1.0 / 7.0, MAX_LIFETIME_WEEKS, 40)
    surv = np.empty((len(unique), len(grid)))
    for start in range(0, len(unique), _ROWS_PER_BATCH):
        block = unique[start : start + _ROWS_PER_BATCH]
        surv[start : start + len(block)] = survival_if_alive(purchase, grid[None, :], block[:, :1], block[:, 1:])

    def solve(target: np.ndarray, rows: np.ndarray) -> np.ndarray:
        # First grid point where S(t) <= target (S of the distinct (x, T) ``rows``); interpolate
        # log t between it and the one before. Grid point by grid point, so that no
        # (customers x grid) table is made.
        m = len(target)
        idx = np.full(m, len(grid))
        for j in range(len(grid)):
            open_ = np.flatnonzero(idx == len(grid))
            if not len(open_):
                break
            hit = open_[surv[rows[open_], j] <= target[open_]]
            idx[hit] = j
        result = np.full(m, MAX_LIFETIME_WEEKS)
        inside = idx < len(grid)
        i = idx[inside]
        r = rows[inside]
        s_hi = surv[r, i]
        s_lo = np.where(i > 0, surv[r, np.maximum(i - 1, 0)], 1.0)
        t_lo = np.where(i > 0, grid[np.maximum(i - 1, 0)], 0.0)
        frac = np.where(s_lo > s_hi, (s_lo - target[inside]) / np.maximum(s_lo - s_hi, 1e-300), 1.0)
        log_lo = np.log(np.where(t_lo > 0, t_lo, grid[0]))
        value = np.exp(log_lo + frac * (np.log(grid[i]) - log_lo))
        result[np.flatnonzero(inside)] = np.where(t_lo > 0, value, grid[0] * frac)
        return result

    # Given alive the median depends on (x, T) only: solved once per distinct pair.
    if_alive = solve(np.full(len(unique), 0.5), np.arange(len(unique)))[inverse]
    with np.errstate(divide="ignore", invalid="ignore"):
        target = np.where(p_alive > 0.5, 0.5 / np.maximum(p_alive, 1e-300), 1.0)
    likely = np.flatnonzero(p_alive > 0.5)
    unconditional = np.zeros(n)
    unconditional[likely] = solve(np.minimum(target[likely], 1.0), inverse[likely])
    return unconditional, if_alive
