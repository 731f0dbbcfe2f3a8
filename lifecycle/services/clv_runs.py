"""The CLV recompute: aggregate, fit once, score and write back by customer-id chunk.

Flow of one run (a ClvRun row with a core Job for its progress):
1. `clv_run_start` creates the run and its job and enqueues `lifecycle.tasks.clv_recompute` on commit.
2. `clv_run_fit` reads every customer's order figures (lifecycle.services.aggregate: the orders'
   columns shipped as arrays and grouped by numpy, on CLV_AGGREGATE_CONNECTIONS connections), fits BG/NBD on the distinct (frequency, recency, T) triples with weights and Gamma-Gamma on the
   repeat buyers, estimates the channel lifespans and the RFM cut points, stores all of it on the run
   and splits the customers into id ranges (ClvRunChunk rows, CLV_CHUNK_SIZE customers each); on
   PostgreSQL it creates the run's generation table for the CustomerValue rows (services.values_generation).
3. `clv_chunk_score` scores one range and writes its CustomerValue rows in bulk (one binary COPY
   into the generation table on PostgreSQL, an upsert on SQLite). The Celery path
   gives each range to its own `clv_score_range` task (any number of workers, each re-running the
   aggregate for its range only); `clv_run_execute` (the --sync command, the benchmark) scores the
   ranges in-process from the arrays it already has. Both call the same scoring and write-back.
4. The worker that marks the last chunk done publishes the generation (indexes, foreign keys, then
   a swap by renaming, so readers see all of the old values or all of the new) and finishes the run.

Definitions (also in the README):
- historic value = paid orders - refunds, where revenue counts paid and refunded orders and
  refunds are the refunded ones, so historic value = the paid orders' total; cancelled orders are
  ignored; orders after the end of the as-of day (shop time zone) are ignored.
- formula CLV: see lifecycle.services.formula (lifespan per acquisition channel from churn).
- BG/NBD and Gamma-Gamma inputs: per local calendar day (same-day paid orders are one transaction
  with their sum); frequency = repeat purchase days, recency = first to last purchase day, T = first
  purchase day to the as-of day, in the run's time unit (weeks by default); monetary value = mean of
  the repeat transactions (the first day excluded), 0 for customers without repeat purchases.
- predicted CLV: discounted expected revenue over the horizon (12 months, 10% a year), the BG/NBD
  expected purchases per month x the Gamma-Gamma expected order value.
- Customers without a paid order: historic, AOV, frequency and formula CLV are 0; the
  buy-till-you-die fields (frequency, recency, T, p_alive, expected purchases and values, predicted
  CLV) and the RFM scores are NULL: the models describe customers after their first purchase.
- A fit that does not converge is recorded on the run (status not_converged, the message) and its
  parameters are never used: BG/NBD failing leaves every predictive field NULL; Gamma-Gamma failing
  leaves expected order value and predicted CLV NULL. Historic, formula and RFM values are written.
"""

from __future__ import annotations

import datetime as dt
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import numpy as np
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from core.connections import on_own_connection
from core.enqueue import enqueue, enqueue_on_commit
from core.exceptions import DomainError
from core.planner import statistics_refresh
from core.services import job_create, job_fail, job_progress, job_start, job_succeed
from core.times import shop_day
from lifecycle.clv.predict import PairMemo
from lifecycle.models import ClvRun, ClvRunChunk

from .aggregate import OrderStats, day_number, order_stats, order_stats_parallel
from .formula import lifespans_by_channel
from .rfm import rfm_cutpoints
from .scoring import btyd_inputs, fit_models, score_customers
from .values_generation import values_generation_discard, values_generation_prepare, values_generation_write
from .values_publish import values_generation_publish

JOB_KIND = "clv_recompute"
# A queued or running run younger than this blocks a new one; an older one is taken as crashed.
ACTIVE_RUN_WINDOW = dt.timedelta(hours=6)

Progress = Callable[[int, int], None]


def chunk_size() -> int:
    return int(settings.CLV_CHUNK_SIZE)


# --- Start ----------------------------------------------------------------------------------------


