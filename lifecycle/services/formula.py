"""The domain formula CLV = average order value x purchase frequency x average lifespan.

- AOV = paid revenue / number of paid orders (orders, not merged days).
- Purchase frequency = paid orders per year since the first purchase day, over a tenure of at
  least one year (a customer who bought yesterday is not extrapolated to 365 orders a year).
- Lifespan = the average lifespan of the customer's segment, the segment being the acquisition
  channel. It is estimated from observed churn: a buyer counts as churned when the as-of day is
  more than `churn_days` (default 365) after their last purchase day. With lifetimes treated as
  exponential and the still-active buyers as censored, the maximum-likelihood mean lifespan is
  (total observed active time) / (number of churned buyers) = 1 / annual churn rate, where the
  active time of a churned buyer runs from the first to the last purchase day and that of an active
  buyer from the first purchase day to the as-of day.
  A channel needs at least MIN_CHURN_EVENTS churned buyers for its own figure; otherwise, and for
  customers without a channel, the overall figure is used. With no churn at all the lifespan is
  unknown from the data and the cap applies. Lifespans are capped at MAX_LIFESPAN_YEARS (10).
"""

from __future__ import annotations

import numpy as np

from lifecycle.clv.base import unique_inverse

from .aggregate import OrderStats

DAYS_PER_YEAR = 365.25
MAX_LIFESPAN_YEARS = 10.0
MIN_CHURN_EVENTS = 10


def _lifespan(exposure_days: float, churned: int) -> float:
    if churned == 0:
        return MAX_LIFESPAN_YEARS
    return float(min(exposure_days / churned / DAYS_PER_YEAR, MAX_LIFESPAN_YEARS))


def lifespans_by_channel(stats: OrderStats, *, as_of_day: int, churn_days: int) -> dict:
    """{"overall": years, "channels": {"<channel id>": years}, ...} over all buyers."""
    buyers = stats.purchase_days > 0
    first, last, channel = stats.first_day[buyers], stats.last_day[buyers], stats.channel_id[buyers]
    churned = (as_of_day - last) > churn_days
    exposure = np.where(churned, last - first, as_of_day - first).astype(np.float64)
    result = {
        "overall": _lifespan(float(exposure.sum()), int(churned.sum())),
        "churn_days": churn_days,
        "min_churn_events": MIN_CHURN_EVENTS,
        "channels": {},
    }
    if len(channel):
        ids, index = unique_inverse(channel)  # np.unique's result, through a table of the few channel ids
        churn_counts = np.bincount(index, weights=churned, minlength=len(ids))
        exposure_sums = np.bincount(index, weights=exposure, minlength=len(ids))
        for cid, n_churned, exposure_days in zip(ids, churn_counts, exposure_sums, strict=True):
            if cid != 0 and n_churned >= MIN_CHURN_EVENTS:
                result["channels"][str(int(cid))] = _lifespan(float(exposure_days), int(n_churned))
    return result


def lifespan_for(channel_id: np.ndarray, lifespans: dict) -> np.ndarray:
    years = np.full(len(channel_id), lifespans.get("overall", MAX_LIFESPAN_YEARS), dtype=np.float64)
    for cid, value in lifespans.get("channels", {}).items():
        years[channel_id == int(cid)] = value
    return years


def formula_values(stats: OrderStats, *, as_of_day: int, lifespans: dict) -> dict[str, np.ndarray]:
    """AOV (currency units), orders per year, lifespan (years) and formula CLV (currency units)."""
    orders = stats.orders_count.astype(np.float64)
    has_orders = orders > 0
    aov = np.divide(stats.paid_cents / 100.0, orders, out=np.zeros_like(orders), where=has_orders)
    tenure_years = np.maximum((as_of_day - stats.first_day) / DAYS_PER_YEAR, 1.0)
    frequency = np.where(has_orders, orders / tenure_years, 0.0)
    lifespan = lifespan_for(stats.channel_id, lifespans)
    return {"aov": aov, "purchase_frequency": frequency, "lifespan_years": lifespan, "formula_clv": aov * frequency * lifespan}
