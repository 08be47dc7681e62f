"""Pure valuation maths of CVM Cockpit: plain DataFrames in, DataFrames and dataclasses out.

No Django here: the engine runs on CSV exports and is tested without a database.
"""

from .backtest import backtest, backtest_summary
from .bgnbd import (
    BgNbdParams,
    bgnbd_expected_purchases,
    bgnbd_expected_purchases_if_alive,
    bgnbd_individual_log_likelihood,
    bgnbd_log_likelihood,
    bgnbd_p_alive,
    fit_bgnbd,
)
from .clv import SCORE_COLUMNS, ModelFit, fit_models, score_customers
from .gamma_gamma import (
    GammaGammaParams,
    fit_gamma_gamma,
    gamma_gamma_expected_value,
    gamma_gamma_individual_log_likelihood,
)
from .growth import GROWTH_COLUMNS, earned_growth
from .pipeline import ValuationResult, combine, valuate
from .referral import referral_value
from .segments import ABC_CLASSES, SEGMENTS, Thresholds, classify, compute_thresholds
from .settings import WEEKS_PER_MONTH, EngineSettings
from .summary import (
    SERVICE_BY_TYPE_COLUMNS,
    SERVICE_TOTAL_COLUMNS,
    SUMMARY_COLUMNS,
    summarise_services,
    summarise_transactions,
    window_start,
)

__all__ = [
    "ABC_CLASSES",
    "GROWTH_COLUMNS",
    "SCORE_COLUMNS",
    "SEGMENTS",
    "SERVICE_BY_TYPE_COLUMNS",
    "SERVICE_TOTAL_COLUMNS",
    "SUMMARY_COLUMNS",
    "WEEKS_PER_MONTH",
    "BgNbdParams",
    "EngineSettings",
    "GammaGammaParams",
    "ModelFit",
    "Thresholds",
    "ValuationResult",
    "backtest",
    "backtest_summary",
    "bgnbd_expected_purchases",
    "bgnbd_expected_purchases_if_alive",
    "bgnbd_individual_log_likelihood",
    "bgnbd_log_likelihood",
    "bgnbd_p_alive",
    "classify",
    "combine",
    "compute_thresholds",
    "earned_growth",
    "fit_bgnbd",
    "fit_gamma_gamma",
    "fit_models",
    "gamma_gamma_expected_value",
    "gamma_gamma_individual_log_likelihood",
    "referral_value",
    "score_customers",
    "summarise_services",
    "summarise_transactions",
    "valuate",
    "window_start",
]
