"""Drawing the demo data with numpy: customers, purchases, order lines and free services per chunk."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from .company import (
    CATEGORIES,
    CHANNELS,
    FAMILY_NAMES,
    INDUSTRIES,
    INVESTMENT,
    LEGAL_FORMS,
    MARGIN_RATE_MEAN,
    NAME_HEADS,
    NAME_TAILS,
    NOTE_TEMPLATES,
    PERSONA_SHARES,
    PURCHASE_RATE_FACTOR,
    REFERRAL_SHARE,
    REGIONS,
    SALES_CHANNEL_SHARES,
    SALES_CHANNELS,
    SEASON,
    SERVICE_QUANTITY_FACTOR,
    SERVICE_RATE,
    SPEND_FACTOR,
    SPOILED,
    TRADES,
)
from .writing import _byte_table


@dataclass(frozen=True)
class _Volume:
    purchase_rate: float = 1.0   # factor on every customer's purchase rate
    service_rate: float = 1.0    # factor on every customer's rate of free services


# --- generation ----------------------------------------------------------------------------

class _Calendar:
    """Days as integers: 0 is the first day of the history, ``last`` is as-of."""

    # Customers may have been won up to five years before the history starts.
    LEAD_DAYS = 5 * 366 + 400

    def __init__(self, *, first_day: date, as_of: date):
        self.first_day = first_day
        self.last = (as_of - first_day).days
        self.low = -self.LEAD_DAYS
        days = [first_day + timedelta(days=int(d)) for d in range(self.low, self.last + 1)]
        self.text = np.array([d.isoformat() for d in days], dtype=object)
        self.bytes = _byte_table([d.isoformat() for d in days])
        self.month = np.array([d.month - 1 for d in days], dtype=np.int64)

    def index(self, day: np.ndarray) -> np.ndarray:
        return day - self.low


def _choice(rng, shares, size) -> np.ndarray:
    cumulative = np.cumsum(np.asarray(shares, dtype=float))
    return np.searchsorted(cumulative / cumulative[-1], rng.random(size), side="right")


def _segment_start(counts: np.ndarray) -> np.ndarray:
    return np.cumsum(counts) - counts


def _seed_chunk(rng, *, size, first_id, first_number, calendar, types, owner_of_region,
                inside_id, writer, seconds, volume) -> tuple[int, int, int]:
    clock = time.perf_counter()
    people = _draw_customers(rng, size=size, calendar=calendar, volume=volume)
    seconds["customers"] += time.perf_counter() - clock

    clock = time.perf_counter()
    purchases = _draw_purchases(rng, people, calendar=calendar)
    lines = _draw_lines(rng, people, purchases, calendar=calendar)
    seconds["transactions"] += time.perf_counter() - clock

    clock = time.perf_counter()
    _settle_customers(rng, people, purchases, lines, calendar=calendar)
    ids = first_id + np.arange(size, dtype=np.int64)
    writer.customers(people, ids=ids, first_number=first_number, calendar=calendar,
                     owners=owner_of_region[people["region"]])
    seconds["customers"] += time.perf_counter() - clock

    clock = time.perf_counter()
    writer.transactions(lines, customer_ids=ids[lines["customer"]], first_number=first_number, calendar=calendar)
    seconds["transactions"] += time.perf_counter() - clock

    clock = time.perf_counter()
    events = _draw_service_events(rng, people, purchases, calendar=calendar, types=types, volume=volume)
    logged_by = np.where(types.inside[events["type"]] & (rng.random(len(events["type"])) < 0.85)
                         | (rng.random(len(events["type"])) < 0.15),
                         inside_id, owner_of_region[people["region"]][events["customer"]])
    writer.events(events, customer_ids=ids[events["customer"]], type_ids=types.ids[events["type"]],
                  logged_by=logged_by, calendar=calendar)
    seconds["service_events"] += time.perf_counter() - clock
    return size, len(lines["customer"]), len(events["customer"])


def _draw_customers(rng, *, size, calendar, volume=_Volume()) -> dict:
    """Who the customers are: persona, acquisition, referral, purchase and spend parameters."""
    last = calendar.last
    persona = _choice(rng, PERSONA_SHARES, size)
    kind = rng.random(size)
    growing = kind < 0.04       # won in the last months, growing fast
    one_off = (kind >= 0.04) & (kind < 0.07)  # bought once and never again
    # A third were won before the history starts (their early purchases are cut off).
    acquired = np.where(rng.random(size) < 0.35,
                        rng.uniform(-3 * 365, 0, size), rng.uniform(0, max(last - 20, 1), size))
    acquired[growing] = rng.uniform(last - 330, last - 150, int(growing.sum()))
    acquired = np.floor(acquired).astype(np.int64)

    # Number customers in order of acquisition, so older customers have lower numbers
    # and a referrer is always written before the customers it referred.
    order = np.argsort(acquired, kind="stable")
    persona, growing, one_off, acquired = persona[order], growing[order], one_off[order], acquired[order]

    # BG/NBD: purchase rate per week and drop-out probability after each purchase.
    rate = rng.gamma(1.6, 0.32, size) * PURCHASE_RATE_FACTOR[persona]
    rate[growing] = np.maximum(rate[growing], rng.uniform(0.6, 1.0, int(growing.sum())))
    dropout = rng.beta(1.3, 100.0, size)
    # Buying less (or more) often with the same drop-out risk per week: the customers' lifetimes
    # and the share of churners stay as they are, and the volume scales in proportion.
    rate *= volume.purchase_rate
    dropout = np.minimum(dropout / volume.purchase_rate, 0.999)
    # Gamma-Gamma: nu ~ Gamma(q, gamma) per customer; line value ~ Gamma(p, nu).
    nu = rng.gamma(4.0, 1 / 560.0, size)
    margin = np.clip(rng.normal(MARGIN_RATE_MEAN[persona], 0.06), 0.15, 0.45)
    spoiled = persona == SPOILED
    margin[spoiled] = np.clip(rng.normal(0.08, 0.06, int(spoiled.sum())), -0.08, 0.22)
    thin = rng.random(size) < 0.02   # a few customers bring (almost) nothing: price was too sharp
    margin[thin] = rng.uniform(-0.08, 0.03, int(thin.sum()))
    growth = np.where(growing, rng.uniform(1.3, 2.2, size), 0.0)  # log growth of spend per year

    channel_index = _choice(rng, [share for _, share in CHANNELS], size)
    referred = rng.random(size) < REFERRAL_SHARE
    referred[0] = False
    referrer = _draw_referrers(rng, referred, persona)
    referred &= referrer >= 0

    return {
        "size": size, "persona": persona, "growing": growing, "one_off": one_off,
        "acquired": acquired, "rate": rate, "dropout": dropout, "nu": nu, "margin": margin,
        "growth": growth, "channel": channel_index, "referred": referred, "referrer": referrer,
        "region": _choice(rng, [share for _, share, _ in REGIONS], size),
        "industry": _choice(rng, [share for _, share in INDUSTRIES], size),
        "name": _draw_names(rng, size),
    }


def _draw_referrers(rng, referred, persona) -> np.ndarray:
    """Index of an earlier customer for each referred one (-1 if none), chains welcome.

    Referred customers refer again three times as often, investment customers twice:
    enthusiasts recommend, which gives referral chains A -> B -> C.
    """
    weight = np.where(referred, 3.0, np.where(persona == INVESTMENT, 2.0, 1.0))
    cumulative = np.cumsum(weight)
    referrer = np.full(len(referred), -1, dtype=np.int64)
    positions = np.flatnonzero(referred)
    positions = positions[positions > 0]
    # Weighted pick among the customers before: inverse of the cumulative weight.
    target = rng.random(len(positions)) * cumulative[positions - 1]
    referrer[positions] = np.searchsorted(cumulative, target, side="right")
    return referrer


def _draw_names(rng, size) -> list[str]:
    family = rng.integers(0, len(FAMILY_NAMES), (size, 2))
    head = rng.integers(0, len(NAME_HEADS), size)
    tail = rng.integers(0, len(NAME_TAILS), size)
    trade = rng.integers(0, len(TRADES), size)
    legal = _choice(rng, [share for _, share in LEGAL_FORMS], size)
    pattern = rng.integers(0, 4, size)
    forms = [form for form, _ in LEGAL_FORMS]
    names = []
    for p, (f1, f2), h, t, tr, lg in zip(pattern.tolist(), family.tolist(), head.tolist(), tail.tolist(),
                                        trade.tolist(), legal.tolist(), strict=False):
        if p == 0:
            name = f"{FAMILY_NAMES[f1]} {TRADES[tr]}"
        elif p == 1:
            name = f"{NAME_HEADS[h]}{NAME_TAILS[t]}"
        elif p == 2:
            name = f"{FAMILY_NAMES[f1]} & {FAMILY_NAMES[f2]}" if f1 != f2 else f"{FAMILY_NAMES[f1]} & Söhne"
        else:
            name = f"{NAME_HEADS[h]}{NAME_TAILS[t]} {TRADES[tr]}"
        names.append(f"{name} {forms[lg]}")
    return names


def _draw_purchases(rng, people, *, calendar) -> dict:
    """Purchase days per customer by the BG/NBD story, cut to the history window."""
    last = calendar.last
    rate_per_day = people["rate"] / 7.0
    span = np.maximum(last - people["acquired"], 0)
    expected = rate_per_day * span
    # Enough draws to pass as-of unless the customer drops out first.
    cap = np.ceil(expected + 5 * np.sqrt(expected) + 5).astype(np.int64)
    lifetime = rng.geometric(people["dropout"])          # purchases before dropping out
    lifetime[people["one_off"]] = 1
    lifetime[people["growing"]] = cap[people["growing"]] + 1
    count = np.minimum(lifetime, cap)

    owner = np.repeat(np.arange(people["size"]), count)
    start = _segment_start(count)
    gap = rng.exponential(1.0, len(owner)) / rate_per_day[owner]
    gap[start] = 0.0  # the first purchase is the acquisition
    elapsed = np.cumsum(gap)
    elapsed -= np.repeat(elapsed[start], count)
    day = people["acquired"][owner] + np.floor(elapsed).astype(np.int64)

    happened = day <= last
    last_purchase = np.full(people["size"], -10**6, dtype=np.int64)
    np.maximum.at(last_purchase, owner[happened], day[happened])
    made = np.bincount(owner[happened], minlength=people["size"])
    # Alive at as-of unless every purchase of its lifetime has already happened.
    people["alive"] = (lifetime > made)
    people["last_purchase"] = last_purchase
    people["purchases_ever"] = made

    seen = happened & (day >= 0)
    return {"customer": owner[seen], "day": day[seen]}


def _draw_lines(rng, people, purchases, *, calendar) -> dict:
    """Order lines of each purchase: product, revenue and cost of goods in cents."""
    lines_per_purchase = 1 + rng.poisson(0.65, len(purchases["day"]))
    customer = np.repeat(purchases["customer"], lines_per_purchase)
    day = np.repeat(purchases["day"], lines_per_purchase)
    n = len(customer)

    category = _choice(rng, [c[1] for c in CATEGORIES], n)
    value_factor = np.array([c[2] for c in CATEGORIES])
    value_factor /= (value_factor * np.array([c[1] for c in CATEGORIES])).sum()
    product_counts = np.array([len(c[4]) for c in CATEGORIES])
    product = _segment_start(product_counts)[category] + np.floor(
        rng.random(n) * product_counts[category]).astype(np.int64)
    cumulative_channels = np.cumsum(SALES_CHANNEL_SHARES, axis=1)[category]
    channel = (rng.random(n)[:, None] > cumulative_channels).sum(axis=1)
    channel = np.minimum(channel, len(SALES_CHANNELS) - 1)

    years_in = np.maximum(day - people["acquired"][customer], 0) / 365.0
    value = (
        rng.gamma(3.0, 1.0, n) / people["nu"][customer]
        * SPEND_FACTOR[people["persona"][customer]]
        * value_factor[category]
        * SEASON[calendar.month[calendar.index(day)]]
        * np.exp(people["growth"][customer] * years_in)
    )
    revenue = np.maximum(np.round(value * 100), 100).astype(np.int64)
    margin = people["margin"][customer] + np.array([c[3] for c in CATEGORIES])[category] + rng.normal(0, 0.03, n)
    margin = np.clip(margin, -0.25, 0.7)
    cost = np.round(revenue * (1.0 - margin)).astype(np.int64)
    line_no = np.arange(n) - _segment_start(np.bincount(customer, minlength=people["size"]))[customer]
    return {"customer": customer, "day": day, "revenue": revenue, "cost": cost,
            "product": product, "channel": channel, "line_no": line_no}


def _settle_customers(rng, people, purchases, lines, *, calendar) -> None:
    """Status, lost date and wallet, which depend on what the customer bought."""
    size, last = people["size"], calendar.last
    dead = ~people["alive"]
    quiet_since = last - people["last_purchase"]
    # Some drop-outs were noticed and closed; most are silent churners, still "active".
    noticed = dead & (quiet_since > 180) & (rng.random(size) < np.where(people["last_purchase"] < 0, 0.5, 0.2))
    lost_on = people["last_purchase"] + rng.integers(90, 271, size)
    lost_on = np.minimum(lost_on, last)
    people["lost"] = noticed
    people["lost_on"] = np.where(noticed, lost_on, 0)

    revenue = np.bincount(lines["customer"], weights=lines["revenue"], minlength=size) / 100.0
    observed_from = np.maximum(people["acquired"], 0)
    observed_to = np.where(dead, np.minimum(people["last_purchase"] + 30, last), last)
    years = np.maximum(observed_to - observed_from, 91) / 365.0
    share_of_supply = rng.uniform(0.10, 1.0, size)
    wallet = np.round(revenue / years / share_of_supply / 100.0) * 100.0
    people["wallet"] = np.where((rng.random(size) < 0.66) & (revenue > 0), np.maximum(wallet, 500.0), np.nan)


def _draw_service_events(rng, people, purchases, *, calendar, types, volume=_Volume()) -> dict:
    """Free services in each customer's active life, clustered around its purchases."""
    size, last = people["size"], calendar.last
    begin = np.maximum(people["acquired"], 0)
    end = np.where(people["alive"], last, np.minimum(people["last_purchase"] + 90, last))
    end = np.where(people["lost"], np.minimum(end, people["lost_on"]), end)
    active_years = np.maximum(end - begin, 0) / 365.0
    intensity = SERVICE_RATE[people["persona"]] * rng.gamma(2.0, 0.5, size)
    intensity[people["growing"]] *= 1.6  # onboarding: commissioning, trainings, questions
    intensity *= volume.service_rate
    count = rng.poisson(intensity * active_years)
    count[end < begin] = 0
    if not len(types.codes):
        count[:] = 0

    customer = np.repeat(np.arange(size), count)
    m = len(customer)
    # Near a purchase (the day before to two weeks after) or anywhere in the active life.
    bought = np.bincount(purchases["customer"], minlength=size)
    first_purchase = _segment_start(bought)
    near = (rng.random(m) < 0.6) & (bought[customer] > 0)
    pick = first_purchase[customer] + np.floor(rng.random(m) * bought[customer]).astype(np.int64)
    pick = np.minimum(pick, max(len(purchases["day"]) - 1, 0))
    anywhere = begin[customer] + np.floor(rng.random(m) * (end - begin + 1)[customer]).astype(np.int64)
    near_day = purchases["day"][pick] + rng.integers(-1, 15, m) if len(purchases["day"]) else anywhere
    day = np.clip(np.where(near, near_day, anywhere), begin[customer], end[customer])

    persona = people["persona"][customer]
    kind = (rng.random(m)[:, None] > types.mix[persona]).sum(axis=1)
    kind = np.minimum(kind, len(types.codes) - 1) if len(types.codes) else kind
    step, top = types.step[kind], types.top[kind]
    raw = rng.gamma(1.6, 0.55, m) * SERVICE_QUANTITY_FACTOR[persona] * np.where(step >= 1, 0.6, 1.0)
    steps = np.clip(np.ceil(raw * np.where(step >= 1, 1.0, 1.0 / np.maximum(step, 0.01))), 1, top / step)
    quantity = np.round(steps * step * 100).astype(np.int64)  # hundredths

    notes = _NOTES.for_types(types.codes)
    note = notes.first[kind] + np.floor(rng.random(m) * notes.count[kind]).astype(np.int64)
    number = notes.low[note] + np.floor(rng.random(m) * (notes.high[note] - notes.low[note] + 1)).astype(np.int64)
    return {"customer": customer, "day": day, "type": kind, "quantity": quantity,
            "note": note, "number": number, "notes": notes}


