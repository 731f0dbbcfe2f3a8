"""Staff pages of the referral programme: the dashboard, the referrals list with its filters and a
referral's page (signals and event log), the review queue and the payout list. Agents read; the
review decisions and marking payouts paid need a Manager."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from core.auth import role_required
from core.exceptions import DomainError
from core.roles import Role, role_at_least
from referrals import selectors
from referrals.forms import PayoutFilterForm, PayoutPaidForm, ReferralFilterForm, ReviewDecisionForm
from referrals.models import Payout, Referral

PAGE = 50


def _keyset_page(request, rows, size: int = PAGE) -> dict:
    """One page of `rows` (newest first), the id to continue before (None at the end) and the
    query string without the position, for the "older" link."""
    rows = list(rows[: size + 1])
    query = request.GET.copy()
    query.pop("before", None)
    return {"rows": rows[:size], "more": rows[size - 1].pk if len(rows) > size else None, "query": query.urlencode()}


def _form_errors_as_messages(request, form) -> None:
    for field, errors in form.errors.items():
        label = form.fields[field].label if field in form.fields else ""
        for error in errors:
            messages.error(request, f"{label}: {error}" if label else error)


@require_GET
@role_required(Role.AGENT)
def dashboard(request):
    figures = selectors.programme_figures()
    states = [row for row in figures["states"] if row["count"]] or figures["states"]
    chart_states = {
        "type": "bar",
        "labels": [str(row["label"]) for row in states],
        "datasets": [{"label": _("Referrals"), "data": [row["count"] for row in states]}],
        "horizontal": True,
        "x_title": _("Referrals"),
    }
    funnel = figures["funnel"]
    chart_funnel = {
        "type": "bar",
        "labels": [_("Share link visits"), _("Sign-ups"), _("Qualified")],
        "datasets": [{"label": _("People"), "data": [funnel["visits"], funnel["signups"], funnel["qualified"]]}],
        "y_title": _("People"),
    }
    chart_flags = {
        "type": "bar",
        "labels": [row["label"] for row in figures["flags"]],
        "datasets": [
            {"label": _("Flagged for review"), "data": [row["review"] for row in figures["flags"]], "color": "series-2"},
            {"label": _("Auto-rejected"), "data": [row["rejected"] for row in figures["flags"]], "color": "flag"},
        ],
        "stacked": True,
        "legend": True,
        "y_title": _("Referrals"),
    }
    context = {"figures": figures, "chart_states": chart_states, "chart_funnel": chart_funnel, "chart_flags": chart_flags}
    return render(request, "referrals/dashboard.html", context)


@require_GET
@role_required(Role.AGENT)
def referral_list(request):
    form = ReferralFilterForm(request.GET)
    page = _keyset_page(request, selectors.referral_list(**form.filters()))
    return render(request, "referrals/list.html", {"form": form, "page": page})


@require_GET
@role_required(Role.AGENT)
def referral_detail(request, pk: int):
    try:
        referral = selectors.referral_detail(referral_id=pk)
    except Referral.DoesNotExist:
        raise Http404 from None
    return render(request, "referrals/detail.html", {
        "referral": referral, "may_review": role_at_least(request.user, Role.MANAGER) and referral.state == Referral.State.FLAGGED,
        "decision_form": ReviewDecisionForm(auto_id="decision_%s"),
    })


@require_GET
@role_required(Role.AGENT)
def review_queue(request):
    return render(request, "referrals/review.html", {
        "queue": selectors.review_queue(),
        "may_review": role_at_least(request.user, Role.MANAGER),
    })


@require_POST
@role_required(Role.MANAGER)
def review_decide(request, pk: int):
    from referrals.services.review import referral_approve, referral_reject

    form = ReviewDecisionForm(request.POST)
    next_url = reverse("referrals:review")
    if request.POST.get("next") == "detail":
        next_url = reverse("referrals:detail", args=[pk])
    if not form.is_valid():
        _form_errors_as_messages(request, form)
        return HttpResponseRedirect(next_url)
    decide = referral_approve if form.cleaned_data["decision"] == "approve" else referral_reject
    try:
        decide(referral_id=pk, staff=request.user, note=form.cleaned_data["note"])
    except Referral.DoesNotExist:
        raise Http404 from None
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        if form.cleaned_data["decision"] == "approve":
            messages.success(request, _("Referral #%(id)s approved.") % {"id": pk})
        else:
            messages.success(request, _("Referral #%(id)s rejected.") % {"id": pk})
    return HttpResponseRedirect(next_url)


@require_GET
@role_required(Role.AGENT)
def payout_list(request):
    form = PayoutFilterForm(request.GET)
    page = _keyset_page(request, selectors.payout_list(**form.filters()))
    return render(request, "referrals/payouts.html", {
        "form": form, "page": page,
        "may_pay": role_at_least(request.user, Role.MANAGER), "paid_form": PayoutPaidForm(auto_id=False),
    })


@require_POST
@role_required(Role.MANAGER)
def payout_paid(request, pk: int):
    from referrals.services.payouts import payout_mark_paid

    form = PayoutPaidForm(request.POST)
    if not form.is_valid():
        _form_errors_as_messages(request, form)
    else:
        try:
            outcome = payout_mark_paid(payout_id=pk, staff=request.user, reference=form.cleaned_data["reference"])
        except Payout.DoesNotExist:
            raise Http404 from None
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            if outcome.changed:
                messages.success(request, _("Payout #%(id)s marked paid.") % {"id": pk})
            else:
                messages.info(request, _("Payout #%(id)s was already marked paid.") % {"id": pk})
    return HttpResponseRedirect(reverse("referrals:payouts"))
