"""Staff screens of the loyalty programme: the customer panel's ledger (htmx, filtered, keyset
pages), the manual adjustment (Manager) and the programme dashboard."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from core.auth import role_required
from core.exceptions import DomainError
from core.htmx import vary_on_htmx
from core.roles import Role
from customers.models import Customer
from loyalty import selectors
from loyalty.forms import AdjustForm, LedgerFilterForm, TierHoldForm
from loyalty.services.ledger import points_adjust
from loyalty.services.tiers import tier_set_manual

LEDGER_PAGE = 25


@require_GET
@role_required(Role.AGENT)
def customer_ledger(request, pk: int):
    """The panel's ledger rows for the chosen filters, after an id (keyset), as a fragment."""
    customer = get_object_or_404(Customer.objects.only("pk"), pk=pk)
    form = LedgerFilterForm(request.GET)
    entries = selectors.ledger_entries(customer_id=customer.pk, **form.filters())
    before = request.GET.get("before", "")
    if before.isdigit() and len(before) <= 18:
        entries = entries.filter(pk__lt=int(before))
    rows = list(entries[: LEDGER_PAGE + 1])
    context = {
        "customer": customer,
        "entries": rows[:LEDGER_PAGE],
        "more": rows[LEDGER_PAGE - 1].pk if len(rows) > LEDGER_PAGE else None,
        "filter_query": request.GET.urlencode() if not before else "",
        "filters": form.filters(),
    }
    return vary_on_htmx(render(request, "loyalty/_ledger_rows.html", context))


def _form_errors_as_messages(request, form) -> None:
    for field, errors in form.errors.items():
        label = form.fields[field].label if field in form.fields else ""
        for error in errors:
            messages.error(request, f"{label}: {error}" if label else error)


@require_POST
@role_required(Role.MANAGER)
def customer_tier_hold(request, pk: int):
    customer = get_object_or_404(Customer.objects.only("pk"), pk=pk)
    form = TierHoldForm(request.POST)
    if not form.is_valid():
        _form_errors_as_messages(request, form)
    else:
        try:
            tier_set_manual(customer_id=customer.pk, staff=request.user, **form.cleaned_data)
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("Tier set."))
    return HttpResponseRedirect(reverse("customers:detail", args=[customer.pk]))


@require_POST
@role_required(Role.MANAGER)
def customer_adjust(request, pk: int):
    customer = get_object_or_404(Customer.objects.only("pk"), pk=pk)
    form = AdjustForm(request.POST)
    if not form.is_valid():
        _form_errors_as_messages(request, form)
    else:
        try:
            result = points_adjust(customer_id=customer.pk, staff=request.user, **form.cleaned_data)
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            if result.created:
                messages.success(request, _("Points adjusted: %(points)+d.") % {"points": result.entry.points})
    return HttpResponseRedirect(reverse("customers:detail", args=[customer.pk]))


@require_GET
@role_required(Role.AGENT)
def programme_dashboard(request):
    figures = selectors.programme_figures()
    chart = {
        "type": "bar",
        "labels": [row["label"] for row in figures["months"]],
        "datasets": [
            {"label": _("Earned"), "data": [row["earned"] for row in figures["months"]], "color": "series-1"},
            {"label": _("Redeemed"), "data": [row["redeemed"] for row in figures["months"]], "color": "series-3"},
            {"label": _("Expired"), "data": [row["expired"] for row in figures["months"]], "color": "series-2"},
        ],
        "y_title": _("Points"),
        "legend": True,
    }
    return render(request, "loyalty/dashboard.html", {"figures": figures, "chart_months": chart})