def clv_run_create(*, as_of: dt.date | None = None, created_by=None, trigger: str | None = None) -> ClvRun:
    """A queued run with its job; refuses while another run is queued or running.

    The database allows one active run (constraint clvrun_one_active), so two requests at the same
    moment cannot both start one. A run active for longer than ACTIVE_RUN_WINDOW is taken as
    crashed and closed as failed first."""
    as_of = as_of or shop_day()
    active = [ClvRun.Status.QUEUED, ClvRun.Status.RUNNING]
    with transaction.atomic():
        ClvRun.objects.filter(status__in=active, created_at__lt=timezone.now() - ACTIVE_RUN_WINDOW).update(
            status=ClvRun.Status.FAILED, error=_("Abandoned: still unfinished after six hours."), finished_at=timezone.now()
        )
        try:
            with transaction.atomic():
                job = job_create(kind=JOB_KIND, params={"as_of": as_of.isoformat()}, created_by=created_by)
                return ClvRun.objects.create(
                    as_of=as_of,
                    time_unit=settings.CLV_TIME_UNIT,
                    horizon_months=settings.CLV_HORIZON_MONTHS,
                    annual_discount_rate=Decimal(str(settings.CLV_ANNUAL_DISCOUNT_RATE)),
                    churn_days=settings.CLV_CHURN_DAYS,
                    job=job,
                    created_by=created_by,
                    trigger=trigger or (ClvRun.Trigger.USER if created_by else ClvRun.Trigger.SCHEDULE),
                )
        except IntegrityError:
            raise DomainError(_("A value recompute is already queued or running.")) from None


def clv_run_start(*, as_of: dt.date | None = None, created_by=None, trigger: str | None = None) -> ClvRun:
    """Create a run and have a worker compute it once the transaction commits."""
    with transaction.atomic():
        run = clv_run_create(as_of=as_of, created_by=created_by, trigger=trigger)
        enqueue_on_commit("lifecycle.tasks.clv_recompute", run.pk)
    return run


# --- Fit ------------------------------------------------------------------------------------------


def _chunk_bounds(customer_ids: np.ndarray, size: int) -> list[tuple[int, int, int]]:
    """[(lo, hi, n)] id ranges of about `size` customers covering every id in the array."""
    bounds = []
    for start in range(0, len(customer_ids), size):
        stop = min(start + size, len(customer_ids))
        hi = int(customer_ids[stop]) if stop < len(customer_ids) else int(customer_ids[-1]) + 1
        bounds.append((int(customer_ids[start]), hi, stop - start))
    return bounds


def clv_run_fit(*, run_id: int) -> tuple[ClvRun, OrderStats | None]:
    """Phase 1: aggregate, fit, store parameters and chunks. Returns (run, stats), stats None
    when the run was already finished (a task delivered twice)."""
    run = ClvRun.objects.select_related("job").get(pk=run_id)
    if run.is_finished:
        return run, None
    started = time.perf_counter()
    run.status, run.started_at = ClvRun.Status.RUNNING, timezone.now()
    run.save(update_fields=["status", "started_at"])
    if run.job_id:
        job_start(job_id=run.job_id)
        job_progress(job_id=run.job_id, done=0, message=_("Aggregating orders"))

    # After a first import the orders' statistics may still say "empty": the aggregate was then
    # planned as a bitmap scan estimated at 17 rows that read 754,000 (25% slower than a seq scan).
    statistics_refresh("customers_order", "customers_customer")
    stats = order_stats_parallel(as_of=run.as_of, connections=settings.CLV_AGGREGATE_CONNECTIONS)
    aggregated = time.perf_counter()
    as_of_day = day_number(run.as_of)
    btyd = btyd_inputs(stats, as_of_day=as_of_day, unit_days=run.time_unit_days)
    if run.job_id:
        job_progress(job_id=run.job_id, done=0, total=len(stats), message=_("Fitting the models"))
    problems = fit_models(run, btyd)
    buyers = btyd["buyers"]
    run.lifespans = lifespans_by_channel(stats, as_of_day=as_of_day, churn_days=run.churn_days)
    run.rfm_cutpoints = rfm_cutpoints(
        recency_days=(as_of_day - stats.last_day)[buyers], frequency=stats.purchase_days[buyers], monetary=stats.paid_cents[buyers]
    )
    run.n_customers, run.n_purchasers = len(stats), int(buyers.sum())
    run.message = "\n".join(problems)
    run.timings = {"aggregate_s": round(aggregated - started, 3), "fit_s": round(time.perf_counter() - aggregated, 3)}
    with transaction.atomic():
        run.save()
        run.chunks.all().delete()
        ClvRunChunk.objects.bulk_create(
            [ClvRunChunk(run=run, lo=lo, hi=hi, n_customers=n) for lo, hi, n in _chunk_bounds(stats.customer_id, chunk_size())]
        )
    values_generation_prepare(run_id=run.pk)
    if run.job_id:
        job_progress(job_id=run.job_id, done=0, total=len(stats), message=_("Scoring customers"))
    return run, stats


# --- Score and write back -------------------------------------------------------------------------


def _finish_run(run_id: int) -> None:
    """Publish the run's values and close it once every chunk is done. Two callers at once are
    fine: publishing again is a no-op and only the caller whose UPDATE wins closes the run."""
    started = time.perf_counter()
    values_generation_publish(run_id=run_id)
    run = ClvRun.objects.get(pk=run_id)
    ClvRun.objects.filter(pk=run_id).update(timings={**run.timings, "publish_s": round(time.perf_counter() - started, 3)})
    final = ClvRun.Status.SUCCEEDED if run.converged else ClvRun.Status.NOT_CONVERGED
    finished = ClvRun.objects.filter(pk=run_id, status=ClvRun.Status.RUNNING).update(status=final, finished_at=timezone.now())
    if finished and run.job_id:
        message = _("Done") if final == ClvRun.Status.SUCCEEDED else _("Done; the model was not fitted: %(why)s") % {"why": run.message}
        job_succeed(job_id=run.job_id, result={"run_id": run.pk, "status": final, "customers": run.n_customers}, message=message)


