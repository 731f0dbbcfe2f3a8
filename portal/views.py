"""The customer portal's pages: logging in by e-mailed link, the home page, the customer's e-mails
and their e-mail preferences. Views stay thin: a form, a service or selector, a template."""

from __future__ import annotations

import logging
import uuid

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from redis.exceptions import RedisError

from core.client_ip import client_ip
from core.enqueue import QueueUnavailable, enqueue_on_commit
from portal.access import customer_required, portal_customer, portal_public
from portal.forms import LoginLinkRequestForm
from portal.ratelimit import rate_hit
from portal.registry import portal_home_sections_load
from portal.services import login_token_is_valid, login_token_spend, portal_login, portal_logout

logger = logging.getLogger(__name__)


def _rate_limited(request: HttpRequest, email: str) -> int | None:
    """Seconds to wait when this client or this address asked too often, else None. Both counters
    move on every request, whether or not the address is a customer's."""
    waits = [
        rate_hit(scope="login-ip", ident=client_ip(request) or "unknown", rate=settings.PORTAL_LOGIN_RATE_PER_IP),
        rate_hit(scope="login-email", ident=email, rate=settings.PORTAL_LOGIN_RATE_PER_EMAIL),
    ]
    waits = [wait for wait in waits if wait is not None]
    return max(waits) if waits else None


@portal_public
@never_cache
@require_http_methods(["GET", "POST"])
def login(request: HttpRequest) -> HttpResponse:
    """Ask for a login link. Every valid address gets the same answer (a redirect to the same page);
    the lookup and the e-mail happen in a task after it."""
    if request.method == "GET" and portal_customer(request) is not None:
        return redirect("portal:home")
    form = LoginLinkRequestForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            email = form.cleaned_data["email"]
            try:
                wait = _rate_limited(request, email)
                if wait is None:
                    enqueue_on_commit("portal.tasks.login_link_send", email, str(uuid.uuid4()))
                    return redirect("portal:login_sent")
            except (QueueUnavailable, RedisError):
                # The broker (or the Redis holding the counters, usually the same one) is down: say so
                # plainly; nothing was queued, and the customer may simply ask again.
                logger.exception("portal login link not queued")
                form.add_error(None, _("We could not send the link now. Please try again in a minute."))
                response = render(request, "portal/login.html", {"form": form}, status=503)
                response["Retry-After"] = "60"
                return response
            form.add_error(None, _("Too many login requests. Please wait a few minutes and try again."))
            response = render(request, "portal/login.html", {"form": form}, status=429)
            response["Retry-After"] = str(wait)
            return response
        status = 400
    return render(request, "portal/login.html", {"form": form}, status=status)


@portal_public
@require_GET
def login_sent(request: HttpRequest) -> HttpResponse:
    return render(request, "portal/login_sent.html", {"minutes": settings.PORTAL_LOGIN_LINK_MINUTES})


# The link's URL carries its token: it must never leave in a Referer header. (Not "no-referrer": that
# makes browsers send "Origin: null" with the button's POST, which the CSRF check rightly refuses.)
LINK_REFERRER_POLICY = "same-origin"


def _link_gone(request: HttpRequest) -> HttpResponse:
    response = render(request, "portal/link_invalid.html", status=410)
    response["Referrer-Policy"] = LINK_REFERRER_POLICY
    return response


@portal_public
@never_cache
@require_http_methods(["GET", "POST"])
def login_link(request: HttpRequest, token: str) -> HttpResponse:
    """The link from the e-mail. GET only shows a button (mail scanners open links, and must not
    spend them); the button's POST spends the link and logs the customer in."""
    if request.method == "GET":
        if not login_token_is_valid(token=token):
            return _link_gone(request)
        response = render(request, "portal/link_confirm.html")
        response["Referrer-Policy"] = LINK_REFERRER_POLICY
        return response
    customer = login_token_spend(token=token)
    if customer is None:
        return _link_gone(request)
    portal_login(request, customer=customer)
    return redirect("portal:home")


@portal_public
@require_POST
def logout(request: HttpRequest) -> HttpResponse:
    portal_logout(request)
    messages.success(request, _("You are logged out."))
    return redirect("portal:login")


@customer_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    sections = portal_home_sections_load(customer=request.portal_customer)
    return render(request, "portal/home.html", {"customer": request.portal_customer, "sections": sections})
