"""The value screens: the dashboard (charts, channel table, budget split), the recompute runs
page, and the customer value panel (lifecycle/templatetags/lifecycle_value.py).

Data come from lifecycle.selectors; the views only shape it for the templates and for the chart
specs that static/js/charts.js draws from <script type="application/json"> elements.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from core.auth import role_required
from core.background import tasks_run_in_process
from core.exceptions import DomainError
from core.htmx import render_fragment
from core.roles import Role, role_at_least
from customers.models import AcquisitionChannel
from lifecycle import selectors
from lifecycle.models import ClvRun
from lifecycle.selectors import LTV_CAC_TARGET
from lifecycle.services.clv_runs import clv_run_start

HEAT_STEPS = 10  # P(alive) is shown in 10 colour steps (CSS classes heat--0 .. heat--10)


def _number(value) -> float | None:
    return None if value is None else float(value)


def _histogram_chart(histogram: dict, currency: str) -> dict:
    return {
        "type": "bar",
        "labels": [f"{b['lo']:,.0f}–{b['hi']:,.0f}" for b in histogram["bins"]],
        "datasets": [{"label": _("Customers"), "data": [b["count"] for b in histogram["bins"]]}],
        "x_title": _("Predicted CLV (%(currency)s), 12 months") % {"currency": currency},
        "y_title": _("Customers"),
        "compact": True,
    }


def _ltv_cac_chart(channels: list[dict]) -> dict:
    rated = [c for c in channels if c["ltv_cac"] is not None]
    return {
        "type": "bar",
        "labels": [c["name"] for c in rated],
        "datasets": [{"label": _("LTV/CAC"), "data": [_number(c["ltv_cac"]) for c in rated], "flags": [c["flagged"] for c in rated]}],
        "threshold": {"value": float(LTV_CAC_TARGET), "label": _("Target %(value)s") % {"value": LTV_CAC_TARGET}},
        "y_title": _("LTV/CAC"),
    }


def _segments_chart(segments: list[dict]) -> dict:
    return {
        "type": "bar",
        "horizontal": True,
        "labels": [str(s["label"]) for s in segments],
        "datasets": [{"label": _("Customers"), "data": [s["customers"] for s in segments]}],
        "x_title": _("Customers"),
    }


def _heatmap_rows(heatmap: dict) -> list[dict]:
    """Rows of cells with the CSS step (0-10) of their mean P(alive); None for empty cells."""
    rows = []
    for label, cells in zip(heatmap["frequency_labels"], heatmap["cells"], strict=True):
        rows.append(
            {
                "label": label,
                "cells": [
                    {
                        "p_alive": cell["p_alive"],
                        "count": cell["count"],
                        "step": None if cell["p_alive"] is None else round(cell["p_alive"] * HEAT_STEPS),
                    }
                    for cell in cells
                ],
            }
        )
    return rows


def _budget_rows(channels: list[dict], budget: dict) -> list[dict]:
    allocation = {a["id"]: a for a in budget["channels"]}
    return [
        {**channel, "status_label": AcquisitionChannel.Status(channel["status"]).label, "allocation": allocation.get(channel["id"])}
        for channel in channels
    ]


@require_GET
@role_required(Role.AGENT)
def value_dashboard(request):
    model = selectors.clv_model_summary()
    channels = selectors.channel_value_summary()
    budget = selectors.budget_split(channels=channels)
    histogram = selectors.clv_histogram(field="predicted_clv")
    segments = selectors.clv_by_segment()
    heatmap = selectors.p_alive_heatmap()
    currency = settings.DEFAULT_CURRENCY
    context = {
        "model": model,
        "currency": currency,
        "channels": _budget_rows(channels, budget),
        "budget": budget,
        "ltv_cac_target": LTV_CAC_TARGET,
        "histogram": histogram,
        "segments": segments,
        "cohorts": selectors.clv_by_cohort(),
        "time_unit_label": ClvRun.TimeUnit(model["time_unit"]).label if model else "",
        "heatmap": heatmap,
        "heat_rows": _heatmap_rows(heatmap),
        "recency_labels": [f"{int(lo * 100)}–{int(hi * 100)}%" for lo, hi in zip(heatmap["recency_edges"], heatmap["recency_edges"][1:])],
        "chart_histogram": _histogram_chart(histogram, currency),
        "chart_ltv_cac": _ltv_cac_chart(channels),
        "chart_segments": _segments_chart(segments),
    }
    return render(request, "lifecycle/dashboard.html", context)


@require_GET
@role_required(Role.AGENT)
def value_runs(request):
    runs = selectors.clv_run_list(limit=20)
    latest = runs[0] if runs else None
    repeat_buyers = selectors.clv_run_repeat_buyers(latest) if latest else None
    for run in runs:
        run.outcome = selectors.clv_run_outcome(run, repeat_buyers=repeat_buyers if run is latest else None)
    context = {
        "runs": runs,
        "latest": latest,
        "may_recompute": role_at_least(request.user, Role.MANAGER),
    }
    return render_fragment(request, "lifecycle/runs.html", "runs-body", context)


@require_POST
@role_required(Role.MANAGER)
def value_recompute(request):
    try:
        run = clv_run_start(created_by=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        level, text = _recompute_message(run)
        messages.add_message(request, level, text)
    return redirect("lifecycle:runs")


def _recompute_message(run: ClvRun) -> tuple[int, str]:
    """What the button did, told as the run stands now: run in this process (core.background), it
    may be running or already finished; only with Celery workers does it wait in a queue."""
    run.refresh_from_db(fields=["status"])
    args = {"id": run.pk, "day": run.as_of}
    if run.status == ClvRun.Status.QUEUED and not tasks_run_in_process():
        return messages.SUCCESS, _("Recompute #%(id)s for %(day)s is queued; a worker will start it.") % args
    if run.status in (ClvRun.Status.QUEUED, ClvRun.Status.RUNNING):
        return messages.SUCCESS, _("Recompute #%(id)s for %(day)s started; this page shows its progress.") % args
    if run.status == ClvRun.Status.SUCCEEDED:
        return messages.SUCCESS, _("Recompute #%(id)s for %(day)s finished.") % args
    if run.status == ClvRun.Status.NOT_CONVERGED:
        return messages.WARNING, _("Recompute #%(id)s for %(day)s finished, but the model was not fitted; see below.") % args
    return messages.ERROR, _("Recompute #%(id)s for %(day)s failed; see below.") % args

