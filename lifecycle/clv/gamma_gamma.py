"""Gamma-Gamma model of spend per transaction.

References
- Fader, Hardie & Lee (2005), "RFM and CLV: Using Iso-Value Curves for Customer Base
  Analysis", Journal of Marketing Research 42(4).
- Fader & Hardie (2013), "The Gamma-Gamma Model of Monetary Value" (note 025).

A customer with x repeat transactions has mean repeat spend m_x. Transaction values are
Gamma(p, nu); nu varies across customers as Gamma(q, v) (shape q, rate v). Only customers
with x > 0 (and a positive mean spend, the support of the gamma) inform the fit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import digamma, gammaln, polygamma

from .base import FitResult, as_1d_float, check_weights, maximise_log_likelihood, subsample, wsum

_NAMES = ("p", "q", "v")


@dataclass(frozen=True)
class GammaGammaParams:
    p: float
    q: float
    v: float

    def as_dict(self) -> dict[str, float]:
        return {"p": self.p, "q": self.q, "v": self.v}

    @property
    def population_mean(self) -> float:
        """E[Z] = p v / (q - 1); infinite when q <= 1."""
        return self.p * self.v / (self.q - 1) if self.q > 1 else float("inf")


def _check(frequency, monetary, *, allow_empty: bool = False):
    x = as_1d_float("frequency", frequency)
    m = as_1d_float("monetary", monetary)
    if x.shape != m.shape:
        raise ValueError("frequency and monetary must have the same length")
    if x.size == 0 and not allow_empty:
        raise ValueError("no customers given")
    if np.any(x < 0):
        raise ValueError("frequency must be non-negative")
    if np.any(m < 0):
        raise ValueError("monetary must be non-negative")
    return x, m


def _individual_ll(p, q, v, x, m):
    px = p * x
    return gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(v) + (px - 1) * np.log(m) + px * np.log(x) - (px + q) * np.log(x * m + v)


def gamma_gamma_log_likelihood(params: GammaGammaParams, frequency, monetary, weights=None) -> float:
    """Total (weighted) log-likelihood over the rows with frequency > 0 and monetary > 0."""
    x, m = _check(frequency, monetary)
    w = check_weights(weights, x.size)
    used = (x > 0) & (m > 0)
    return wsum(w[used], _individual_ll(params.p, params.q, params.v, x[used], m[used]))


class _Prepared:
    """Special functions of p x are evaluated once per distinct x and gathered; the
    logs of x and m_x are computed once. The only pass over the rows per evaluation is
    s = x m_x + v: its log, its inverse and their weighted sums."""

    def __init__(self, x, m, w):
        self.w = w
        self.w_total = float(w.sum())
        self.ux, ix = np.unique(x, return_inverse=True)
        self.w_x = np.bincount(ix, weights=w, minlength=self.ux.size)
        self.xm = x * m
        self.wx = w * x
        self.wx_total = float(self.wx.sum())
        # sum of w * (p x - 1) log m + p x log x, split into the p-free and p parts
        self.sum_w_log_m = wsum(w, np.log(m))
        self.sum_wx_log_xm = wsum(self.wx, np.log(m) + np.log(x))

    def nll_and_grad(self, u: np.ndarray):
        return self.evaluate(u, hessian=False)

    def nll_grad_hess(self, u: np.ndarray):
        return self.evaluate(u, hessian=True)

    def evaluate(self, u: np.ndarray, *, hessian: bool):
        """Mean negative log-likelihood at log-parameters u, its gradient and (when asked) its
        Hessian in u (from the derivatives in (p, q, v), as in the BG/NBD fit)."""
        theta = np.exp(u)
        p, q, v = theta
        w_total, ux, w_x = self.w_total, self.ux, self.w_x
        pux = p * ux
        s = self.xm + v
        log_s = np.log(s)
        inv_s = 1.0 / s
        # sums over the rows of w log s, w x log s, w / s, w x / s
        w_log_s, wx_log_s = wsum(self.w, log_s), wsum(self.wx, log_s)
        w_inv_s, wx_inv_s = wsum(self.w, inv_s), wsum(self.wx, inv_s)
        total = wsum(w_x, gammaln(pux + q) - gammaln(pux)) - w_total * (gammaln(q) - q * np.log(v))
        total += p * self.sum_wx_log_xm - self.sum_w_log_m - p * wx_log_s - q * w_log_s
        psi_pxq = digamma(pux + q)
        g_p = wsum(w_x * ux, psi_pxq - digamma(pux)) + self.sum_wx_log_xm - wx_log_s
        g_q = wsum(w_x, psi_pxq) - w_total * (digamma(q) - np.log(v)) - w_log_s
        g_v = w_total * q / v - p * wx_inv_s - q * w_inv_s
        grad_theta = np.array([g_p, g_q, g_v])
        value = -total / w_total
        grad = -theta * grad_theta / w_total
        if not hessian:
            return value, grad
        trigamma_pxq = polygamma(1, pux + q)
        inv_s2 = inv_s * inv_s
        h_pp = wsum(w_x * ux * ux, trigamma_pxq - polygamma(1, pux))
        h_pq = wsum(w_x * ux, trigamma_pxq)
        h_pv = -wx_inv_s
        h_qq = wsum(w_x, trigamma_pxq) - w_total * polygamma(1, q)
        h_qv = w_total / v - w_inv_s
        h_vv = -w_total * q / v**2 + p * wsum(self.wx, inv_s2) + q * wsum(self.w, inv_s2)
        hess_theta = np.array([[h_pp, h_pq, h_pv], [h_pq, h_qq, h_qv], [h_pv, h_qv, h_vv]])
        hess = -(np.outer(theta, theta) * hess_theta + np.diag(theta * grad_theta)) / w_total
        return value, grad, hess


def gamma_gamma_fit(frequency, monetary, weights=None) -> FitResult:
    """Maximum-likelihood fit on the repeat buyers (x > 0) with a positive mean spend.

    Raises ValueError on bad input or when no row is usable; never on non-convergence.
    A fit with q <= 1 (infinite mean spend) is reported as not converged.
    """
    x, m = _check(frequency, monetary)
    w = check_weights(weights, x.size)
    used = (x > 0) & (m > 0) & (w > 0)
    if not np.any(used):
        raise ValueError("no customer with repeat purchases and a positive spend")
    x, m, w = x[used], m[used], w[used]
    w_total = float(w.sum())
    # Fit on spend in units of its mean (v scales with money, p and q do not); the likelihood
    # of the original data differs by w_total * log(scale).
    scale = wsum(w, m) / w_total
    m = m / scale

    # p = 1, q = 2 puts the mean spend at v = 1 (the mean, after scaling).
    start = np.log([1.0, 2.0, 1.0])
    sample = subsample(x.size)
    warm_up = None if sample is None else _Prepared(x[sample], m[sample], w[sample])
    u, mean_nll, converged, message, iterations = maximise_log_likelihood(_Prepared(x, m, w), start, _NAMES, warm_up=warm_up)
    p, q, v = (float(value) for value in np.exp(u))
    if converged and q <= 1:
        converged, message = False, "q <= 1: the population mean spend is not finite"
    return FitResult(
        params=GammaGammaParams(p=p, q=q, v=v * scale),
        log_likelihood=float(-mean_nll * w_total - w_total * np.log(scale)),
        converged=converged,
        message=message,
        n=w_total,
        iterations=iterations,
    )


def gamma_gamma_expected_value(params: GammaGammaParams, frequency, monetary) -> np.ndarray:
    """E[M | x, m_x]: a weighted mean of the population mean and the customer's own mean.

    (q-1)/(p x + q - 1) * p v/(q-1) + p x/(p x + q - 1) * m_x; for x = 0 it is the
    population mean p v/(q-1).
    """
    x, m = _check(frequency, monetary, allow_empty=True)
    p, q, v = params.p, params.q, params.v
    if q <= 1:
        raise ValueError("q must exceed 1 for a finite expected spend")
    m = np.where(x > 0, m, 0.0)
    denominator = p * x + q - 1
    return (p * v + p * x * m) / denominator
