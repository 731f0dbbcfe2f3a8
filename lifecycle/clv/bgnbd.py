"""BG/NBD model of the purchase process (Fader, Hardie & Lee 2005).

References
- Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way: An Alternative to
  the Pareto/NBD Model", Marketing Science 24(2): likelihood eq. (6), conditional
  expectation eq. (10).
- Fader, Hardie & Lee (2008), "Computing P(alive) Using the BG/NBD Model" (note 021).

Conventions: ``frequency`` x = number of repeat purchases, ``recency`` t_x = time of the
last purchase measured from the first, ``T`` = time from the first purchase to the end
of observation; recency and T in the same unit (weeks by default in this project).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1, polygamma

from .base import (
    FitResult,
    as_1d_float,
    check_rft,
    check_weights,
    maximise_log_likelihood,
    subsample,
    unique_inverse,
    unique_rows,
    wsum,
)

_NAMES = ("r", "alpha", "a", "b")
# Eq. (10) is 0/0 at a == 1: within this distance it is taken as the mean of a = 1 -+ 1e-5.
A_NEAR_ONE = 1e-7


@dataclass(frozen=True)
class BgNbdParams:
    r: float
    alpha: float
    a: float
    b: float

    def as_dict(self) -> dict[str, float]:
        return {"r": self.r, "alpha": self.alpha, "a": self.a, "b": self.b}


def _terms(r, alpha, a, b, x, t_x, t_cal):
    """The pieces of log L_i = A1 + A2 + log(exp(A3) + [x>0] exp(A4))."""
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = betaln(a, b + x) - betaln(a, b)
    a3 = -(r + x) * np.log(alpha + t_cal)
    repeat = x > 0
    # B(a+1, b+x-1)/B(a, b+x) = a / (b+x-1); the guard keeps x == 0 rows finite (masked anyway).
    a4 = np.log(a) - np.log(b + np.maximum(x, 1) - 1) - (r + x) * np.log(alpha + t_x)
    return a1, a2, a3, a4, repeat


def _individual_ll(params: np.ndarray, x, t_x, t_cal) -> np.ndarray:
    r, alpha, a, b = params
    a1, a2, a3, a4, repeat = _terms(r, alpha, a, b, x, t_x, t_cal)
    # log-sum-exp of A3 and A4 (A4 only for repeat buyers)
    top = np.where(repeat, np.maximum(a3, a4), a3)
    tail = np.exp(a3 - top) + np.where(repeat, np.exp(a4 - top), 0.0)
    return a1 + a2 + top + np.log(tail)


def bgnbd_log_likelihood(params: BgNbdParams, frequency, recency, T, weights=None) -> float:
    """Total (weighted) log-likelihood, eq. (6) of FHL 2005."""
    x, t_x, t_cal = check_rft(frequency, recency, T)
    w = check_weights(weights, x.size)
    values = np.array([params.r, params.alpha, params.a, params.b], dtype=float)
    return wsum(w, _individual_ll(values, x, t_x, t_cal))


class _Prepared:
    """Data laid out for fast repeated likelihood evaluations.

    log L_i = A1 + A2 + A3 + [x>0] log(1 + exp(A4 - A3)) with A1 + A2 a function of x,
    A3 = -(r + x) log(alpha + T). Terms in x alone are evaluated per distinct x and
    terms in (x, T) through per-T weight sums, so only the repeat-buyer mixture term
    costs a pass over the rows. The repeat buyers' rows are grouped by x, so sums per x
    are contiguous slices (np.add.reduceat).
    """

    def __init__(self, x, t_x, t_cal, w):
        self.w_total = float(w.sum())
        self.ux, ix = unique_inverse(x)
        self.w_x = np.bincount(ix, weights=w, minlength=self.ux.size)  # weight per distinct x
        self.uT, iT = unique_inverse(t_cal)
        self.w_T = np.bincount(iT, weights=w, minlength=self.uT.size)  # weight per distinct T
        self.wx_T = np.bincount(iT, weights=w * x, minlength=self.uT.size)  # weighted x per T
        rep = np.flatnonzero(x > 0)
        if np.any(np.diff(x[rep]) < 0):
            rep = rep[np.argsort(x[rep], kind="stable")]
        self.x_rep = x[rep]
        self.w_rep = w[rep]
        self.iT_rep = iT[rep]
        self.utx, self.itx_rep = unique_inverse(t_x[rep])
        self.ux_rep, self.ix_rep = unique_inverse(self.x_rep)
        self.x_starts = np.searchsorted(self.x_rep, self.ux_rep)  # first row of each distinct x

    def nll_and_grad(self, u: np.ndarray):
        return self.evaluate(u, hessian=False)

    def nll_grad_hess(self, u: np.ndarray):
        return self.evaluate(u, hessian=True)

    def _per_x(self, values: np.ndarray) -> np.ndarray:
        """Sums of a repeat-row array per distinct x."""
        if values.size == 0:
            return np.zeros(self.ux_rep.size)
        return np.add.reduceat(values, self.x_starts)

    def evaluate(self, u: np.ndarray, *, hessian: bool):
        """Mean negative log-likelihood at log-parameters u, its gradient and (when asked) its
        Hessian in u. Derivatives are taken in (r, alpha, a, b) and carried over to u = log:
        d/du_i = theta_i d/dtheta_i, d2/du_i du_j = theta_i theta_j d2/dtheta_i dtheta_j
        + [i = j] theta_i d/dtheta_i."""
        theta = np.exp(u)
        r, alpha, a, b = theta
        ux, w_x = self.ux, self.w_x
        # A1 + A2 per distinct x
        a12 = gammaln(r + ux) - gammaln(r) + r * np.log(alpha) + betaln(a, b + ux) - betaln(a, b)
        d_a_x = digamma(a + b) - digamma(a + b + ux)
        total = wsum(w_x, a12)
        g_r = wsum(w_x, digamma(r + ux) - digamma(r) + np.log(alpha))
        g_alpha = r / alpha * self.w_total
        g_a = wsum(w_x, d_a_x)
        g_b = wsum(w_x, d_a_x + digamma(b + ux) - digamma(b))

        # A3 summed through the per-T sums: sum_i w_i (r + x_i) log(alpha + T_i)
        log_at = np.log(alpha + self.uT)
        inv_at = 1.0 / (alpha + self.uT)
        rw_T = r * self.w_T + self.wx_T
        total -= wsum(rw_T, log_at)
        g_r -= wsum(self.w_T, log_at)
        g_alpha -= wsum(rw_T, inv_at)

        # Repeat buyers: delta = A4 - A3; log(e^A3 + e^A4) = A3 + softplus(delta)
        rx = r + self.x_rep
        inv_atx = 1.0 / (alpha + self.utx)
        gap = log_at[self.iT_rep] - np.log(alpha + self.utx)[self.itx_rep]  # log((alpha+T)/(alpha+t_x)) >= 0
        b_x1 = b + self.ux_rep - 1
        inv_b_x1 = 1.0 / b_x1
        delta = (np.log(a) - np.log(b_x1))[self.ix_rep] + rx * gap
        # softplus and sigmoid from one exp and one log1p (scipy's expit/logaddexp cost
        # several times more per element)
        e = np.exp(-np.abs(delta))
        inv_1e = 1.0 / (1.0 + e)
        w4 = self.w_rep * np.where(delta >= 0, 1.0, e) * inv_1e  # weight x P(second term)
        total += wsum(self.w_rep, np.maximum(delta, 0.0) + np.log1p(e))
        h = inv_at[self.iT_rep] - inv_atx[self.itx_rep]  # d gap / d alpha
        w4_rx = w4 * rx
        g_r += wsum(w4, gap)
        g_alpha += wsum(w4_rx, h)
        w4_sum_x = self._per_x(w4)
        g_a += w4_sum_x.sum() / a
        g_b -= wsum(w4_sum_x, inv_b_x1)

        grad_theta = np.array([g_r, g_alpha, g_a, g_b])
        value = -total / self.w_total
        grad = -theta * grad_theta / self.w_total
        if not hessian:
            return value, grad

        # Hessian in theta. A1 + A2 and A3:
        trigamma_ab = polygamma(1, a + b) - polygamma(1, a + b + ux)
        h_rr = wsum(w_x, polygamma(1, r + ux) - polygamma(1, r))
        h_r_alpha = self.w_total / alpha - wsum(self.w_T, inv_at)
        h_alpha_alpha = -r * self.w_total / alpha**2 + wsum(rw_T, inv_at * inv_at)
        h_aa = h_ab = wsum(w_x, trigamma_ab)
        h_bb = wsum(w_x, trigamma_ab + polygamma(1, b + ux) - polygamma(1, b))
        # softplus(delta): sum w [s(1-s) d_i d_j + s d_ij] with s = sigmoid(delta);
        # d_r = gap, d_alpha = (r+x) h, d_a = 1/a, d_b = -1/(b+x-1);
        # d_r_alpha = h, d_alpha_alpha = (r+x) (1/(alpha+t_x)^2 - 1/(alpha+T)^2), d_aa = -1/a^2, d_bb = 1/(b+x-1)^2.
        q = self.w_rep * e * inv_1e * inv_1e  # w s (1 - s)
        d_alpha = rx * h
        q_gap = q * gap
        q_d_alpha = q * d_alpha
        k = (inv_atx * inv_atx)[self.itx_rep] - (inv_at * inv_at)[self.iT_rep]
        q_x, q_gap_x, q_d_alpha_x = self._per_x(q), self._per_x(q_gap), self._per_x(q_d_alpha)
        h_rr += wsum(q_gap, gap)
        h_r_alpha += wsum(q_gap, d_alpha) + wsum(w4, h)
        h_ra = q_gap_x.sum() / a
        h_rb = -wsum(q_gap_x, inv_b_x1)
        h_alpha_alpha += wsum(q_d_alpha, d_alpha) + wsum(w4_rx, k)
        h_alpha_a = q_d_alpha_x.sum() / a
        h_alpha_b = -wsum(q_d_alpha_x, inv_b_x1)
        h_aa += (q_x.sum() - w4_sum_x.sum()) / a**2
        h_ab -= wsum(q_x, inv_b_x1) / a
        h_bb += wsum(q_x + w4_sum_x, inv_b_x1 * inv_b_x1)
        hess_theta = np.array(
            [
                [h_rr, h_r_alpha, h_ra, h_rb],
                [h_r_alpha, h_alpha_alpha, h_alpha_a, h_alpha_b],
                [h_ra, h_alpha_a, h_aa, h_ab],
                [h_rb, h_alpha_b, h_ab, h_bb],
            ]
        )
        hess = -(np.outer(theta, theta) * hess_theta + np.diag(theta * grad_theta)) / self.w_total
        return value, grad, hess


def _start(x, t_cal, w) -> np.ndarray:
    """A scale-aware start: r = 1 and alpha from the mean purchase rate."""
    mean_x = max(wsum(w, x) / w.sum(), 1e-3)
    mean_t = max(wsum(w, t_cal) / w.sum(), 1e-3)
    return np.log(np.array([1.0, mean_t / mean_x, 1.0, 1.0]))


def bgnbd_fit(frequency, recency, T, weights=None) -> FitResult:
    """Maximum-likelihood fit. Raises ValueError on bad input, never on non-convergence."""
    x, t_x, t_cal = check_rft(frequency, recency, T)
    w = check_weights(weights, x.size)
    keep = w > 0
    x, t_x, t_cal, w = x[keep], t_x[keep], t_cal[keep], w[keep]
    # Fit in time units of the mean T (alpha scales with time, r, a, b do not); the
    # likelihood of the original data differs by sum w x log(scale).
    scale = wsum(w, t_cal) / w.sum() or 1.0
    t_x, t_cal = t_x / scale, t_cal / scale
    prepared = _Prepared(x, t_x, t_cal, w)
    w_total = prepared.w_total
    sample = subsample(x.size)
    warm_up = None if sample is None else _Prepared(x[sample], t_x[sample], t_cal[sample], w[sample])
    any_repeat = bool(np.any(x > 0))
    # Without a repeat buyer a and b do not enter the likelihood: its Hessian is singular.
    u, mean_nll, converged, message, iterations = maximise_log_likelihood(
        prepared, _start(x, t_cal, w), _NAMES, warm_up=warm_up, fallback=any_repeat, newton=any_repeat
    )
    if not any_repeat:
        # a and b then do not enter the likelihood at all
        converged, message = False, "no customer has a repeat purchase: the model is not identified"
    r, alpha, a, b = (float(v) for v in np.exp(u))
    return FitResult(
        params=BgNbdParams(r=r, alpha=alpha * scale, a=a, b=b),
        log_likelihood=float(-mean_nll * w_total - wsum(w, x) * np.log(scale)),
        converged=converged,
        message=message,
        n=w_total,
        iterations=iterations,
    )


def bgnbd_p_alive(params: BgNbdParams, frequency, recency, T) -> np.ndarray:
    """P(alive | x, t_x, T) (FHL note 021); 1 for customers without repeat purchases."""
    x, t_x, t_cal = check_rft(frequency, recency, T, allow_empty=True)
    return np.where(x > 0, expit(-log_odds_dead(params, x, t_x, t_cal)), 1.0)


def _log_hyp_term(r, alpha, a, b, x, t_cal, t):
    """log of ((alpha+T)/(alpha+T+t))^(r+x) * 2F1(r+x, b+x; a+b+x-1; z), z = t/(alpha+T+t).

    The direct 2F1 diverges like (1-z)^(a-1-r-x) for large x; Euler's transformation
    2F1(A,B;C;z) = (1-z)^(C-A-B) 2F1(C-A, C-B; C; z) turns the product into
    (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z), whose series behaves for every x.
    Where that evaluation is not finite, fall back to the direct form in logs (the
    same pair of forms lifetimes uses).
    """
    z = t / (alpha + t_cal + t)
    log_one_minus_z = np.log1p(-z)
    x, z, log_one_minus_z = np.broadcast_arrays(x, z, log_one_minus_z)
    with np.errstate(all="ignore"):
        result = (a - 1) * log_one_minus_z + np.log(hyp2f1(a + b - 1 - r, a - 1, a + b + x - 1, z))
        bad = ~np.isfinite(result)
        if np.any(bad):
            result = np.array(result, copy=True)
            result[bad] = (r + x[bad]) * log_one_minus_z[bad] + np.log(hyp2f1(r + x[bad], b + x[bad], a + b + x[bad] - 1, z[bad]))
    return result


def bgnbd_expected_purchases(params: BgNbdParams, t, frequency, recency, T) -> np.ndarray:
    """E[purchases in (T, T+t] | x, t_x, T], eq. (10) of FHL 2005.

    ``t`` is a scalar or an array broadcastable against the customers.
    """
    x, t_x, t_cal = check_rft(frequency, recency, T, allow_empty=True)
    t = np.asarray(t, dtype=float)
    if np.any(t < 0) or not np.all(np.isfinite(t)):
        raise ValueError("t must be finite and non-negative")
    return expected_purchases_unchecked(params, t, x, t_x, t_cal)


def expected_purchases_unchecked(params: BgNbdParams, t, x, t_x, t_cal) -> np.ndarray:
    """Eq. (10) on validated 1-D customer arrays.

    ``t`` is a scalar, an array with one horizon per customer, or a column of horizons
    of shape (H, 1) giving an (H, n) result. The hypergeometric part depends on (x, T, t)
    only, so for a scalar or a column of horizons it is evaluated once per distinct
    (x, T) pair and gathered: far fewer hyp2f1 calls than customers.
    """
    if abs(params.a - 1.0) < A_NEAR_ONE:
        # (a+b+x-1)/(a-1) * (1 - ...) is 0/0 at a == 1; the limit is the mean of both sides.
        low, high = around_a_equal_one(params)
        return (expected_purchases_unchecked(low, t, x, t_x, t_cal) + expected_purchases_unchecked(high, t, x, t_x, t_cal)) / 2
    t = np.asarray(t, dtype=float)
    if t.ndim == 0 or (t.ndim == 2 and t.shape[1] == 1):
        (ux, uT), _, inverse = unique_rows(np.broadcast_to(x, np.shape(t_cal)), np.broadcast_to(t_cal, np.shape(x)))
        growth = purchase_growth(params, t, ux, uT)[..., inverse]
    else:
        growth = purchase_growth(params, t, x, t_cal)
    return growth / (1.0 + odds_dead(params, x, t_x, t_cal))


def around_a_equal_one(params: BgNbdParams) -> tuple[BgNbdParams, BgNbdParams]:
    """The parameters with a just below and just above 1 (see A_NEAR_ONE)."""
    eps = 1e-5
    return (
        BgNbdParams(r=params.r, alpha=params.alpha, a=1.0 - eps, b=params.b),
        BgNbdParams(r=params.r, alpha=params.alpha, a=1.0 + eps, b=params.b),
    )


def purchase_growth(params: BgNbdParams, t, x, t_cal) -> np.ndarray:
    """The numerator of eq. (10): (a+b+x-1)/(a-1) * (1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(...)),
    a function of (x, T, t) only (for a != 1)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    return (a + b + x - 1) / (a - 1) * -np.expm1(_log_hyp_term(r, alpha, a, b, x, t_cal, t))


def log_odds_dead(params: BgNbdParams, x, t_x, t_cal) -> np.ndarray:
    """log of a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x): the odds of having dropped out after
    the last purchase against being alive (meaningful for x > 0 only)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    return np.log(a) - np.log(b + np.maximum(x, 1) - 1) + (r + x) * np.log((alpha + t_cal) / (alpha + t_x))


def odds_dead(params: BgNbdParams, x, t_x, t_cal) -> np.ndarray:
    """The odds of having dropped out; 0 without repeat purchases. P(alive) = 1 / (1 + odds)."""
    return np.where(x > 0, np.exp(log_odds_dead(params, x, t_x, t_cal)), 0.0)


def bgnbd_expected_purchases_new_customer(params: BgNbdParams, t) -> np.ndarray:
    """E[X(t)] for a customer just acquired, eq. (9) of FHL 2005."""
    t = as_1d_float("t", t)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    z = t / (alpha + t)
    hyp = hyp2f1(r, b, a + b - 1, z)
    return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp)
