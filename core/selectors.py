"""Reads of background jobs for the pages that show them."""

from collections.abc import Iterable

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet

from .models import Job, JobRejectedRow

REJECTED_ROWS_PER_PAGE = 100


def job_list_recent(*, kinds: Iterable[str], limit: int = 20) -> QuerySet[Job]:
    """The newest jobs of the given kinds, with who started them, newest first."""
    return (
        Job.objects.filter(kind__in=list(kinds))
        .select_related("created_by")
        .defer("error")
        .order_by("-id")[:limit]
    )


def job_rejected_rows_page(*, job: Job, page_number, per_page: int = REJECTED_ROWS_PER_PAGE) -> Page:
    """One page of a job's rejected rows in line order (the (job, line) index serves it)."""
    rows = JobRejectedRow.objects.filter(job=job).only("id", "job_id", "line", "reason", "raw").order_by("line", "id")
    return Paginator(rows, per_page).get_page(page_number)
