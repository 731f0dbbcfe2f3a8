"""Pages that show a background job: its live progress, then its outcome and rejected rows.

Any staff member may watch any job; starting one is up to the page of each kind of job."""

import json

from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from .auth import role_required
from .htmx import render_fragment
from .models import Job
from .registry import job_kind
from .roles import Role
from .selectors import job_rejected_rows_page


def job_kind_label(job: Job) -> str:
    """The readable name an app registered for the job's kind (core.registry); else the kind as stored."""
    kind = job_kind(job.kind)
    return str(kind.label) if kind else job.kind


def job_result_items(job: Job) -> list[tuple[str, str, object]]:
    """(key, label, value) for each plain counter in the job's result, the ones its kind labels first,
    in the order the kind lists them."""
    kind = job_kind(job.kind)
    labels = kind.result_labels if kind else {}
    result = job.result if isinstance(job.result, dict) else {}
    counters = {k: v for k, v in result.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    known = [(key, labels[key], counters[key]) for key in labels if key in counters]
    others = [(key, key.replace("_", " "), value) for key, value in counters.items() if key not in labels]
    return known + others


def finished_trigger(job: Job) -> str:
    """The HX-Trigger header that tells the page a job is over, so other parts of it can reload."""
    detail = {"id": job.pk, "status": job.status}
    return json.dumps({"job-finished": detail, f"job-finished-{job.pk}": detail})


@require_GET
@role_required(Role.AGENT)
def job_detail(request, pk: int):
    job = get_object_or_404(Job.objects.select_related("created_by"), pk=pk)
    context = {"job": job, "kind_label": job_kind_label(job), "result_items": job_result_items(job)}
    if job.is_finished:
        context["rejected_page"] = job_rejected_rows_page(job=job, page_number=request.GET.get("page"))
    return render_fragment(request, "core/job_detail.html", "job-result", context)


@require_GET
@role_required(Role.AGENT)
def job_progress(request, pk: int):
    """The progress component alone; the component polls this URL until the job is over."""
    job = get_object_or_404(Job, pk=pk)
    response = render(request, "components/job_progress.html", {"job": job})
    if job.is_finished and request.htmx:
        response["HX-Trigger"] = finished_trigger(job)
    return response
