"""The customer's loyalty pages in the portal (mounted at /portal/points/ by loyalty.ui): balance,
pending points, tier and benefits with the progress to the next, the next expiry, the history, and
the rewards catalogue with redemption.

The customer is always request.portal_customer (portal.access.customer_required): no page takes a
customer or account id, so there is nothing of another customer to ask for.

A redemption form carries an idempotency key made of the reward and the account's state when the
page was rendered (its latest ledger entry): a double click, a resubmitted form and the same page
open in two tabs all post the same key, so they redeem once and show the same voucher; a page
loaded after that redemption has a new key, so redeeming again on purpose works."""

from __future__ import annotations

import re

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from core.exceptions import DomainError
from loyalty.models import Reward
from loyalty.selectors import account_summary, ledger_entries
from portal.access import customer_required

HISTORY_LIMIT = 50
REDEEM_KEY = re.compile(r"portal-(?P<reward>[0-9]{1,18})-[0-9]{1,18}\Z")


def _account_state(summary) -> int:
    """The account's latest entry id (0 before any): what the page showed when it was rendered."""
    if summary is None:
        return 0
    return summary["account"].entries.order_by("-id").values_list("id", flat=True).first() or 0


@customer_required
@require_GET
def points(request: HttpRequest) -> HttpResponse:
    customer = request.portal_customer
    summary = account_summary(customer_id=customer.pk, with_progress=True)
    entries = list(ledger_entries(customer_id=customer.pk)[:HISTORY_LIMIT]) if summary else []
    return render(request, "loyalty/portal/points.html", {"summary": summary, "entries": entries, "limit": HISTORY_LIMIT})


@customer_required
@require_GET
def rewards(request: HttpRequest) -> HttpResponse:
    customer = request.portal_customer
    summary = account_summary(customer_id=customer.pk)
    catalogue = list(Reward.objects.filter(active=True).exclude(stock=0).order_by("cost", "name"))
    context = {
        "summary": summary,
        "rewards": catalogue,
        "state": _account_state(summary),
        "vouchers": list(summary["account"].vouchers.select_related("reward")[:20]) if summary else [],
    }
    return render(request, "loyalty/portal/rewards.html", context)


@customer_required
@require_POST
def reward_redeem_view(request: HttpRequest) -> HttpResponse:
    from loyalty.services.rewards import reward_redeem

    customer = request.portal_customer
    key = request.POST.get("key", "")
    match = REDEEM_KEY.match(key)
    if match is None:
        messages.error(request, _("This redemption could not be read; reload the page and try again."))
        return redirect("portal:loyalty:rewards")
    try:
        voucher, result = reward_redeem(
            customer_id=customer.pk, reward_id=int(match["reward"]), idempotency_key=key
        )
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        if result.created:
            messages.success(request, _("Redeemed: %(reward)s. Your voucher code is %(code)s.")
                             % {"reward": voucher.reward.name, "code": voucher.code})
        else:
            messages.info(request, _("Already redeemed: %(reward)s. Your voucher code is %(code)s.")
                          % {"reward": voucher.reward.name, "code": voucher.code})
    return redirect("portal:loyalty:rewards")


def points_home_section(*, customer) -> dict | None:
    """The portal home's points card (two queries)."""
    summary = account_summary(customer_id=customer.pk)
    return {"summary": summary}
