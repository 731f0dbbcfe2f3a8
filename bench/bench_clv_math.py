"""Time the pure CLV math on simulated customers (no database).

    .venv/bin/python bench/bench_clv_math.py [--customers 1000000] [--seed 7]

Histories are drawn from the BG/NBD and Gamma-Gamma processes at the CDNOW estimates,
with first purchases spread over three years and times kept at day resolution (as the
recompute job produces them), then: compress to distinct triples, fit BG/NBD on the
triples, fit Gamma-Gamma, and score every customer (P(alive), expected purchases,
expected order value, 12-month predicted CLV).
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from lifecycle.clv import (  # noqa: E402
    BgNbdParams,
    GammaGammaParams,
    bgnbd_expected_purchases,
    bgnbd_fit,
    bgnbd_p_alive,
    compress,
    gamma_gamma_expected_value,
    gamma_gamma_fit,
    predicted_clv,
)
from lifecycle.clv.simulate import simulate_bgnbd, simulate_gamma_gamma  # noqa: E402

TRUE_BG = BgNbdParams(r=0.243, alpha=4.414, a=0.793, b=2.426)
TRUE_GG = GammaGammaParams(p=6.25, q=3.74, v=15.44)


class Clock:
    """Wall and CPU time per step: on a shared machine the CPU time is the steadier figure."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def lap(self) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        result = (wall - self.wall, cpu - self.cpu)
        self.wall, self.cpu = wall, cpu
        return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)

    t_days = rng.integers(1, 3 * 365 + 1, args.customers).astype(float)
    sim = simulate_bgnbd(TRUE_BG, t_days / 7.0, rng)
    recency = np.floor(sim.recency * 7.0) / 7.0  # day resolution, in weeks
    frequency, T = sim.frequency, sim.T
    monetary = np.round(simulate_gamma_gamma(TRUE_GG, frequency, rng), 2)

    timings = {}
    clock = Clock()
    uf, ur, uT, weights, inverse = compress(frequency, recency, T)
    timings["compress"] = clock.lap()
    bg = bgnbd_fit(uf, ur, uT, weights)
    timings["fit BG/NBD"] = clock.lap()
    gg = gamma_gamma_fit(frequency, monetary)
    timings["fit Gamma-Gamma"] = clock.lap()
    p_alive = bgnbd_p_alive(bg.params, uf, ur, uT)[inverse]
    expected = bgnbd_expected_purchases(bg.params, 365.25 / 7, uf, ur, uT)[inverse]
    value = gamma_gamma_expected_value(gg.params, frequency, monetary)
    # The purchase part of predicted CLV depends on the triple only: score triples, scale per customer.
    per_unit = predicted_clv(bg.params, np.ones(uf.size), uf, ur, uT)
    clv = per_unit[inverse] * value
    timings["predict (all customers)"] = clock.lap()

    print(f"customers: {args.customers:,}  distinct triples: {uf.size:,}  repeat buyers: {int((frequency > 0).sum()):,}")
    print(f"BG/NBD  {bg.params}  LL={bg.log_likelihood:.1f} converged={bg.converged} ({bg.message})")
    print(f"GG      {gg.params}  LL={gg.log_likelihood:.1f} converged={gg.converged} ({gg.message})")
    print(f"mean P(alive)={p_alive.mean():.3f} mean E[purchases 1y]={expected.mean():.3f} mean CLV={clv.mean():.2f}")
    for name, (wall, cpu) in timings.items():
        print(f"{name:>24}: {wall:7.3f} s wall {cpu:7.3f} s CPU")
    print(f"{'total':>24}: {sum(w for w, _ in timings.values()):7.3f} s wall {sum(c for _, c in timings.values()):7.3f} s CPU")


if __name__ == "__main__":
    main()
