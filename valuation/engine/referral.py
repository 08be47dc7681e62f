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


def incremental_referral_value(
    customers: pd.DataFrame,
    clv: pd.Series,
    margin_since_referral: pd.Series | None = None,
) -> pd.Series:
    """Referral value that is incremental and counted once.

    Rule: a referrer is credited with what its direct referrals bring *in discounted terms
    and beyond their own acquisition*: the referred customer's clv (already discounted to
    the valuation day, from that customer's own model figures), plus, if given, the margin
    the referred customer has earned since being referred (``margin_since_referral``,
    historical, undiscounted: it is money already earned, reported separately from the
    forecast by the caller if it wants; pass None to credit the forecast only).
    The referred customer's value is *not* added to any total of customer values: a company
    total sums each customer's own clv once; referral_value is an attribution shown next to
    the referrer, never added to the referrer's clv. Only direct referrals count (no
    chains); self-referrals and referrers outside ``customers`` are ignored; negative
    values count as 0 (a referral cannot make the referrer worth less than nothing).
    """
    base = clv.astype(float).clip(lower=0.0)
    if margin_since_referral is not None:
        base = base.add(margin_since_referral.astype(float).clip(lower=0.0), fill_value=0.0)
    return referral_value(customers, base)
