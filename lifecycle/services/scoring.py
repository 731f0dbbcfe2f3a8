"""Per-customer model inputs, the model fits and the scores of one CLV run, all vectorised numpy.

`fit_models` runs once per run on every customer's (frequency, recency, T); `score_customers` turns
the arrays of a range of customers into the CustomerValue columns (see value_columns for the encoding).
The definitions are in lifecycle.services.clv_runs's docstring and the README."""

from __future__ import annotations

import numpy as np
from django.utils.translation import gettext as _

from lifecycle.clv.bgnbd import BgNbdParams, bgnbd_fit
from lifecycle.clv.gamma_gamma import GammaGammaParams, gamma_gamma_expected_value, gamma_gamma_fit
from lifecycle.clv.predict import PairMemo, bgnbd_forecast, compress_days
from lifecycle.models import ClvRun, RfmSegment

from .aggregate import OrderStats, day_number
from .formula import formula_values
from .rfm import SEGMENT_GRID, rfm_scores
from .value_columns import SEGMENTS

SEGMENT_CODES = {name: i for i, name in enumerate(SEGMENTS)}
# The segment code of each RFM grid cell, [r - 1, f - 1] (rfm.SEGMENT_GRID as codes).
SEGMENT_CODE_GRID = np.array([[SEGMENT_CODES[segment.value] for segment in row] for row in SEGMENT_GRID], dtype=np.int64)


def btyd_inputs(stats: OrderStats, *, as_of_day: int, unit_days: float) -> dict[str, np.ndarray]:
    """frequency, recency, T (time units) and the mean repeat transaction (currency) of buyers;
    recency and T also in whole days (recency_days, T_days), the exact keys of the triples."""
    buyers = stats.purchase_days > 0
    frequency = np.where(buyers, stats.purchase_days - 1, 0)
    recency_days = np.where(buyers, stats.last_day - stats.first_day, 0)
    age_days = np.where(buyers, as_of_day - stats.first_day, 0)
    repeat_cents = (stats.paid_cents - stats.first_day_cents).astype(np.float64)
    monetary = np.divide(repeat_cents / 100.0, frequency, out=np.zeros(len(stats)), where=frequency > 0)
    return {
        "buyers": buyers,
        "frequency": frequency,
        "recency": recency_days / unit_days,
        "T": age_days / unit_days,
        "recency_days": recency_days,
        "T_days": age_days,
        "monetary": monetary,
    }


def fit_models(run: ClvRun, btyd: dict[str, np.ndarray]) -> list[str]:
    """Fit both models onto `run` (unsaved); returns the problems, empty when both converged."""
    buyers = btyd["buyers"]
    problems: list[str] = []
    if not buyers.any():
        run.bgnbd_converged = run.gg_converged = None
        return [_("No customer has a paid order up to %(day)s: the models cannot be fitted.") % {"day": run.as_of}]
    f, r, t, weights = compress_days(
        btyd["frequency"][buyers], btyd["recency_days"][buyers], btyd["T_days"][buyers], time_unit_days=run.time_unit_days
    )
    run.n_triples = len(f)
    try:
        fit = bgnbd_fit(f, r, t, weights=weights)
    except ValueError as exc:
        run.bgnbd_converged = run.gg_converged = None
        return [f"BG/NBD: {exc}"]
    run.bgnbd_r, run.bgnbd_alpha, run.bgnbd_a, run.bgnbd_b = fit.params.r, fit.params.alpha, fit.params.a, fit.params.b
    run.bgnbd_log_likelihood, run.bgnbd_converged = _finite(fit.log_likelihood), fit.converged
    if not fit.converged:
        problems.append(f"BG/NBD: {fit.message}")
    repeat = buyers & (btyd["frequency"] > 0) & (btyd["monetary"] > 0)
    if not repeat.any():
        run.gg_converged = None
        problems.append(_("Gamma-Gamma: no customer has a repeat purchase with a positive value."))
        return problems
    try:
        gg = gamma_gamma_fit(btyd["frequency"][repeat], btyd["monetary"][repeat])
    except ValueError as exc:
        run.gg_converged = None
        return [*problems, f"Gamma-Gamma: {exc}"]
    run.gg_p, run.gg_q, run.gg_v = gg.params.p, gg.params.q, gg.params.v
    run.gg_log_likelihood, run.gg_converged = _finite(gg.log_likelihood), gg.converged
    if not gg.converged:
        problems.append(f"Gamma-Gamma: {gg.message}")
    return problems


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _null_unless(values: np.ndarray, keep: np.ndarray) -> np.ndarray:
    return np.where(keep, values, np.nan)


