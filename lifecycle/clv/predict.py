"""Predicted CLV from a fitted BG/NBD and per-customer expected order values."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from .base import as_1d_float, check_rft, unique_int_rows, unique_rows
from .bgnbd import (
    A_NEAR_ONE,
    BgNbdParams,
    expected_purchases_unchecked,
    log_odds_dead,
    purchase_growth,
)

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


def compress_days(frequency, recency_days, T_days, time_unit_days: float = 7.0):
    """``compress`` for histories kept in whole days, without the inverse index.

    ``frequency``, ``recency_days`` and ``T_days`` are non-negative integer arrays; the
    triples come back as ``compress`` returns them for (frequency, recency_days /
    time_unit_days, T_days / time_unit_days), same values and same order, with their
    counts: one integer sort instead of a three-column lexsort.
    """
    (f, r, t), weights, _ = unique_int_rows(frequency, recency_days, T_days, return_inverse=False)
    return f.astype(float), r / time_unit_days, t / time_unit_days, weights


@dataclass(frozen=True)
class Forecast:
    """Per customer: P(alive), expected purchases over the horizon and the discounted
    expected purchases per month summed over it (predicted CLV per unit of order value)."""

    p_alive: np.ndarray
    expected_purchases: np.ndarray
    discounted_purchases: np.ndarray


class PairMemo:
    """The per-(frequency, T) part of ``bgnbd_forecast``, kept across calls.

    Scoring a run chunk by chunk meets the same (frequency, T) pairs in every chunk; with a
    memo their hypergeometric terms are evaluated once for the run. Entries are keyed by the
    caller's integer pair keys (which must encode the pairs the same way in every call) and
    belong to one set of parameters and horizon: another set starts the memo afresh. The
    figures are the same with or without it. Threads scoring chunks side by side may share one:
    a lock keeps the keys and their values in step.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._signature: tuple | None = None
        self._keys = np.empty(0, dtype=np.int64)
        self._values = np.empty((2, 0))

    def values(self, signature: tuple, keys: np.ndarray, compute) -> np.ndarray:
        """(2, len(keys)) values for sorted distinct ``keys``; ``compute(mask)`` evaluates
        the keys[mask] not seen before."""
        with self._lock:
            return self._values_locked(signature, keys, compute)

    def _values_locked(self, signature: tuple, keys: np.ndarray, compute) -> np.ndarray:
        if signature != self._signature:
            self._signature, self._keys, self._values = signature, np.empty(0, dtype=np.int64), np.empty((2, 0))
        position = np.minimum(np.searchsorted(self._keys, keys), max(self._keys.size - 1, 0))
        seen = self._keys[position] == keys if self._keys.size else np.zeros(keys.size, dtype=bool)
        result = np.empty((2, keys.size))
        result[:, seen] = self._values[:, position[seen]]
        missing = ~seen
        if missing.any():
            result[:, missing] = compute(missing)
            merged = np.concatenate([self._keys, keys[missing]])
            order = np.argsort(merged, kind="stable")
            self._keys, self._values = merged[order], np.concatenate([self._values, result[:, missing]], axis=1)[:, order]
        return result


