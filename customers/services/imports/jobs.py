"""Imports started from the staff UI: the upload is stored, a Job tracks the background run."""

from __future__ import annotations

import logging
import uuid

from django.core.files.storage import default_storage
from django.db import transaction
from django.utils.translation import gettext as _

from core.enqueue import enqueue_on_commit
from core.exceptions import DomainError
from core.models import Job, JobRejectedRow
from core.services import job_create, job_fail, job_progress_callback, job_start, job_succeed

from .service import import_csv, import_header_check, import_kind_check

logger = logging.getLogger(__name__)
REASON_MAX = JobRejectedRow._meta.get_field("reason").max_length


def import_job_start(*, kind: str, uploaded_file, user) -> Job:
    """Store the upload, create its Job and run the import in the background after commit.

    The header is checked at once, so a wrong file (empty, wrong delimiter, missing columns, not
    UTF-8) is refused with a DomainError before anything is queued."""
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
    """Run a queued import Job. Safe to run twice: a finished job is skipped, and the import itself
    upserts, so a re-delivered task creates nothing twice."""
    job = Job.objects.filter(pk=job_id).first()
    if job is None or job.is_finished:
        return
    kind, path = job.params.get("kind", ""), job.params.get("path", "")
    try:
        import_kind_check(kind)
        if not path or not default_storage.exists(path):
            raise DomainError(_("The uploaded file is no longer available; please upload it again."))
        job_start(job_id=job.pk, total=default_storage.size(path))
        with default_storage.open(path, "rb") as source:
            result = import_csv(kind=kind, file=source, progress=job_progress_callback(job.pk))
    except DomainError as exc:
        job_fail(job_id=job.pk, error=exc.message)
        return
    except Exception as exc:
        # Chunks committed before the failure stay; a re-run of the same file completes the rest.
        logger.exception("import job %s failed", job.pk)
        job_fail(job_id=job.pk, error=_("The import stopped with an unexpected error: %(error)s") % {"error": exc})
        return

    with transaction.atomic():
        JobRejectedRow.objects.filter(job_id=job.pk).delete()
        JobRejectedRow.objects.bulk_create(
            [JobRejectedRow(job_id=job.pk, line=row.line, reason=row.reason[:REASON_MAX], raw=row.raw) for row in result.rejected],
            batch_size=2000,
        )
        summary = result.summary()
        job_succeed(
            job_id=job.pk,
            result=summary,
            message=_("%(rows)d rows: %(created)d created, %(updated)d updated, %(rejected)d rejected.") % summary,
        )
    default_storage.delete(path)
