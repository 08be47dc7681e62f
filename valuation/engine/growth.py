"""Earned growth (Reichheld, Darnell & Burns, "Winning on Purpose", 2021; HBR "Net Promoter
3.0", Nov-Dec 2021).

For a period with revenue R_t and prior period revenue R_{t-1}:
    NRR = revenue in t from customers who bought in t-1 / R_{t-1}      (net revenue retention)
    ENC = revenue in t from new customers acquired by referral / R_{t-1} (earned new customers)
    EGR = NRR + ENC - 1                                                  (earned growth rate)
The rest of the growth is "bought" (new customers won by marketing or sales, and returning
customers who skipped t-1).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .summary import DateLike, as_timestamp

GROWTH_COLUMNS = [
    "period_start",
    "period_end",
    "revenue",
    "prior_revenue",
    "retained_revenue",
    "referred_new_revenue",
    "nrr",
    "enc",
    "earned_growth_rate",
]


_PERIOD_ALIASES = {"YE": "Y", "QE": "Q", "ME": "M", "Y": "Y", "Q": "Q", "M": "M"}


def _calendar_period_ends(dates: pd.Series, freq: str) -> list[pd.Timestamp]:
    """Ends of the calendar periods spanning ``dates``, preceded by the end of the period
    before the first one (the lower bound of the first period)."""
    if freq not in _PERIOD_ALIASES:
        raise ValueError(f"freq must be one of {sorted(_PERIOD_ALIASES)}")
    periods = pd.period_range(dates.min(), dates.max(), freq=_PERIOD_ALIASES[freq])
    return [(periods[0] - 1).end_time.normalize()] + [p.end_time.normalize() for p in periods]


def earned_growth(
    transactions: pd.DataFrame,
    customers: pd.DataFrame,
    period_end_dates: Sequence[DateLike] | None = None,
    freq: str = "YE",
) -> pd.DataFrame:
    """Earned growth per period.

    Periods are (previous end, end] for consecutive ``period_end_dates`` (sorted; the first
    date only opens the first period); without them, calendar periods of ``freq`` ("YE",
    "QE" or "ME") spanning the transactions. A row is produced for every period that has a
    prior period, so the first period only serves as the prior of the second. Columns:
    period_start (first day), period_end, revenue, prior_revenue, retained_revenue (from customers with revenue rows in
    the prior period), referred_new_revenue (from customers with referred_by set whose
    acquisition falls in the period; acquisition is acquisition_date, or the first
    transaction when that is missing), nrr, enc, earned_growth_rate. The rates are NaN when
    the prior period had no revenue.
    """
    tx = pd.DataFrame(
        {
            "customer_id": transactions["customer_id"].to_numpy(),
            "date": pd.to_datetime(transactions["date"]).dt.normalize().to_numpy(),
            "revenue": pd.to_numeric(transactions["revenue"]).fillna(0.0).to_numpy(dtype=float),
        }
    )
    if period_end_dates is None:
        if tx.empty:
            return pd.DataFrame(columns=GROWTH_COLUMNS)
        ends = _calendar_period_ends(tx["date"], freq)
    else:
        ends = sorted(as_timestamp(d) for d in period_end_dates)
    if len(ends) < 3:
        return pd.DataFrame(columns=GROWTH_COLUMNS)

    bounds = np.array(ends, dtype="datetime64[ns]")
    # Period index k means (ends[k-1], ends[k]]; -1 or len(ends) are outside.
    tx["period"] = np.searchsorted(bounds, tx["date"].to_numpy(), side="left")
    tx = tx[(tx["period"] >= 1) & (tx["period"] < len(ends))]

    info = customers.set_index("customer_id")
    referred = info["referred_by"].notna() if "referred_by" in info else pd.Series(False, index=info.index)
    acquired = (
        pd.to_datetime(info["acquisition_date"]) if "acquisition_date" in info
        else pd.Series(pd.NaT, index=info.index)
    )
    first_tx = pd.to_datetime(transactions["date"]).groupby(transactions["customer_id"].to_numpy()).min()
    acquired = acquired.fillna(first_tx.reindex(acquired.index)).dt.normalize()
    acquired_period = pd.Series(
        np.where(acquired.notna(), np.searchsorted(bounds, acquired.to_numpy(), side="left"), -1),
        index=acquired.index,
    )

    revenue = tx.groupby("period")["revenue"].sum()
    buyers_by_period = tx.groupby("period")["customer_id"].unique()
    rows = []
    for k in range(2, len(ends)):
        in_k = tx[tx["period"] == k]
        prior_buyers = buyers_by_period.get(k - 1, np.array([]))
        retained = float(in_k.loc[in_k["customer_id"].isin(prior_buyers), "revenue"].sum())
        cust = in_k["customer_id"]
        is_new_referred = (
            cust.map(acquired_period).eq(k) & cust.map(referred).fillna(False).astype(bool)
            & ~cust.isin(prior_buyers)
        )
        referred_new = float(in_k.loc[is_new_referred.to_numpy(), "revenue"].sum())
        prior = float(revenue.get(k - 1, 0.0))
        current = float(revenue.get(k, 0.0))
        nrr = retained / prior if prior > 0 else np.nan
        enc = referred_new / prior if prior > 0 else np.nan
        rows.append(
            {
                "period_start": ends[k - 1] + pd.Timedelta(days=1),
                "period_end": ends[k],
                "revenue": current,
                "prior_revenue": prior,
                "retained_revenue": retained,
                "referred_new_revenue": referred_new,
                "nrr": nrr,
                "enc": enc,
                "earned_growth_rate": nrr + enc - 1.0,
            }
        )
    growth = pd.DataFrame(rows, columns=GROWTH_COLUMNS)
    for column in ("period_start", "period_end"):
        growth[column] = growth[column].astype("datetime64[ns]")
    return growth