def clv_chunk_score(*, run_id: int, lo: int, hi: int, stats: OrderStats | None = None, memo: PairMemo | None = None) -> int:
    """Score customers lo <= id < hi and write them back; returns how many were written.

    Without `stats` the range's aggregate is queried here (a worker on its own). `memo` carries
    model terms from chunk to chunk of one run in one process."""
    run = ClvRun.objects.get(pk=run_id)
    if run.status != ClvRun.Status.RUNNING:
        return 0
    started = time.perf_counter()
    if stats is None:
        stats = order_stats(as_of=run.as_of, lo=lo, hi=hi)
    values_generation_write(run_id=run.pk, columns=score_customers(run, stats, memo=memo), computed_at=timezone.now())
    ClvRunChunk.objects.filter(run_id=run_id, lo=lo, done_at__isnull=True).update(done_at=timezone.now())
    progress = ClvRunChunk.objects.filter(run_id=run_id).exclude(done_at=None).aggregate(n=Sum("n_customers"))
    if run.job_id:
        job_progress(job_id=run.job_id, done=progress["n"] or 0, message=_("Scoring customers"))
    ClvRun.objects.filter(pk=run_id).update(timings=_add_timing(run.timings, time.perf_counter() - started))
    if not ClvRunChunk.objects.filter(run_id=run_id, done_at__isnull=True).exists():
        _finish_run(run_id)
    return len(stats)


def _add_timing(timings: dict, seconds: float) -> dict:
    # Per-chunk seconds summed (approximate under parallel workers: the last writer wins).
    return {**timings, "score_write_s": round(timings.get("score_write_s", 0.0) + seconds, 3)}


def clv_run_fail(*, run_id: int, error: BaseException) -> None:
    text = "".join(traceback.format_exception_only(type(error), error)).strip()
    values_generation_discard(run_id=run_id)
    ClvRun.objects.filter(pk=run_id).exclude(status=ClvRun.Status.SUCCEEDED).update(
        status=ClvRun.Status.FAILED, error=text, finished_at=timezone.now()
    )
    job_id = ClvRun.objects.filter(pk=run_id).values_list("job_id", flat=True).first()
    if job_id:
        job_fail(job_id=job_id, error=text)


def clv_run_execute(*, run_id: int, progress: Progress | None = None) -> ClvRun:
    """The whole run in this process: fit, then every chunk from the arrays already in memory,
    CLV_AGGREGATE_CONNECTIONS chunks at a time on PostgreSQL (numpy and the database's COPY
    overlap), one at a time inside a transaction or on SQLite."""
    try:
        run, stats = clv_run_fit(run_id=run_id)
        if stats is None:
            return run
        chunks = list(run.chunks.values_list("lo", "hi"))
        memo = PairMemo()  # each (frequency, T) pair's model terms are evaluated once per run

        def score(bounds: tuple[int, int]) -> int:
            lo, hi = bounds
            return clv_chunk_score(run_id=run_id, lo=lo, hi=hi, stats=stats.slice(lo, hi), memo=memo)

        workers = settings.CLV_AGGREGATE_CONNECTIONS
        if workers > 1 and len(chunks) > 1 and not connection.in_atomic_block and connection.vendor == "postgresql":
            pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="clv-score")
            scored = pool.map(on_own_connection(score), chunks)
        else:
            pool, scored = None, map(score, chunks)
        try:
            done = 0
            for n in scored:
                done += n
                if progress:
                    progress(done, len(stats))
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
        if not chunks:
            _finish_run(run_id)
    except Exception as exc:
        clv_run_fail(run_id=run_id, error=exc)
        raise
    return ClvRun.objects.get(pk=run_id)


def clv_run_dispatch(*, run_id: int) -> ClvRun:
    """Fit, then hand each chunk to a `lifecycle.tasks.clv_score_range` task."""
    try:
        run, stats = clv_run_fit(run_id=run_id)
        if stats is None:
            return run
        chunks = list(run.chunks.values_list("lo", "hi"))
        del stats  # the workers query their own ranges
        if not chunks:
            _finish_run(run_id)
        for lo, hi in chunks:
            enqueue("lifecycle.tasks.clv_score_range", run_id, lo, hi)  # the chunks are committed
    except Exception as exc:
        clv_run_fail(run_id=run_id, error=exc)
        raise
    return ClvRun.objects.get(pk=run_id)