@dataclass(frozen=True)
class _NoteTable:
    prefix: list[str]
    suffix: list[str]
    low: np.ndarray
    high: np.ndarray
    first: np.ndarray   # per type: index of its first template
    count: np.ndarray   # per type: number of templates
    prefix_bytes: np.ndarray
    suffix_bytes: np.ndarray


class _NoteTables:
    def __init__(self):
        self._cache = {}

    def for_types(self, codes: list[str]) -> _NoteTable:
        key = tuple(codes)
        if key not in self._cache:
            templates = [NOTE_TEMPLATES.get(code) or [(code.replace("_", " ").capitalize() + " ", "", 1, 9)]
                         for code in codes]
            flat = [t for group in templates for t in group]
            counts = np.array([len(group) for group in templates], dtype=np.int64)
            self._cache[key] = _NoteTable(
                prefix=[t[0] for t in flat], suffix=[t[1] for t in flat],
                low=np.array([t[2] for t in flat], dtype=np.int64),
                high=np.array([t[3] for t in flat], dtype=np.int64),
                first=_segment_start(counts), count=counts,
                prefix_bytes=_byte_table([t[0] for t in flat]),
                suffix_bytes=_byte_table([t[1] for t in flat]),
            )
        return self._cache[key]


_NOTES = _NoteTables()
