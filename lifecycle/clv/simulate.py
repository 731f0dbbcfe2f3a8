"""Draw customer histories from the BG/NBD and Gamma-Gamma generative processes.

Used by the model tests (parameter recovery, Monte-Carlo checks of the closed forms) and
by the fit benchmark. Fully vectorised; pass a ``numpy.random.Generator`` for
reproducibility.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .bgnbd import BgNbdParams
from .gamma_gamma import GammaGammaParams


@dataclass(frozen=True)
class SimulatedHistories:
    frequency: np.ndarray  # repeat purchases in (0, T]
    recency: np.ndarray  # time of the last repeat purchase (0 without one)
    T: np.ndarray
    alive: np.ndarray  # still active at T (unobservable in real data)
    future: np.ndarray  # purchases in (T, T + horizon]


def simulate_bgnbd(params: BgNbdParams, T, rng: np.random.Generator, horizon: float = 0.0) -> SimulatedHistories:
    """Each customer buys at Poisson rate lambda ~ Gamma(r, rate alpha) and, after each
    repeat purchase, drops out with probability p ~ Beta(a, b)."""
    t_cal = np.asarray(T, dtype=float)
    n = t_cal.size
    lam = rng.gamma(params.r, 1.0 / params.alpha, n)
    p = rng.beta(params.a, params.b, n)
    # Repeat purchases made before dropping out (the dropout follows the J-th one).
    lifetime_purchases = rng.geometric(np.clip(p, 1e-12, 1.0))
    events = rng.poisson(lam * t_cal)
    frequency = np.minimum(events, lifetime_purchases)
    # Given N events in (0, T], their times are uniform order statistics; the k-th of N
    # is T * Beta(k, N - k + 1).
    k = np.maximum(frequency, 1)
    tail = np.maximum(events - frequency + 1, 1)
    recency = np.where(frequency > 0, t_cal * rng.beta(k, tail), 0.0)
    alive = lifetime_purchases > frequency
    if horizon > 0:
        ahead = rng.poisson(lam * horizon)
        future = np.where(alive, np.minimum(ahead, lifetime_purchases - frequency), 0)
    else:
        future = np.zeros(n, dtype=int)
    return SimulatedHistories(frequency.astype(float), recency, t_cal, alive, future.astype(float))


def simulate_gamma_gamma(params: GammaGammaParams, frequency, rng: np.random.Generator) -> np.ndarray:
    """Mean spend of x transactions: nu ~ Gamma(q, rate v), x * m_x ~ Gamma(p x, rate nu).
    Customers with x == 0 get 0."""
    x = np.asarray(frequency, dtype=float)
    nu = rng.gamma(params.q, 1.0 / params.v, x.size)
    shape = np.where(x > 0, params.p * x, 1.0)
    total = rng.gamma(shape, 1.0 / nu)
    return np.where(x > 0, total / np.maximum(x, 1), 0.0)
