"""Background-job bookkeeping shared by every app that runs long work."""

from collections.abc import Callable

from django.db import transaction
from django.utils import timezone

from .models import Job

ProgressCallback = Callable[[int, int], None]


def job_create(*, kind: str, params: dict | None = None, created_by=None, total: int = 0) -> Job:
    return Job.objects.create(kind=kind, params=params or {}, created_by=created_by, total=total)


def job_start(*, job_id: int, total: int = 0) -> None:
    Job.objects.filter(pk=job_id).update(status=Job.Status.RUNNING, started_at=timezone.now(), total=total, done=0)


def job_progress(*, job_id: int, done: int, total: int | None = None, message: str = "") -> None:
    """Record progress at once, in its own autocommit UPDATE, so pollers see it mid-job."""
    fields = {"done": done, "message": message[:255]}
    if total is not None:
        fields["total"] = total
    with transaction.atomic(durable=False):
        Job.objects.filter(pk=job_id).update(**fields)


def job_progress_callback(job_id: int) -> ProgressCallback:
    def report(done: int, total: int) -> None:
        job_progress(job_id=job_id, done=done, total=total)

    return report


def job_succeed(*, job_id: int, result: dict | None = None, message: str = "") -> None:
    Job.objects.filter(pk=job_id).update(
        status=Job.Status.SUCCEEDED, result=result or {}, message=message[:255], finished_at=timezone.now()
    )


def job_fail(*, job_id: int, error: str) -> None:
    Job.objects.filter(pk=job_id).update(status=Job.Status.FAILED, error=error, finished_at=timezone.now())
