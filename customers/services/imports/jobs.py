"""Imports started from the staff UI: the upload is stored, a Job tracks the background run.

Every job ends, done or failed (core.background.job_guard), and its upload file is deleted when it
ends, whatever the outcome: the job keeps the file's name, the summary and the rejected rows, and a
failed import is retried by uploading the file again (an import creates nothing twice)."""

from __future__ import annotations

import logging
import uuid
from functools import partial

from django.core.files.storage import default_storage
from django.db import transaction
from django.utils.translation import gettext as _

from core.background import job_guard
from core.enqueue import enqueue_on_commit
from core.exceptions import DomainError
from core.models import Job, JobRejectedRow
from core.services import job_create, job_progress_callback, job_start, job_succeed

from .reader import storable_text
from .service import import_csv, import_header_check, import_kind_check

logger = logging.getLogger(__name__)
REASON_MAX = JobRejectedRow._meta.get_field("reason").max_length


def import_job_start(*, kind: str, uploaded_file, user) -> Job:
    """Store the upload, create its Job and run the import in the background after commit.

    The header is checked at once, so a wrong file (empty, wrong delimiter, missing columns, a
    header that is not UTF-8) is refused with a DomainError before anything is queued."""
    import_kind_check(kind)
    import_header_check(kind=kind, file=uploaded_file)
    path = default_storage.save(f"imports/{uuid.uuid4()}.csv", uploaded_file)
    try:
        with transaction.atomic():
            job = job_create(
                kind=f"import_{kind}",
                params={"kind": kind, "path": path, "filename": getattr(uploaded_file, "name", "") or path},
                created_by=user,
                total=default_storage.size(path),
            )
            enqueue_on_commit("customers.tasks.import_file", job.pk)
    except Exception:
        default_storage.delete(path)
        raise
    return job


def import_job_run(*, job_id: int) -> None:
    """Run a queued import Job to its end. Safe to run twice: a finished job is skipped, and the
    import itself upserts, so a re-delivered task creates nothing twice.

    Whatever goes wrong (a file that cannot be read, the database refusing a write, a bug) fails the
    job with a reason a person can read; chunks committed before a failure stay."""
    job = Job.objects.filter(pk=job_id).first()
    if job is None or job.is_finished:
        return
    path = job.params.get("path", "")
    try:
        with job_guard(job_id=job.pk, unexpected=_("The import stopped with an unexpected error: %(error)s")):
            _import_job_body(job, path)
    finally:
        if path and Job.objects.filter(pk=job.pk, status__in=[Job.Status.SUCCEEDED, Job.Status.FAILED]).exists():
            _delete_upload(path)


def _import_job_body(job: Job, path: str) -> None:
    kind = job.params.get("kind", "")
    import_kind_check(kind)
    if not path or not default_storage.exists(path):
        raise DomainError(_("The uploaded file is no longer available; please upload it again."))
    job_start(job_id=job.pk, total=default_storage.size(path))
    JobRejectedRow.objects.filter(job_id=job.pk).delete()  # a re-delivered task starts again
    with default_storage.open(path, "rb") as source:
        result = import_csv(
            kind=kind, file=source, progress=job_progress_callback(job.pk), on_rejected=partial(_store_rejected, job.pk)
        )
    summary = result.summary()
    job_succeed(
        job_id=job.pk,
        result=summary,
        message=_("%(rows)d rows: %(created)d created, %(updated)d updated, %(rejected)d rejected.") % summary,
    )


def _store_rejected(job_id: int, rows: list) -> None:
    """A chunk's rejected rows, stored once the chunk is committed: a job that fails later keeps them.
    Reasons quote the rows' values: both kept to what PostgreSQL text can hold (no NUL)."""
    JobRejectedRow.objects.bulk_create(
        [
            JobRejectedRow(job_id=job_id, line=row.line, reason=storable_text(row.reason)[:REASON_MAX], raw=storable_text(row.raw))
            for row in rows
        ],
        batch_size=2000,
    )


def _delete_upload(path: str) -> None:
    try:
        default_storage.delete(path)
    except OSError:  # the job's outcome stands; a stray file is only disk space
        logger.warning("could not delete the import upload %s", path, exc_info=True)
