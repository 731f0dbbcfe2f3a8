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
from scipy.special import digamma, gammaln

from .base import FitResult, as_1d_float, check_weights, maximise_log_likelihood, subsample

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
    return float(np.dot(w[used], _individual_ll(params.p, params.q, params.v, x[used], m[used])))


class _Prepared:
    """Special functions of p x are evaluated once per distinct x and gathered; the
    logs of x and m_x are computed once."""

    def __init__(self, x, m, w):
        self.w = w
        self.w_total = float(w.sum())
        self.ux, self.ix = np.unique(x, return_inverse=True)
        self.w_x = np.bincount(self.ix, weights=w, minlength=self.ux.size)
        self.x = x
        self.xm = x * m
        self.wx = w * x
        # sum of w * (p x - 1) log m + p x log x, split into the p-free and p parts
        self.sum_w_log_m = float(np.dot(w, np.log(m)))
        self.sum_wx_log_xm = float(np.dot(self.wx, np.log(m) + np.log(x)))

    def nll_and_grad(self, u: np.ndarray):
        p, q, v = np.exp(u)
        pux = p * self.ux
        total = np.dot(self.w_x, gammaln(pux + q) - gammaln(pux)) - self.w_total * (gammaln(q) - q * np.log(v))
        total += p * self.sum_wx_log_xm - self.sum_w_log_m
        log_xm_v = np.log(self.xm + v)
        pxq = p * self.x + q
        total -= np.dot(self.w, pxq * log_xm_v)
        psi_pxq = digamma(pux + q)
        g_p = np.dot(self.w_x * self.ux, psi_pxq - digamma(pux)) + self.sum_wx_log_xm - np.dot(self.wx, log_xm_v)
        g_q = np.dot(self.w_x, psi_pxq) - self.w_total * (digamma(q) - np.log(v)) - np.dot(self.w, log_xm_v)
        g_v = self.w_total * q / v - np.dot(self.w, pxq / (self.xm + v))
        value = -total / self.w_total
        grad = -np.array([p * g_p, q * g_q, v * g_v]) / self.w_total
        return value, grad


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
    scale = float(np.dot(w, m) / w_total)
    m = m / scale

    # p = 1, q = 2 puts the mean spend at v = 1 (the mean, after scaling).
    start = np.log([1.0, 2.0, 1.0])
    sample = subsample(x.size)
    warm_up = None if sample is None else _Prepared(x[sample], m[sample], w[sample]).nll_and_grad
    u, mean_nll, converged, message, iterations = maximise_log_likelihood(
        _Prepared(x, m, w).nll_and_grad, start, _NAMES, warm_up=warm_up
    )
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
