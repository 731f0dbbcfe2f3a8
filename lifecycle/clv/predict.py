"""Predicted CLV from a fitted BG/NBD and per-customer expected order values."""

from __future__ import annotations

import numpy as np

from .bgnbd import BgNbdParams, expected_purchases_unchecked
from .base import as_1d_float, check_rft, unique_rows

DAYS_PER_MONTH = 365.25 / 12


def monthly_discount_rate(annual_rate: float) -> float:
    """The monthly rate equivalent to an annual one: (1 + annual)^(1/12) - 1."""
    if not np.isfinite(annual_rate) or annual_rate <= -1:
        raise ValueError("annual_rate must be finite and greater than -1")
    return float((1.0 + annual_rate) ** (1.0 / 12.0) - 1.0)


def compress(frequency, recency, T):
    """Distinct (frequency, recency, T) triples, their counts and the inverse index.

    ``uniq_f[inverse] == frequency`` (likewise for recency and T); the rows come out
    sorted by frequency, recency, T.
    """
    x, t_x, t_cal = check_rft(frequency, recency, T, allow_empty=True)
    (uniq_f, uniq_r, uniq_T), weights, inverse = unique_rows(x, t_x, t_cal)
    return uniq_f, uniq_r, uniq_T, weights, inverse


def predicted_clv(
    bg: BgNbdParams,
    expected_value,
    frequency,
    recency,
    T,
    *,
    horizon_months: int = 12,
    annual_discount_rate: float = 0.10,
    time_unit_days: float = 7.0,
) -> np.ndarray:
    """Discounted expected revenue over the next ``horizon_months`` months.

    sum_{m=1..H} (E[Y(m)] - E[Y(m-1)]) * expected_value / (1 + d)^m, with E[Y(m)] the
    conditional expected purchases in (T, T + m months] and d the monthly discount rate.
    A month is 365.25/12 days, converted to the model's time unit.
    """
    x, t_x, t_cal = check_rft(frequency, recency, T, allow_empty=True)
    value = as_1d_float("expected_value", expected_value) if np.ndim(expected_value) else np.full(x.size, float(expected_value))
    if value.shape != x.shape:
        raise ValueError("expected_value must have one entry per customer")
    if int(horizon_months) != horizon_months or horizon_months < 0:
        raise ValueError("horizon_months must be a non-negative integer")
    if time_unit_days <= 0:
        raise ValueError("time_unit_days must be positive")
    months = np.arange(1, int(horizon_months) + 1, dtype=float)
    if months.size == 0 or x.size == 0:
        return np.zeros(x.size)
    d = monthly_discount_rate(annual_discount_rate)
    t = months[:, None] * (DAYS_PER_MONTH / time_unit_days)
    cumulative = expected_purchases_unchecked(bg, t, x, t_x, t_cal)
    per_month = np.diff(np.vstack([np.zeros((1, x.size)), cumulative]), axis=0)
    discount = (1.0 + d) ** -months
    return (discount @ per_month) * value
