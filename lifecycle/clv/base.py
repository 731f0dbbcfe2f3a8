"""Shared pieces of the CLV models: the fit result, input checks and the optimiser.

Everything here is plain numpy/scipy; no Django. The models are fitted by maximum
likelihood in log-parameter space (every parameter is positive), on data that may
be compressed to distinct rows with integer weights (see ``predict.compress``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import optimize

# The models fit on data rescaled to unit mean time / spend (see the fit functions), so every
# parameter of a real customer base sits well within exp(+-10). A likelihood that keeps rising
# towards 0 or infinity (a shape parameter running off: no heterogeneity left to estimate,
# fixed-price spend, no repeat buyers) carries the optimiser out there: such a fit is reported
# as not converged. The box itself is a little wider so the optimiser can show the drift.
LOG_BOUND = 12.0
PLAUSIBLE_LOG = 10.0
# The optimum must be a strict maximum: the Hessian of the mean negative log-likelihood
# (in log-parameter space) must be positive definite with a sane condition number.
_MIN_RELATIVE_EIGENVALUE = 1e-9
_MAX_GRADIENT = 1e-3
_MAX_GRADIENT_AFTER_STOP = 1e-6


@dataclass(frozen=True)
class FitResult:
    """Outcome of a maximum-likelihood fit, shared by BG/NBD and Gamma-Gamma."""

    params: object  # BgNbdParams or GammaGammaParams
    log_likelihood: float  # total weighted log-likelihood at the optimum
    converged: bool
    message: str
    n: float  # weighted number of customers used
    iterations: int = 0


def as_1d_float(name: str, values) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim == 0:
        array = array.reshape(1)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite")
    return array


def check_weights(weights, n: int) -> np.ndarray:
    if weights is None:
        return np.ones(n)
    w = as_1d_float("weights", weights)
    if w.shape[0] != n:
        raise ValueError("weights must have one entry per row")
    if np.any(w < 0):
        raise ValueError("weights must be non-negative")
    if w.sum() <= 0:
        raise ValueError("weights must not all be zero")
    return w


def check_rft(frequency, recency, T, *, allow_empty: bool = False):
    """Validate (frequency, recency, T) in the buy-till-you-die convention."""
    x = as_1d_float("frequency", frequency)
    t_x = as_1d_float("recency", recency)
    t_cal = as_1d_float("T", T)
    if not (x.shape == t_x.shape == t_cal.shape):
        raise ValueError("frequency, recency and T must have the same length")
    if x.size == 0 and not allow_empty:
        raise ValueError("no customers given")
    if np.any(x < 0) or np.any(t_x < 0) or np.any(t_cal < 0):
        raise ValueError("frequency, recency and T must be non-negative")
    if np.any(t_x > t_cal):
        raise ValueError("recency must not exceed T")
    if np.any((x == 0) & (t_x != 0)):
        raise ValueError("recency must be 0 for customers without repeat purchases")
    return x, t_x, t_cal


def unique_rows(*columns: np.ndarray) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Distinct rows of equal-length 1-D columns: (unique columns, counts, inverse).

    A lexsort with neighbour comparison; several times faster than
    ``np.unique(axis=0)`` on a million rows.
    """
    n = columns[0].size
    if n == 0:
        return [np.empty(0) for _ in columns], np.empty(0), np.empty(0, dtype=np.intp)
    order = np.lexsort(columns[::-1])
    ordered = [column[order] for column in columns]
    new = np.zeros(n, dtype=bool)
    new[0] = True
    for column in ordered:
        new[1:] |= column[1:] != column[:-1]
    starts = np.flatnonzero(new)
    counts = np.diff(np.append(starts, n)).astype(float)
    inverse = np.empty(n, dtype=np.intp)
    inverse[order] = np.cumsum(new) - 1
    return [column[starts] for column in ordered], counts, inverse


