"""The import page: pick a kind of file, upload a CSV, then watch the background job.

Every staff member sees the page and the recent imports; starting an import needs a Manager."""

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods

from core.auth import ROLE_DENIED_MESSAGE, role_required
from core.background import tasks_run_in_process
from core.exceptions import DomainError
from core.models import Job
from core.roles import Role, role_at_least
from core.selectors import job_list_recent
from core.views_jobs import job_kind_label
from customers.services.imports import IMPORT_KINDS, import_job_start

# The Job.kind import_job_start gives each kind of import.
IMPORT_JOB_KINDS = {kind: f"import_{kind}" for kind in IMPORT_KINDS}
# Bytes looked at to tell an empty (or blank) file; the import service checks the header itself.
SNIFF_BYTES = 4096


def import_max_bytes() -> int:
    return settings.IMPORT_MAX_UPLOAD_BYTES


class ImportForm(forms.Form):
    kind = forms.ChoiceField(label=_("Kind of file"), widget=forms.RadioSelect)
    file = forms.FileField(
        label=_("CSV file"),
        widget=forms.FileInput(attrs={"accept": ".csv,text/csv"}),
        error_messages={"required": _("Choose a CSV file to upload.")},
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = [(kind, spec["label"]) for kind, spec in IMPORT_KINDS.items()]
        self.fields["file"].help_text = _("UTF-8, comma-separated, with a header row; at most %(limit)s.") % {
            "limit": filesizeformat(import_max_bytes())
        }

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if not upload.name.lower().endswith(".csv"):
            raise forms.ValidationError(_("Only .csv files can be imported."), code="extension")
        limit = import_max_bytes()
        if upload.size > limit:
            raise forms.ValidationError(
                _("The file is %(size)s; the largest file you can import is %(limit)s."),
                code="too_big",
                params={"size": filesizeformat(upload.size), "limit": filesizeformat(limit)},
            )
        upload.seek(0)
        head = upload.read(SNIFF_BYTES)
        upload.seek(0)
        if not head.strip():
            raise forms.ValidationError(_("The file is empty."), code="empty")
        return upload


def _started_message(job) -> tuple[int, str]:
    """What the upload did, told as the job stands now: run in this process (core.background), it may
    be running or already finished; only with Celery workers does it wait in a queue."""
    job.refresh_from_db(fields=["status"])
    if job.status == Job.Status.QUEUED and not tasks_run_in_process():
        return messages.SUCCESS, _("Import queued; a worker will start it.")
    if job.status in (Job.Status.QUEUED, Job.Status.RUNNING):
        return messages.SUCCESS, _("Import started; this page shows its progress.")
    if job.status == Job.Status.SUCCEEDED:
        return messages.SUCCESS, _("Import finished.")
    return messages.ERROR, _("Import failed; see below why.")


def _kinds_with_columns():
    return [
        {"kind": kind, "label": spec["label"], "required": spec["required"], "optional": spec["optional"]}
        for kind, spec in IMPORT_KINDS.items()
    ]


@require_http_methods(["GET", "POST"])
@role_required(Role.AGENT)
def import_page(request):
    can_start = role_at_least(request.user, Role.MANAGER)
    if request.method == "POST":
        if not can_start:
            raise PermissionDenied(ROLE_DENIED_MESSAGE)
        form = ImportForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                job = import_job_start(
                    kind=form.cleaned_data["kind"], uploaded_file=form.cleaned_data["file"], user=request.user
                )
            except DomainError as exc:
                form.add_error("file" if exc.field in (None, "file") else None, exc.message)
            else:
                level, text = _started_message(job)
                messages.add_message(request, level, text)
                return redirect("job-detail", pk=job.pk)
    else:
        form = ImportForm(initial={"kind": request.GET.get("kind", "customers")})
    recent_jobs = list(job_list_recent(kinds=IMPORT_JOB_KINDS.values()))
    for job in recent_jobs:
        job.kind_label = job_kind_label(job)
    context = {
        "form": form,
        "can_start": can_start,
        "kinds": _kinds_with_columns(),
        "recent_jobs": recent_jobs,
    }
    template = "customers/import.html"
    if request.method == "GET" and request.htmx and not request.htmx.history_restore_request:
        # The recent imports refresh themselves when one of their jobs finishes.
        template += "#recent-imports"
    return render(request, template, context, status=400 if form.errors else 200)
