"""Pages that show a background job: its live progress, then its outcome and rejected rows.

Any staff member may watch any job; starting one is up to the page of each kind of job."""

import json

from django.shortcuts import get_object_or_404, render
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from django.views.decorators.http import require_GET

from .auth import role_required
from .htmx import render_fragment
from .models import Job
from .roles import Role
from .selectors import job_rejected_rows_page

# Labels for the counters a job reports in Job.result; other keys are shown as they are.
RESULT_LABELS = {
    "rows": pgettext_lazy("job result count", "Rows read"),
    "created": pgettext_lazy("job result count", "Created"),
    "updated": pgettext_lazy("job result count", "Updated"),
    "unchanged": pgettext_lazy("job result count", "Unchanged"),
    "skipped": pgettext_lazy("job result count", "Skipped"),
    "rejected": pgettext_lazy("job result count", "Rejected"),
    "customers_created": pgettext_lazy("job result count", "Customers created"),
    "channels_created": pgettext_lazy("job result count", "Channels created"),
}
# Readable names of the kinds of job; a kind not listed is shown as it is stored.
JOB_KIND_LABELS = {
    "import_customers": _("Customer import"),
    "import_orders": _("Order import"),
    "import_events": _("Activity event import"),
}


def job_kind_label(job: Job) -> str:
    return JOB_KIND_LABELS.get(job.kind, job.kind)


def job_result_items(job: Job) -> list[tuple[str, str, object]]:
    """(key, label, value) for each plain counter in the job's result, known ones first."""
    result = job.result if isinstance(job.result, dict) else {}
    counters = {k: v for k, v in result.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    known = [(key, RESULT_LABELS[key], counters[key]) for key in RESULT_LABELS if key in counters]
    others = [(key, key.replace("_", " "), value) for key, value in counters.items() if key not in RESULT_LABELS]
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
