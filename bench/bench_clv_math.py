"""Time the CLV math of a recompute on simulated customers (no database).

    DEBUG=true .venv/bin/python bench/bench_clv_math.py [--customers 1000000] [--seed 7] [--repeat 3]

Histories are drawn from the BG/NBD and Gamma-Gamma processes at the CDNOW estimates, with
first purchases spread over three years, times kept at day resolution and a fifth of the
customers never buying, and laid out as the job's aggregate returns them (OrderStats: purchase
days, first and last day, paid cents, first day's cents, channel). Then, as the recompute runs
them (lifecycle.services.clv_runs), with CPU and wall seconds per phase:

- fit phase: btyd_inputs, fit_models (compress to distinct triples, BG/NBD and Gamma-Gamma
  fits), lifespans per channel, RFM cut points;
- scoring: score_customers per chunk of --chunk customers with one PairMemo for the run (as
  clv_run_execute can pass it), and once more without the memo (as separate workers score).

With --repeat N every phase runs N times and the fastest is reported (the machine is shared:
the load average is printed with the figures). Django settings are loaded (the services import
the models) but no database is touched.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import pathlib
import sys
import time
from decimal import Decimal

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
AS_OF = dt.date(2026, 6, 30)


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DEBUG", "true")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def simulated_stats(n: int, rng: np.random.Generator):
    """OrderStats of n customers from the BG/NBD and Gamma-Gamma processes (CDNOW estimates)."""
    from lifecycle.clv import BgNbdParams, GammaGammaParams
    from lifecycle.clv.simulate import simulate_bgnbd, simulate_gamma_gamma
    from lifecycle.services.aggregate import OrderStats, day_number

    as_of_day = day_number(AS_OF)
    buyers = rng.random(n) >= 0.2
    age_days = rng.integers(1, 3 * 365 + 1, n)
    sim = simulate_bgnbd(BgNbdParams(r=0.243, alpha=4.414, a=0.793, b=2.426), age_days / 7.0, rng)
    frequency = sim.frequency.astype(np.int64)
    recency_days = np.floor(sim.recency * 7.0).astype(np.int64)
    repeat_mean = np.round(simulate_gamma_gamma(GammaGammaParams(p=6.25, q=3.74, v=15.44), sim.frequency, rng) * 100)
    first_cents = np.round(rng.gamma(6.0, 500.0, n)).astype(np.int64)
    first_day = as_of_day - age_days
    purchase_days = np.where(buyers, frequency + 1, 0)
    return OrderStats(
        customer_id=np.arange(1, n + 1, dtype=np.int64),
        channel_id=rng.integers(0, 6, n),
        orders_count=purchase_days + rng.integers(0, 2, n) * (purchase_days > 0),
        paid_cents=np.where(buyers, first_cents + (repeat_mean * frequency).astype(np.int64), 0),
        refund_cents=np.zeros(n, dtype=np.int64),
        purchase_days=purchase_days,
        first_day=np.where(buyers, first_day, -1),
        last_day=np.where(buyers, first_day + recency_days, -1),
        first_day_cents=np.where(buyers, first_cents, 0),
    )


def timed(repeat: int, step):
    """(result of the last run, fastest wall seconds, fastest CPU seconds) over `repeat` runs."""
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        result = step()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return result, min(walls), min(cpus)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--chunk", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    setup_django()

    from lifecycle.clv.predict import PairMemo
    from lifecycle.models import ClvRun
    from lifecycle.services.aggregate import day_number
    from lifecycle.services.formula import lifespans_by_channel
    from lifecycle.services.rfm import rfm_cutpoints
    from lifecycle.services.scoring import btyd_inputs, fit_models, score_customers

    stats = simulated_stats(args.customers, np.random.default_rng(args.seed))
    run = ClvRun(as_of=AS_OF, time_unit=ClvRun.TimeUnit.WEEK, horizon_months=12, annual_discount_rate=Decimal("0.10"), churn_days=365)
    as_of_day = day_number(AS_OF)
    ids = stats.customer_id
    chunks = [stats.slice(int(ids[i]), int(ids[min(i + args.chunk, len(ids)) - 1]) + 1) for i in range(0, len(ids), args.chunk)]
    load_before = os.getloadavg()

    def fit_phase():
        btyd = btyd_inputs(stats, as_of_day=as_of_day, unit_days=run.time_unit_days)
        problems = fit_models(run, btyd)
        buyers = btyd["buyers"]
        run.lifespans = lifespans_by_channel(stats, as_of_day=as_of_day, churn_days=run.churn_days)
        run.rfm_cutpoints = rfm_cutpoints(
            recency_days=(as_of_day - stats.last_day)[buyers], frequency=stats.purchase_days[buyers], monetary=stats.paid_cents[buyers]
        )
        return problems

    def scoring(memo):
        def step():
            shared = PairMemo() if memo else None
            return [score_customers(run, chunk, memo=shared) for chunk in chunks]

        return step

    problems, fit_wall, fit_cpu = timed(args.repeat, fit_phase)
    columns, memo_wall, memo_cpu = timed(args.repeat, scoring(True))
    _, plain_wall, plain_cpu = timed(args.repeat, scoring(False))
    load_after = os.getloadavg()

    clv = np.concatenate([c["predicted_clv"] for c in columns])
    p_alive = np.concatenate([c["p_alive"] for c in columns])
    print(f"customers: {len(stats):,}  buyers: {int((stats.purchase_days > 0).sum()):,}  distinct triples: {run.n_triples:,}")
    print(f"BG/NBD r={run.bgnbd_r:.6g} alpha={run.bgnbd_alpha:.6g} a={run.bgnbd_a:.6g} b={run.bgnbd_b:.6g} converged={run.bgnbd_converged}")
    print(f"GG     p={run.gg_p:.6g} q={run.gg_q:.6g} v={run.gg_v:.6g} converged={run.gg_converged}  problems: {problems or 'none'}")
    print(f"mean P(alive)={np.nanmean(p_alive):.4f}  mean predicted CLV={np.nanmean(clv):.2f}")
    print(f"load average before {load_before[0]:.2f} after {load_after[0]:.2f}; fastest of {args.repeat}")
    for name, wall, cpu in (
        ("fit phase (fits, lifespans, RFM cuts)", fit_wall, fit_cpu),
        (f"scoring, {len(chunks)} chunks, one memo", memo_wall, memo_cpu),
        (f"scoring, {len(chunks)} chunks, no memo", plain_wall, plain_cpu),
    ):
        print(f"{name:>40}: {wall:7.3f} s wall {cpu:7.3f} s CPU")


if __name__ == "__main__":
    main()
