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
from .fit_quality import FALLBACK_OWN_SPEND, FALLBACK_TRAILING
from .gamma_gamma import (
    GammaGammaParams,
    fit_gamma_gamma,
    gamma_gamma_expected_value,
    gamma_gamma_individual_log_likelihood,
)
from .growth import GROWTH_COLUMNS, earned_growth
from .mbgnbd import MbgNbdParams, fit_mbgnbd
from .pareto_nbd import ParetoNbdParams, fit_pareto_nbd
from .pipeline import ValuationResult, combine, lost_flags, valuate, valuate_with_backtest
from .purchase_models import PURCHASE_MODELS, fit_purchase_model
from .referral import incremental_referral_value, referral_value
from .segments import ABC_CLASSES, SEGMENTS, Thresholds, classify, compute_thresholds
from .settings import WEEKS_PER_MONTH, EngineSettings
from .summary import (
    INPUT_RULE_COLUMNS,
    SERVICE_BY_TYPE_COLUMNS,
    SERVICE_TOTAL_COLUMNS,
    SUMMARY_COLUMNS,
    summarise_services,
    summarise_transactions,
    window_start,
)
from .value import (
    HOLDOUT_COLUMNS,
    VALUE_COLUMNS,
    ValuationModels,
    backtest_calibration_end,
    backtest_holdout_weeks,
    backtest_models,
    compare_models,
    fit_chosen_model,
    fit_valuation_models,
    holdout_outcome,
    predict_holdout,
    value_customers,
)

__all__ = [
    "ABC_CLASSES",
    "FALLBACK_OWN_SPEND",
    "FALLBACK_TRAILING",
    "HOLDOUT_COLUMNS",
    "INPUT_RULE_COLUMNS",
    "PURCHASE_MODELS",
    "VALUE_COLUMNS",
    "MbgNbdParams",
    "ParetoNbdParams",
    "ValuationModels",
    "backtest_calibration_end",
    "backtest_holdout_weeks",
    "backtest_models",
    "compare_models",
    "fit_chosen_model",
    "fit_mbgnbd",
    "fit_pareto_nbd",
    "fit_purchase_model",
    "fit_valuation_models",
    "holdout_outcome",
    "incremental_referral_value",
    "lost_flags",
    "predict_holdout",
    "valuate_with_backtest",
    "value_customers",
    "GROWTH_COLUMNS",
    "SEGMENTS",
    "SERVICE_BY_TYPE_COLUMNS",
    "SERVICE_TOTAL_COLUMNS",
    "SUMMARY_COLUMNS",
    "WEEKS_PER_MONTH",
    "BgNbdParams",
    "EngineSettings",
    "GammaGammaParams",
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
    "gamma_gamma_expected_value",
    "gamma_gamma_individual_log_likelihood",
    "referral_value",
    "summarise_services",
    "summarise_transactions",
    "valuate",
    "window_start",
]
