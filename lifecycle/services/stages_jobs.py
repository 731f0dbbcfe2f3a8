"""The lifecycle evaluation as a background job: a core Job row whose done/total the job page
shows live, and whose result holds the run's counts of transitions by rule."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.enqueue import enqueue_on_commit
from core.exceptions import DomainError
from core.models import Job
from core.services import job_create, job_fail, job_progress_callback, job_start, job_succeed
from lifecycle.models_stages import LifecycleRun

from .stages import JOB_KIND, STALE_RUN, lifecycle_evaluate


def lifecycle_evaluate_start(*, as_of: dt.date | None = None, created_by=None, enqueue: bool = False) -> Job:
    """A queued evaluation job; with `enqueue`, a worker runs it once the transaction commits.
    Refused while an evaluation runs, so a double click starts one."""
    unfinished = Job.objects.filter(
        kind=JOB_KIND, status__in=[Job.Status.QUEUED, Job.Status.RUNNING], created_at__gte=timezone.now() - STALE_RUN
    )
    if unfinished.exists():
        raise DomainError(_("A lifecycle evaluation is already running."))
    with transaction.atomic():
        job = job_create(kind=JOB_KIND, params={"as_of": as_of.isoformat() if as_of else None}, created_by=created_by)
        if enqueue:
            enqueue_on_commit("lifecycle.tasks.lifecycle_evaluate_job", job.pk)
    return job


def lifecycle_evaluate_for_job(*, job_id: int) -> LifecycleRun | None:
    """Run the job's evaluation with live progress; a job delivered twice runs once."""
    claimed = Job.objects.filter(pk=job_id, status=Job.Status.QUEUED).update(status=Job.Status.RUNNING)
    if not claimed:
        return None
    job = Job.objects.get(pk=job_id)
    job_start(job_id=job_id)
    as_of = dt.date.fromisoformat(job.params["as_of"]) if job.params.get("as_of") else None
    try:
        run = lifecycle_evaluate(as_of=as_of, progress=job_progress_callback(job_id), job=job)
    except DomainError as exc:
        job_fail(job_id=job_id, error=exc.message)
        return None
    except Exception as exc:
        job_fail(job_id=job_id, error=f"{type(exc).__name__}: {exc}")
        raise
    job_succeed(job_id=job_id, result={"customers": run.n_customers, "transitions": run.n_transitions, **run.counts})
    return run