def maximise_log_likelihood(
    mean_nll_and_grad: Callable[[np.ndarray], tuple[float, np.ndarray]],
    start: np.ndarray,
    names: tuple[str, ...],
    warm_up: Callable[[np.ndarray], tuple[float, np.ndarray]] | None = None,
    fallback: bool = True,
) -> tuple[np.ndarray, float, bool, str, int]:
    """Minimise a mean negative log-likelihood over log-parameters.

    ``warm_up``, when given, is the same objective on a random subsample: it is
    minimised first (cheaply) and its optimum starts the full fit, which then needs
    only a few evaluations on all rows. Returns (log_params, mean_nll, converged,
    message, iterations). Never raises on non-convergence: the caller reports
    ``converged=False`` with the message.
    """
    bounds = [(-LOG_BOUND, LOG_BOUND)] * len(start)
    if warm_up is not None:
        warm = optimize.minimize(
            _guarded(warm_up), start, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": 500}
        )
        if np.all(np.isfinite(warm.x)) and np.all(np.abs(warm.x) < LOG_BOUND - 1):
            start = np.asarray(warm.x, dtype=float)

    safe = _guarded(mean_nll_and_grad)

    def lbfgs(u0):
        return optimize.minimize(
            safe,
            u0,
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": 2000, "ftol": 1e-13, "gtol": 1e-9},
        )

    result = lbfgs(start)
    iterations = int(result.nit)
    verdict = _verdict(result, safe, names)
    drifted = bool(np.any(np.abs(result.x) > PLAUSIBLE_LOG))
    if fallback and not verdict[0] and not drifted:
        # A second route for awkward surfaces: simplex from the start, then polish. (Not when a
        # parameter ran off: that is the likelihood's shape, which another route only confirms.)
        simplex = optimize.minimize(
            lambda u: safe(u)[0],
            start,
            method="Nelder-Mead",
            options={"maxiter": 300 * len(start), "xatol": 1e-8, "fatol": 1e-12},
        )
        polished = lbfgs(np.clip(simplex.x, -LOG_BOUND, LOG_BOUND))
        iterations += int(simplex.nit) + int(polished.nit)
        if polished.fun <= result.fun:
            result = polished
            verdict = _verdict(result, safe, names)
    converged, message = verdict
    return np.asarray(result.x, dtype=float), float(result.fun), converged, message, iterations


def _guarded(fun_and_grad):
    """Turn overflow/NaN into a huge value so the line search backs off."""

    def safe(u):
        with np.errstate(all="ignore"):
            value, grad = fun_and_grad(u)
        if not np.isfinite(value) or not np.all(np.isfinite(grad)):
            return 1e300, np.zeros_like(u)
        return value, grad

    return safe


def subsample(n_rows: int, size: int = 20_000) -> np.ndarray | None:
    """Row indices of a fixed-seed uniform subsample (None when the data are small).

    Keeping each sampled row's own weight keeps the subsample likelihood an unbiased
    (scaled) estimate of the full one; the seed keeps re-runs reproducible.
    """
    if n_rows <= 2 * size:
        return None
    return np.sort(np.random.default_rng(20050101).choice(n_rows, size=size, replace=False))


def _verdict(result, fun_and_grad, names) -> tuple[bool, str]:
    u = np.asarray(result.x, dtype=float)
    drifted = [name for name, value in zip(names, u, strict=True) if abs(value) > PLAUSIBLE_LOG]
    if drifted:
        return False, f"parameter(s) {', '.join(drifted)} ran off towards 0 or infinity: the data do not identify the model"
    message = str(result.message)
    if not np.isfinite(result.fun) or result.fun >= 1e299:
        return False, "log-likelihood is not finite at the optimum"
    grad = fun_and_grad(u)[1]
    largest = float(np.max(np.abs(grad)))
    if not result.success:
        # L-BFGS-B's line search gives up ("ABNORMAL") once the likelihood no longer changes
        # above rounding, which on large data can happen at the optimum itself; only a
        # (near-)zero gradient makes that a converged fit.
        if largest > _MAX_GRADIENT_AFTER_STOP:
            return False, f"optimiser did not converge: {message}"
        message = f"gradient zero at the optimum (max |g| = {largest:.1e}); optimiser stopped: {message}"
    if largest > _MAX_GRADIENT:
        return False, f"gradient not zero at the optimum (max |g| = {largest:.2e})"
    hessian = numerical_hessian(lambda v: fun_and_grad(v)[1], u, grad)
    eigenvalues = np.linalg.eigvalsh(hessian)
    top = max(float(np.max(np.abs(eigenvalues))), 1e-300)
    if eigenvalues[0] <= _MIN_RELATIVE_EIGENVALUE * top:
        return False, "the optimum is not a strict maximum (flat or singular likelihood): the data do not identify the model"
    return True, message


def numerical_hessian(
    gradient: Callable[[np.ndarray], np.ndarray], u: np.ndarray, grad_at_u: np.ndarray, step: float = 1e-5
) -> np.ndarray:
    """Forward differences of an analytic gradient, symmetrised (k extra evaluations)."""
    k = u.size
    hessian = np.empty((k, k))
    for i in range(k):
        e = np.zeros(k)
        e[i] = step
        hessian[i] = (gradient(u + e) - grad_at_u) / step
    return (hessian + hessian.T) / 2
