"""The public sign-up page of a share link (/r/<code>/): no login, CSRF-protected, rate-limited per
client IP like the portal's login, no JavaScript. A visit counts for the code's funnel; the form
creates the referee as a lead customer and the referral (source "signup") through the one intake
service, with the client's IP (core.client_ip.client_ip, the project's one rule), user agent and
a device-id cookie this page sets."""

from __future__ import annotations

import contextlib
import secrets

from django.conf import settings
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from core.auth import public_view
from core.client_ip import client_ip
from core.exceptions import DomainError
from portal.ratelimit import rate_hit
from referrals.forms_signup import ReferralSignupForm
from referrals.models import Referral, ReferralEvent
from referrals.services.codes import code_normalise
from referrals.services.intake import ReferralRefused, customer_for_signup, referral_code_find, referral_intake
from referrals.services.visits import share_visit_count

DEVICE_COOKIE = "rdid"
DEVICE_COOKIE_AGE = 2 * 365 * 86400


def _device_id(request) -> tuple[str, bool]:
    """The browser's device id from its cookie, or a new one (and whether it is new)."""
    current = request.COOKIES.get(DEVICE_COOKIE, "")
    if 16 <= len(current) <= 64 and current.isalnum():
        return current, False
    return secrets.token_hex(16), True


def _unavailable(request, message: str):
    return render(request, "referrals/signup_unavailable.html", {"message": message}, status=404)


@public_view
@never_cache
@require_http_methods(["GET", "POST"])
def referral_signup(request, code: str):
    try:
        referral_code = referral_code_find(code)
    except DomainError:
        # Unknown and suspended read alike: a visitor learns nothing about other customers' codes.
        return _unavailable(request, _("This invitation link is not valid (any more)."))
    device_id, new_device = _device_id(request)
    form = ReferralSignupForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "GET":
        share_visit_count(code_id=referral_code.pk)
    elif form.is_valid():
        wait = rate_hit(scope="referral-signup-ip", ident=client_ip(request) or "unknown", rate=settings.REFERRAL_SIGNUP_RATE_PER_IP)
        if wait is not None:
            form.add_error(None, _("Too many sign-ups from your network. Please wait a few minutes and try again."))
            response = render(request, "referrals/signup.html", {"form": form, "code": referral_code.code}, status=429)
            response["Retry-After"] = str(wait)
            return response
        data = form.cleaned_data
        referee, created = customer_for_signup(
            first_name=data["first_name"], last_name=data["last_name"], email=data["email"],
            marketing_opt_in=data["marketing_opt_in"],
        )
        # The visitor sees the same thanks whatever the verdict: the page must not reveal whether an
        # address is known or why a referral was refused (staff see it in the review queue).
        with contextlib.suppress(ReferralRefused, DomainError):
            referral_intake(
                code=referral_code.code, referee_id=referee.pk, source=Referral.Source.SIGNUP,
                actor=ReferralEvent.Actor.CUSTOMER, ip=client_ip(request), user_agent=request.headers.get("User-Agent", ""),
                device_id=device_id, referee_existed=not created,
            )
        response = render(request, "referrals/signup_done.html", {"first_name": data["first_name"]})
        return _with_device(response, device_id, new_device, request)
    else:
        status = 400
    response = render(request, "referrals/signup.html", {"form": form, "code": code_normalise(code)}, status=status)
    return _with_device(response, device_id, new_device, request)


def _with_device(response, device_id: str, new: bool, request):
    if new:
        response.set_cookie(
            DEVICE_COOKIE, device_id, max_age=DEVICE_COOKIE_AGE, httponly=True, samesite="Lax", secure=request.is_secure()
        )
    return response
