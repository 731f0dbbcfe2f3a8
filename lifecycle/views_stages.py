"""The lifecycle stage screens: the dashboard, the customers behind each of its numbers, the manual
stage change (htmx, from the customer page's panel), starting an evaluation, and the tasks inbox.

Thin: data from lifecycle.selectors_stages / selectors_tasks, writes through the services."""

from __future__ import annotations

from django.contrib import messages
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from core.auth import role_required
from core.exceptions import DomainError
from core.roles import Role, role_at_least
from customers.models import Customer, Task
from lifecycle import selectors_stages as selectors
from lifecycle.forms_stages import StageChangeForm, TaskDoneForm
from lifecycle.models_stages import LifecycleRun, Stage
from lifecycle.selectors_tasks import open_tasks
from lifecycle.services.stages import customer_stage_set
from lifecycle.services.stages_jobs import lifecycle_evaluate_start
from lifecycle.services.tasks_inbox import task_done_with_note

SLOW_CACHE_SECONDS = 300
PAGE_SIZE = 50


def _funnel_chart(stages: list[dict]) -> dict:
    return {
        "type": "bar",
        "horizontal": True,
        "labels": [str(s["label"]) for s in stages],
        "datasets": [{"label": _("Customers"), "data": [s["customers"] for s in stages]}],
        "x_title": _("Customers"),
    }


def _transitions_chart(weekly: dict) -> dict:
    return {
        "type": "bar",
        "stacked": True,
        "legend": True,
        "labels": [week.isoformat() for week in weekly["weeks"]],
        "datasets": [
            {"label": str(stage.label), "data": weekly["by_stage"][stage.value], "color": f"stage-{stage.value}"} for stage in Stage
        ],
        "y_title": _("Stage changes"),
    }


def _health_chart(distribution: dict) -> dict:
    labels = [f"{lo}–{lo + 9}" for lo in range(0, 90, 10)] + ["90–100"]
    return {
        "type": "bar",
        "labels": labels,
        "datasets": [{"label": _("Customers"), "data": distribution["buckets"]}],
        "x_title": _("Health score"),
        "y_title": _("Customers"),
        "compact": True,
    }


@require_GET
@role_required(Role.AGENT)
def stages_dashboard(request):
    stages = selectors.stage_counts()
    weekly = selectors.transitions_by_week()
    distribution = selectors.health_distribution()
    # The cohort and band figures scan orders and events: computed at most every few minutes.
    cohorts = cache.get_or_set("lifecycle:cohorts", selectors.cohort_retention, SLOW_CACHE_SECONDS)
    band_report = cache.get_or_set("lifecycle:band-report", selectors.churn_rate_by_health_band, SLOW_CACHE_SECONDS)
    context = {
        "stages": stages,
        "not_evaluated": selectors.customers_without_stage(),
        "exits": selectors.stage_exit_figures(),
        "cohorts": cohorts,
        "distribution": distribution,
        "risks": selectors.churn_risk_counts(),
        "band_report": band_report,
        "last_run": LifecycleRun.objects.filter(status=LifecycleRun.Status.SUCCEEDED).first(),
        "chart_funnel": _funnel_chart(stages),
        "chart_transitions": _transitions_chart(weekly),
        "chart_health": _health_chart(distribution),
        "may_evaluate": role_at_least(request.user, Role.MANAGER),
    }
    return render(request, "lifecycle/stages/dashboard.html", context)


@require_GET
@role_required(Role.AGENT)
def stage_customers(request):
    """The customers behind a number of the dashboard (?stage=, ?risk=, ?band=)."""
    stage, risk, band = request.GET.get("stage", ""), request.GET.get("risk", ""), request.GET.get("band", "")
    page = Paginator(selectors.lifecycle_customers(stage=stage, risk=risk, band=band), PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"page": page, "stage": stage, "risk": risk, "band": band, "stage_label": dict(Stage.choices).get(stage, "")}
    return render(request, "lifecycle/stages/customers.html", context)


@require_POST
@role_required(Role.MANAGER)
def stages_evaluate(request):
    try:
        job = lifecycle_evaluate_start(created_by=request.user, enqueue=True)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("lifecycle:stages")
    return redirect("job-detail", pk=job.pk)


def _panel_response(request, customer, form=None, status=200):
    from lifecycle.ui_stages import customer_lifecycle_panel

    panel = customer_lifecycle_panel(customer=customer, user=request.user)
    if form is not None:
        panel["form"] = form
    return render(request, "lifecycle/stages/_customer_panel.html", {"panel": panel}, status=status)


@require_POST
@role_required(Role.MANAGER)
def customer_stage_change(request, pk: int):
    """A Manager moves the customer to another stage with a reason; htmx gets the panel back."""
    customer = get_object_or_404(Customer, pk=pk)
    form = StageChangeForm(request.POST)
    if form.is_valid():
        try:
            customer_stage_set(customer=customer, stage=form.cleaned_data["stage"], reason=form.cleaned_data["reason"], user=request.user)
        except DomainError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
    if form.errors:
        if request.htmx:
            return _panel_response(request, customer, form=form)  # htmx swaps 2xx only
        messages.error(request, " ".join(e for errs in form.errors.values() for e in errs))
    elif not request.htmx:
        messages.success(request, _("Stage changed."))
    if request.htmx:
        return _panel_response(request, customer)
    return redirect("customers:detail", pk=customer.pk)


@require_GET
@role_required(Role.AGENT)
def tasks_inbox(request):
    everyone = request.GET.get("who") == "all" and role_at_least(request.user, Role.MANAGER)
    page = Paginator(open_tasks(user=request.user, everyone=everyone), PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"page": page, "everyone": everyone, "may_see_all": role_at_least(request.user, Role.MANAGER), "form": TaskDoneForm()}
    return render(request, "lifecycle/stages/tasks.html", context)


@require_POST
@role_required(Role.AGENT)
def task_done(request, pk: int):
    get_object_or_404(Task, pk=pk)
    form = TaskDoneForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Say what was done."))
    else:
        try:
            task_done_with_note(task_id=pk, user=request.user, note=form.cleaned_data["note"])
        except PermissionError as exc:
            raise PermissionDenied(str(exc)) from exc
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("Task done."))
    url = reverse("lifecycle:tasks")
    return redirect(f"{url}?who=all" if request.POST.get("who") == "all" else url)