def bgnbd_forecast(
    bg: BgNbdParams,
    frequency,
    recency,
    T,
    *,
    horizon_months: int = 12,
    annual_discount_rate: float = 0.10,
    time_unit_days: float = 7.0,
    T_days=None,
    memo: PairMemo | None = None,
) -> Forecast:
    """P(alive), E[purchases over the horizon] and the discounted sum that ``predicted_clv``
    multiplies by the order value, in one pass.

    Eq. (10) is growth(x, T, t) / (1 + odds(x, t_x, T)): the hypergeometric growth is
    evaluated once per distinct (frequency, T) pair for every month end of the horizon,
    and the odds once per customer serve all three figures. ``T_days``, when given, is T in
    whole days (T = T_days / time_unit_days) with whole-number frequencies: the pairs are then
    found as integers, without sorting floats, and a ``memo`` can carry the pairs' terms from
    one call to the next.
    """
    x, t_x, t_cal = check_rft(frequency, recency, T, allow_empty=True)
    _check_horizon(horizon_months, time_unit_days)
    if memo is not None and T_days is None:
        raise ValueError("a memo needs T in whole days")
    if T_days is not None:
        frequency_int, T_days = x.astype(np.int64), np.asarray(T_days)
        if not (np.array_equal(frequency_int, x) and np.array_equal(T_days / time_unit_days, t_cal)):
            raise ValueError("T_days must be T in whole days, and frequencies whole numbers")
        if x.size and T_days.max() >= 2**32:
            raise ValueError("T_days must stay below 2**32")
    horizon = horizon_months * DAYS_PER_MONTH / time_unit_days
    months = np.arange(1, int(horizon_months) + 1, dtype=float)
    if x.size == 0:
        return Forecast(np.ones(0), np.zeros(0), np.zeros(0))
    # as bgnbd_p_alive and odds_dead compute them, from one evaluation of the log-odds
    repeat = x > 0
    log_odds = log_odds_dead(bg, x, t_x, t_cal)
    p_alive = np.where(repeat, expit(-log_odds), 1.0)
    if abs(bg.a - 1.0) < A_NEAR_ONE:
        # eq. (10) is averaged across a == 1 as a whole; no shortcut through shared terms
        expected = expected_purchases_unchecked(bg, horizon, x, t_x, t_cal)
        discounted = _discounted_sum(bg, months, annual_discount_rate, time_unit_days, x, t_x, t_cal)
        return Forecast(p_alive, expected, discounted)

    if T_days is None:
        (ux, uT), _, inverse = unique_rows(x, t_cal)
    else:
        (ux_int, uT_days), _, inverse = unique_int_rows(frequency_int, T_days)
        ux, uT = ux_int.astype(float), uT_days / time_unit_days  # the customers' own values (checked above)
        keys = (ux_int << 32) + uT_days  # the same pair, the same key, in every call

    def pair_values(mask=slice(None)):
        return _pair_growth(bg, ux[mask], uT[mask], months, horizon, annual_discount_rate, time_unit_days)

    if memo is None:
        at_horizon, discounted_growth = pair_values()
    else:
        signature = (bg, int(horizon_months), float(annual_discount_rate), float(time_unit_days))
        at_horizon, discounted_growth = memo.values(signature, keys, pair_values)
    one_plus_odds = 1.0 + np.where(repeat, np.exp(log_odds), 0.0)
    return Forecast(
        p_alive=p_alive,
        expected_purchases=at_horizon[inverse] / one_plus_odds,
        discounted_purchases=discounted_growth[inverse] / one_plus_odds,
    )


def _pair_growth(bg, x, t_cal, months, horizon, annual_discount_rate, time_unit_days) -> np.ndarray:
    """Per (x, T): the growth at the horizon and sum_m (growth(m) - growth(m-1)) / (1 + d)^m."""
    # month ends as predicted_clv takes them, the horizon as the expected purchases do
    t = months * (DAYS_PER_MONTH / time_unit_days)
    same_end = months.size > 0 and t[-1] == horizon
    ends = t if same_end else np.append(t, horizon)
    growth = purchase_growth(bg, ends[:, None], x, t_cal)  # (month ends, pairs)
    per_month = np.diff(growth[: months.size], axis=0, prepend=0.0)
    discount = (1.0 + monthly_discount_rate(annual_discount_rate)) ** -months
    discounted = np.add.reduce(discount[:, None] * per_month, axis=0) if months.size else np.zeros(x.size)
    return np.vstack([growth[-1], discounted])


def _check_horizon(horizon_months, time_unit_days) -> None:
    if int(horizon_months) != horizon_months or horizon_months < 0:
        raise ValueError("horizon_months must be a non-negative integer")
    if time_unit_days <= 0:
        raise ValueError("time_unit_days must be positive")


def _discounted_sum(bg, months, annual_discount_rate, time_unit_days, x, t_x, t_cal) -> np.ndarray:
    """sum_m (E[Y(m)] - E[Y(m-1)]) / (1 + d)^m, straight from eq. (10) per month."""
    if months.size == 0:
        return np.zeros(x.size)
    t = months[:, None] * (DAYS_PER_MONTH / time_unit_days)
    cumulative = expected_purchases_unchecked(bg, t, x, t_x, t_cal)
    per_month = np.diff(cumulative, axis=0, prepend=0.0)
    discount = (1.0 + monthly_discount_rate(annual_discount_rate)) ** -months
    return np.add.reduce(discount[:, None] * per_month, axis=0)


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
    _check_horizon(horizon_months, time_unit_days)
    months = np.arange(1, int(horizon_months) + 1, dtype=float)
    return _discounted_sum(bg, months, annual_discount_rate, time_unit_days, x, t_x, t_cal) * value
