"""Celery tasks of the CLV job: thin wrappers over lifecycle.services.clv_runs."""

import logging

from celery import shared_task
from django.db import OperationalError

from core.exceptions import DomainError
from lifecycle.services import clv_runs

logger = logging.getLogger(__name__)


@shared_task(name="lifecycle.tasks.clv_recompute", autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def clv_recompute(run_id: int) -> None:
    """Fit the run's models once, then hand every customer-id range to `clv_score_range`."""
    clv_runs.clv_run_dispatch(run_id=run_id)


@shared_task(name="lifecycle.tasks.clv_score_range", autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def clv_score_range(run_id: int, lo: int, hi: int) -> None:
    """Score and write back customers lo <= id < hi; the last range finishes the run."""
    try:
        clv_runs.clv_chunk_score(run_id=run_id, lo=lo, hi=hi)
    except OperationalError:
        raise
    except Exception as exc:
        clv_runs.clv_run_fail(run_id=run_id, error=exc)
        raise


@shared_task(name="lifecycle.tasks.clv_nightly")
def clv_nightly() -> None:
    """Beat's nightly entry ("Nightly CLV recompute", editable in the admin)."""
    try:
        clv_runs.clv_run_start()
    except DomainError as exc:
        logger.warning("nightly CLV recompute skipped: %s", exc.message)


@shared_task(name="lifecycle.tasks.lifecycle_evaluate_job", autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def lifecycle_evaluate_job(job_id: int) -> None:
    """Evaluate every customer's stage for a Job someone started (the job page shows the progress)."""
    from lifecycle.services.stages_jobs import lifecycle_evaluate_for_job

    lifecycle_evaluate_for_job(job_id=job_id)


@shared_task(name="lifecycle.tasks.lifecycle_evaluate_hourly")
def lifecycle_evaluate_hourly() -> None:
    """Beat's hourly entry ("Hourly lifecycle evaluation", editable in the admin)."""
    from lifecycle.services.stages_jobs import lifecycle_evaluate_start

    try:
        job = lifecycle_evaluate_start()
    except DomainError as exc:
        logger.warning("hourly lifecycle evaluation skipped: %s", exc.message)
        return
    lifecycle_evaluate_job(job.pk)


@shared_task(name="lifecycle.tasks.retention_daily", autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def retention_daily() -> None:
    """Beat's daily entry ("Daily retention interventions"); safe to run twice (see services.retention)."""
    from lifecycle.services.retention import retention_run

    retention_run()
