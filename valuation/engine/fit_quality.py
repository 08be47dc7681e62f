"""The fit-quality gate: when may a fitted model's numbers be shown as a valuation?

Every fit is checked for convergence, parameters at a bound, identifiability (an invertible
observed information), a finite population mean spend (Gamma-Gamma q > 1) and enough data.
Problems carry a code (stable, for the API and tests) and a sentence (for people).

Consequences (``fallback``):
- a purchase-model problem: no model numbers at all; every customer gets the trailing
  margin-rate estimate (see value.trailing_margin_estimate) and P(alive) is not claimed;
- a spend-model problem only: the purchase model stands, the margin per purchase is the
  customer's own mean margin per purchase day (capped and net of returns, see summary.py).
"""

from __future__ import annotations

from typing import Any

from .gamma_gamma import GammaGammaParams
from .purchase_models import PurchaseParams, model_name

# Below these counts a four-parameter purchase model, or the three-parameter spend model,
# is not identified in practice: the likelihood surface is flat in some direction and the
# estimates run to the bounds (five customers gave a and q at e^12).
MIN_BUYERS = 50
MIN_REPEAT_BUYERS = 20
MIN_SPENDERS = 20

FALLBACK_TRAILING = "trailing_margin_rate"
FALLBACK_OWN_SPEND = "own_margin_per_purchase"


def _problem(code: str, model: str, message: str) -> dict[str, str]:
    return {"code": code, "model": model, "message": message}


def purchase_problems(params: PurchaseParams | None, *, buyers: int, repeat_buyers: int) -> list[dict[str, str]]:
    """Problems of a purchase-model fit (an empty list means it may be used)."""
    name = model_name(params) if params is not None else "purchase"
    problems = []
    if buyers == 0:
        return [_problem("no_purchases", name, "No customer has a purchase (revenue > 0): there is nothing to fit.")]
    if buyers < MIN_BUYERS:
        problems.append(_problem("too_few_customers", name,
                                 f"{buyers} customers with purchases; at least {MIN_BUYERS} are needed."))
    if repeat_buyers < MIN_REPEAT_BUYERS:
        problems.append(_problem(
            "too_few_repeat_buyers", name,
            f"{repeat_buyers} customers bought on more than one day; at least {MIN_REPEAT_BUYERS} are needed "
            "to tell buying rate from drop-out."))
    if params is None:
        problems.append(_problem("not_fitted", name, "The purchase model could not be fitted."))
        return problems
    if params.at_bound:
        problems.append(_problem("parameter_at_bound", name,
                                 f"Parameters at the edge of the search range: {', '.join(params.at_bound)}."))
    if params.covariance is None and not params.at_bound:
        problems.append(_problem("not_identified", name,
                                 "The likelihood is flat in some direction: the parameters are not determined."))
    if not params.converged and not params.at_bound and params.covariance is not None:
        problems.append(_problem("not_converged", name, "The maximum-likelihood search did not converge."))
    return problems


def spend_problems(params: GammaGammaParams | None, *, spenders: int) -> list[dict[str, str]]:
    """Problems of the Gamma-Gamma fit (fitted with q > 1, see fit_gamma_gamma_finite)."""
    problems = []
    if spenders < MIN_SPENDERS:
        problems.append(_problem(
            "too_few_spenders", "gamma_gamma",
            f"{spenders} customers with a repeat purchase and a positive margin; at least {MIN_SPENDERS} are needed."))
    if params is None:
        if not problems:
            problems.append(_problem("not_fitted", "gamma_gamma", "The spend model could not be fitted."))
        return problems
    if "q" in params.at_bound:
        problems.append(_problem(
            "spend_q_at_most_1", "gamma_gamma",
            "The spend data want q <= 1, where the population mean margin per purchase is infinite."))
    others = [n for n in params.at_bound if n != "q"]
    if others:
        problems.append(_problem("parameter_at_bound", "gamma_gamma",
                                 f"Parameters at the edge of the search range: {', '.join(others)}."))
    if params.covariance is None and not params.at_bound:
        problems.append(_problem("not_identified", "gamma_gamma", "The spend parameters are not determined."))
    if not params.converged and not params.at_bound and params.covariance is not None:
        problems.append(_problem("not_converged", "gamma_gamma", "The spend model's search did not converge."))
    return problems


def gate(purchase: list[dict[str, str]], spend: list[dict[str, str]]) -> dict[str, Any]:
    """fit_quality = {ok, problems, fallback}: ok only without any problem; fallback names
    the estimate used instead (None when the models stand)."""
    if purchase:
        fallback = FALLBACK_TRAILING
    elif spend:
        fallback = FALLBACK_OWN_SPEND
    else:
        fallback = None
    return {"ok": not (purchase or spend), "problems": purchase + spend, "fallback": fallback}
