"""Referral value: what the customers a customer brought in are worth."""

from __future__ import annotations

import pandas as pd


def referral_value(customers: pd.DataFrame, values: pd.Series) -> pd.Series:
    """For each customer, the sum of ``values`` over the customers it referred directly.

    ``customers`` has customer_id and referred_by (nullable); ``values`` is indexed by
    customer_id. The valuation passes margin_lifetime + clv (margin already earned plus
    expected future margin of the referred customer), so a referral counts with its whole
    value. Only direct referrals count (no chains); self-referrals and referrers outside
    ``customers`` are ignored. Returns a Series indexed like customers' ids, 0 where none.
    """
    ids = pd.Index(customers["customer_id"], name="customer_id")
    links = pd.DataFrame(
        {"customer_id": customers["customer_id"].to_numpy(), "referrer": customers["referred_by"].to_numpy()}
    ).dropna(subset=["referrer"])
    links = links[links["referrer"] != links["customer_id"]]
    links["referrer"] = links["referrer"].astype(ids.dtype) if len(links) else links["referrer"]
    links["value"] = links["customer_id"].map(values).fillna(0.0).astype(float)
    totals = links.groupby("referrer")["value"].sum()
    return totals.reindex(ids, fill_value=0.0).astype(float).rename("referral_value")
