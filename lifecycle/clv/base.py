"""Shared pieces of the CLV models: the fit result, input checks and the optimiser.

Everything here is plain numpy/scipy; no Django. The models are fitted by maximum
likelihood in log-parameter space (every parameter is positive), on data that may
be compressed to distinct rows with integer weights (see ``predict.compress``).

Weighted sums over rows use ``wsum`` rather than ``np.dot``: on a 1-D pair ``np.dot``
calls BLAS, whose worker threads spin and burn several times the CPU of the sum
itself (3-4x on the two-core machine) without making it faster.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from scipy import linalg, optimize

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


def unique_int_rows(
    *columns: np.ndarray, return_inverse: bool = True
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray | None]:
    """``unique_rows`` for non-negative integer columns (days, counts), in the same order.

    The columns are packed into one int64 key (mixed radix, first column most
    significant), so a single integer sort (or, for a small range with the inverse, a table:
    see unique_inverse) replaces the lexsort: an order of magnitude faster on a million rows.
    The inverse is only built when asked for.
    """
    arrays = [np.asarray(column) for column in columns]
    n = arrays[0].size
    for array in arrays:
        if array.shape != (n,) or not np.issubdtype(array.dtype, np.integer):
            raise ValueError("columns must be one-dimensional integer arrays of equal length")
    if n == 0:
        inverse = np.empty(0, dtype=np.intp) if return_inverse else None
        return [np.empty(0, dtype=np.int64) for _ in arrays], np.empty(0), inverse
    if any(array.min() < 0 for array in arrays):
        raise ValueError("columns must be non-negative")
    spans = [int(array.max()) + 1 for array in arrays]
    if np.prod([float(span) for span in spans]) >= 2.0**62:
        raise ValueError("the columns' ranges are too wide to pack into one integer key")
    key = arrays[0].astype(np.int64)
    for array, span in zip(arrays[1:], spans[1:], strict=True):
        key = key * span + array
    if return_inverse:
        keys, inverse = unique_inverse(key)
        counts = np.bincount(inverse, minlength=keys.size)
    else:
        (keys, counts), inverse = np.unique(key, return_counts=True), None
    unpacked = []
    for span in reversed(spans[1:]):
        keys, rest = np.divmod(keys, span)
        unpacked.append(rest)
    unpacked.append(keys)
    return unpacked[::-1], counts.astype(float), inverse


def unique_inverse(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """np.unique(values, return_inverse=True), without its sort where the values allow:
    sorted values (the compressed triples' frequencies) from their runs, whole numbers of a
    small range (frequencies, days) through a table of the range."""
    values = np.asarray(values)
    n = values.size
    if n == 0:
        return np.unique(values, return_inverse=True)
    new = np.empty(n, dtype=bool)
    new[0] = True
    np.not_equal(values[1:], values[:-1], out=new[1:])
    if not np.any(values[1:] < values[:-1]):
        return values[new], np.cumsum(new) - 1
    low, high = values.min(), values.max()
    if high - low < 4 * n + 65_536:
        offset = (values - low).astype(np.intp)
        if np.issubdtype(values.dtype, np.integer) or np.array_equal(offset, values - low):
            present = np.zeros(int(high - low) + 1, dtype=bool)
            present[offset] = True
            return np.flatnonzero(present).astype(values.dtype) + low, (np.cumsum(present) - 1)[offset]
    return np.unique(values, return_inverse=True)


def wsum(weights: np.ndarray, values: np.ndarray) -> float:
    """sum(weights * values) without BLAS (see the module docstring); pairwise summation."""
    return float(np.add.reduce(weights * values))


class Objective(Protocol):
    """A mean negative log-likelihood over log-parameters, with its derivatives."""

    def nll_and_grad(self, u: np.ndarray) -> tuple[float, np.ndarray]: ...

    def nll_grad_hess(self, u: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]: ...


def maximise_log_likelihood(
    objective: Objective,
    start: np.ndarray,
    names: tuple[str, ...],
    warm_up: Objective | None = None,
    fallback: bool = True,
    newton: bool = True,
) -> tuple[np.ndarray, float, bool, str, int]:
    """Minimise a mean negative log-likelihood over log-parameters.

    ``warm_up``, when given, is the same objective on a random subsample: it is
    minimised first (cheaply) and its optimum starts the full fit, which then needs
    only a few evaluations on all rows.

    With ``newton`` the full fit uses the analytic Hessian: Newton's method from the
    (warm) start converges in a handful of evaluations on all rows where L-BFGS takes
    tens. When Newton cannot finish (a Hessian that is not positive definite on the way, a
    parameter heading for the box edge, too many steps), the L-BFGS route runs exactly as
    without ``newton``. Returns (log_params, mean_nll, converged,
    message, iterations). Never raises on non-convergence: the caller reports
    ``converged=False`` with the message.
    """
    if newton:
        begin = start if warm_up is None else _bfgs_warm_up(warm_up, start)
        found = None if begin is None else newton_minimise(objective.nll_grad_hess, begin)
        if found is not None:
            u, value, grad, hessian, steps = found
            converged, message = _verdict(
                u, value, True, f"Newton: converged in {steps} steps", names, lambda: grad, lambda: hessian
            )
            return u, value, converged, message, steps
    if warm_up is not None:
        start = _lbfgs_warm_up(warm_up, start)
    return _lbfgs_route(objective, start, names, fallback)


def _bfgs_warm_up(warm_up: Objective, start: np.ndarray) -> np.ndarray | None:
    """The subsample's optimum by BFGS, the start for Newton on all rows; None when it is not
    well inside the box (a parameter running off: the L-BFGS route deals with that).

    (L-BFGS-B would do as well, but its small dense linear algebra wakes the BLAS threads,
    which here costs more CPU than the likelihood evaluations.)"""
    warm = optimize.minimize(_guarded(warm_up.nll_and_grad), start, jac=True, method="BFGS", options={"maxiter": 500})
    u = np.asarray(warm.x, dtype=float)
    return u if np.all(np.isfinite(u)) and np.all(np.abs(u) < LOG_BOUND - 1) else None


def _lbfgs_warm_up(warm_up: Objective, start: np.ndarray) -> np.ndarray:
    bounds = [(-LOG_BOUND, LOG_BOUND)] * len(start)
    warm = optimize.minimize(
        _guarded(warm_up.nll_and_grad), start, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": 500}
    )
    if np.all(np.isfinite(warm.x)) and np.all(np.abs(warm.x) < LOG_BOUND - 1):
        return np.asarray(warm.x, dtype=float)
    return start


def _lbfgs_route(objective, start, names, fallback):
    bounds = [(-LOG_BOUND, LOG_BOUND)] * len(start)
    safe = _guarded(objective.nll_and_grad)

    def lbfgs(u0):
        return optimize.minimize(
            safe,
            u0,
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": 2000, "ftol": 1e-13, "gtol": 1e-9},
        )

    def lbfgs_verdict(result):
        u = np.asarray(result.x, dtype=float)
        grad = functools.cache(lambda: safe(u)[1])
        return _verdict(
            u,
            float(result.fun),
            bool(result.success),
            str(result.message),
            names,
            grad,
            lambda: numerical_hessian(lambda v: safe(v)[1], u, grad()),
        )

    result = lbfgs(start)
    iterations = int(result.nit)
    verdict = lbfgs_verdict(result)
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
            verdict = lbfgs_verdict(result)
    converged, message = verdict
    return np.asarray(result.x, dtype=float), float(result.fun), converged, message, iterations


# Newton stops at a point whose next step would move no log-parameter by more than
# _NEWTON_TOLERANCE (the parameters are then known to that relative precision; L-BFGS's
# stopping rule left them 1e-5 off on a million customers). Once the step is below
# _NEWTON_LAST_STEP it is taken without a further check of the objective (Newton converges
# quadratically there, and the objective no longer resolves the change) and ends the search:
# the error after it is of the order of the step squared.
_NEWTON_TOLERANCE = 1e-7
_NEWTON_LAST_STEP = 1e-4
_NEWTON_MAX_STEPS = 20
_NEWTON_MAX_SHIFTED = 5
_MAX_SHIFTED_STEP = 0.5


def newton_minimise(
    fun: Callable[[np.ndarray], tuple[float, np.ndarray, np.ndarray]], start: np.ndarray
) -> tuple[np.ndarray, float, np.ndarray, np.ndarray, int] | None:
    """Newton's method with a line search; (u, value, gradient, Hessian, steps) at the
    minimum, or None when it cannot finish.

    Where the Hessian is not positive definite (a likelihood ridge near the optimum) a few
    steps may use it shifted until it is (Levenberg), which still points downhill; more
    than _NEWTON_MAX_SHIFTED of them mean the start is far off, and the search gives up
    (to L-BFGS). The search only ends at a point whose own Hessian is positive definite, so
    a saddle or a flat direction never passes for an optimum. A step that leaves the box or
    does not decrease the objective enough is halved (Armijo backtracking).
    """
    u = np.asarray(start, dtype=float)
    state = _finite_state(fun, u)
    if state is None:
        return None
    shifted = 0
    for steps in range(_NEWTON_MAX_STEPS):
        value, grad, hessian = state
        step, exact = _newton_step(hessian, grad)
        if not exact:
            shifted += 1
            if shifted > _NEWTON_MAX_SHIFTED:
                return None
        size = float(np.max(np.abs(step)))
        if exact and size <= _NEWTON_TOLERANCE:
            return u, value, grad, hessian, steps
        last = exact and size <= _NEWTON_LAST_STEP
        slope = float(grad @ step)
        # Armijo, up to the objective's rounding noise (a sum over up to millions of rows): near
        # the optimum the decrease a Newton step promises is below that noise.
        noise = 1e-12 * max(1.0, abs(value))
        length = 1.0
        while True:
            candidate = u + length * step
            inside = bool(np.all(np.abs(candidate) <= LOG_BOUND - 1))
            new = _finite_state(fun, candidate) if inside else None
            if new is not None and new[0] <= value + 1e-4 * length * slope + noise:
                break
            length /= 2
            if length < 1e-6:
                return None
        u, state = candidate, new
        if last:
            if not _newton_step(state[2], state[1])[1]:
                return None
            return u, state[0], state[1], state[2], steps + 1
    return None


def _newton_step(hessian: np.ndarray, grad: np.ndarray) -> tuple[np.ndarray, bool]:
    """(-H^-1 g, True) for a positive definite H; otherwise (-(H + tau I)^-1 g, False) with
    tau lifting the smallest eigenvalue to a thousandth of the largest, the step at most
    _MAX_SHIFTED_STEP long in any log-parameter."""
    with contextlib.suppress(linalg.LinAlgError):  # not positive definite: the shifted step below
        step = -linalg.cho_solve(linalg.cho_factor(hessian), grad)
        if np.all(np.isfinite(step)):
            return step, True
    eigenvalues, vectors = np.linalg.eigh(hessian)
    largest = max(float(np.max(np.abs(eigenvalues))), 1e-300)
    shifted = eigenvalues + (1e-3 * largest - min(float(eigenvalues[0]), 0.0))
    step = -vectors @ ((vectors.T @ grad) / shifted)
    size = float(np.max(np.abs(step)))
    if size > _MAX_SHIFTED_STEP:
        step *= _MAX_SHIFTED_STEP / size
    return step, False


def _finite_state(fun, u):
    with np.errstate(all="ignore"):
        value, grad, hessian = fun(u)
    if not (np.isfinite(value) and np.all(np.isfinite(grad)) and np.all(np.isfinite(hessian))):
        return None
    return float(value), np.asarray(grad, dtype=float), np.asarray(hessian, dtype=float)


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


def _verdict(u, value, success, message, names, gradient, hessian) -> tuple[bool, str]:
    """Whether ``u`` is a usable optimum: plausible parameters, a finite likelihood, a zero
    gradient and a strict maximum. ``gradient`` and ``hessian`` are called only when needed."""
    drifted = [name for name, v in zip(names, u, strict=True) if abs(v) > PLAUSIBLE_LOG]
    if drifted:
        return False, f"parameter(s) {', '.join(drifted)} ran off towards 0 or infinity: the data do not identify the model"
    if not np.isfinite(value) or value >= 1e299:
        return False, "log-likelihood is not finite at the optimum"
    largest = float(np.max(np.abs(gradient())))
    if not success:
        # L-BFGS-B's line search gives up ("ABNORMAL") once the likelihood no longer changes
        # above rounding, which on large data can happen at the optimum itself; only a
        # (near-)zero gradient makes that a converged fit.
        if largest > _MAX_GRADIENT_AFTER_STOP:
            return False, f"optimiser did not converge: {message}"
        message = f"gradient zero at the optimum (max |g| = {largest:.1e}); optimiser stopped: {message}"
    if largest > _MAX_GRADIENT:
        return False, f"gradient not zero at the optimum (max |g| = {largest:.2e})"
    eigenvalues = np.linalg.eigvalsh(hessian())
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