def score_customers(run: ClvRun, stats: OrderStats, *, memo: PairMemo | None = None) -> dict[str, np.ndarray]:
    """The CustomerValue columns of the customers in `stats` (see value_columns for the encoding).

    `memo` (one PairMemo per run, passed to every chunk scored in the same process) saves
    evaluating the model's hypergeometric terms again for (frequency, T) pairs of earlier
    chunks; the scores are the same without it."""
    n = len(stats)
    as_of_day = day_number(run.as_of)
    btyd = btyd_inputs(stats, as_of_day=as_of_day, unit_days=run.time_unit_days)
    buyers = btyd["buyers"]
    formula = formula_values(stats, as_of_day=as_of_day, lifespans=run.lifespans)

    p_alive = expected = order_value = clv = np.zeros(n)
    bg_ok = bool(run.bgnbd_converged) and bool(buyers.any())
    gg_ok = bg_ok and bool(run.gg_converged)
    if bg_ok:
        bg = BgNbdParams(r=run.bgnbd_r, alpha=run.bgnbd_alpha, a=run.bgnbd_a, b=run.bgnbd_b)
        frequency = btyd["frequency"][buyers]
        # The hypergeometric terms (the costly part) depend on (frequency, T) only: evaluated per
        # distinct pair, found from whole days.
        forecast = bgnbd_forecast(
            bg,
            frequency,
            btyd["recency"][buyers],
            btyd["T"][buyers],
            horizon_months=run.horizon_months,
            annual_discount_rate=float(run.annual_discount_rate),
            time_unit_days=run.time_unit_days,
            T_days=btyd["T_days"][buyers],
            memo=memo,
        )
        p_alive, expected = np.zeros(n), np.zeros(n)
        p_alive[buyers] = np.clip(forecast.p_alive, 0.0, 1.0)
        expected[buyers] = forecast.expected_purchases
        if gg_ok:
            gg = GammaGammaParams(p=run.gg_p, q=run.gg_q, v=run.gg_v)
            order_value, clv = np.zeros(n), np.zeros(n)
            order_value[buyers] = gamma_gamma_expected_value(gg, frequency, btyd["monetary"][buyers])
            clv[buyers] = forecast.discounted_purchases * order_value[buyers]

    cuts = run.rfm_cutpoints
    r_score = f_score = m_score = np.zeros(n, dtype=np.int64)
    segment = np.full(n, SEGMENT_CODES[RfmSegment.NO_PURCHASES.value], dtype=np.int64)
    if buyers.any() and cuts.get("recency"):
        scores = rfm_scores(
            recency_days=as_of_day - stats.last_day, frequency=stats.purchase_days, monetary=stats.paid_cents, cutpoints=cuts
        )
        r_score, f_score, m_score = (np.where(buyers, s, 0).astype(np.int64) for s in scores)
        segment = np.where(buyers, SEGMENT_CODE_GRID[np.maximum(r_score, 1) - 1, np.maximum(f_score, 1) - 1], segment)

    return {
        "customer_id": stats.customer_id,
        "orders_count": stats.orders_count,
        "refund_cents": stats.refund_cents,
        "paid_cents": stats.paid_cents,
        "aov": formula["aov"],
        "purchase_frequency": formula["purchase_frequency"],
        "lifespan_years": formula["lifespan_years"],
        "formula_clv": formula["formula_clv"],
        "frequency": _null_unless(btyd["frequency"].astype(np.float64), buyers),
        "recency": _null_unless(btyd["recency"], buyers),
        "T": _null_unless(btyd["T"], buyers),
        "monetary_value": _null_unless(btyd["monetary"], buyers),
        "p_alive": _null_unless(p_alive, buyers & bg_ok),
        "expected_purchases": _null_unless(expected, buyers & bg_ok),
        "expected_order_value": _null_unless(order_value, buyers & gg_ok),
        "predicted_clv": _null_unless(clv, buyers & gg_ok),
        "r_score": r_score,
        "f_score": f_score,
        "m_score": m_score,
        "segment": segment,
    }
