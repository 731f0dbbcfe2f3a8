"""The customer's referral pages in the portal: their code and share link (created on first view),
their referrals with each one's state (the referees' names masked), and their rewards with the
claim button. Mounted by referrals.ui at /portal/referrals/ and /portal/rewards/.

The customer is always request.portal_customer; a reward id in a URL is looked up among the
customer's own rewards only (portal.access.customer_object_or_404), so another customer's reward is
a 404, never a 403.

The claim is a plain form POST (the portal loads no htmx): it answers with a redirect to the
reward's page, which shows the outcome; repeating the POST (double click, two tabs, a resubmitted
form) claims nothing more and lands on the same page."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from core.exceptions import DomainError
from portal.access import customer_object_or_404, customer_required
from referrals import selectors
from referrals.models import Referral
from referrals.models import Reward as ReferralReward
from referrals.services.codes import referral_code_for


def share_link(code: str) -> str:
    """The public sign-up page of the code (the referrals app's /r/<code>/)."""
    return f"{settings.SITE_URL}/r/{code}/"


def _decorate(rewards: list[ReferralReward]) -> list[ReferralReward]:
    for reward in rewards:
        reward.claimable = selectors.reward_claimable(reward)
    return rewards


@customer_required
@require_GET
def overview(request: HttpRequest) -> HttpResponse:
    customer = request.portal_customer
    code = referral_code_for(customer_id=customer.pk)
    context = {
        "code": code,
        "link": share_link(code.code),
        "referrals": selectors.portal_referrals(customer_id=customer.pk),
        "rewards": _decorate(selectors.customer_rewards(customer_id=customer.pk)),
        "states": Referral.State,
    }
    return render(request, "referrals/portal/overview.html", context)


# The reward pages look the reward up before checking the method: another customer's reward is a
# 404 whatever the method, so not even a 405 tells that its id exists.
@customer_required
def reward_detail(request: HttpRequest, reward_pk: int) -> HttpResponse:
    reward = customer_object_or_404(request, ReferralReward.objects.select_related("payout"), pk=reward_pk)
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    _decorate([reward])
    return render(request, "referrals/portal/reward.html", {"reward": reward})


@customer_required
def reward_claim_view(request: HttpRequest, reward_pk: int) -> HttpResponse:
    from referrals.services.claims import reward_claim

    reward = customer_object_or_404(request, ReferralReward.objects.only("pk", "customer_id"), pk=reward_pk)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    try:
        outcome = reward_claim(reward_id=reward.pk, customer_id=request.portal_customer.pk)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        if outcome.created:
            messages.success(request, _("Reward claimed."))
        else:
            messages.info(request, _("You already claimed this reward."))
    # 303: the browser follows with a GET, so reloading the outcome page never re-posts.
    response = redirect("portal:referral_rewards:detail", reward_pk=reward.pk)
    response.status_code = 303
    return response


def referrals_home_section(*, customer) -> dict | None:
    """The portal home's referral card: the code if the customer has one and rewards to claim
    (two queries; the code is created on the referral page, not by looking at home)."""
    from referrals.models import ReferralCode

    code = ReferralCode.objects.filter(customer_id=customer.pk).values_list("code", flat=True).first()
    available = ReferralReward.objects.filter(
        customer_id=customer.pk, state=ReferralReward.State.AVAILABLE
    ).exclude(kind=ReferralReward.Kind.DISCOUNT).count()
    return {"code": code, "available": available}
