"""The outbox's pages: the staff overview (counts per day, failures, the pause switch) and the
customer's unsubscribe page behind the signed link of every marketing message.

The unsubscribe URL answers RFC 8058's one-click POST without a CSRF token: it is signed, names no
address, and only ever unsubscribes, so a forged cross-site POST can do nothing a mail client's
own one-click would not. Resubscribing is the opposite act and goes through a CSRF-checked form."""

from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_http_methods, require_POST

from core.auth import public_view, role_required
from core.roles import Role, role_at_least
from messaging import selectors, services
from messaging.models import Message, Purpose


@role_required(Role.AGENT)
def outbox(request):
    states = list(Message.State.choices)
    purposes = dict(Purpose.choices)
    daily = [
        {
            "day": row["day"],
            "purpose_label": purposes.get(row["purpose"], row["purpose"]),
            "counts": [row[value] for value, _label in states],
            "total": row["total"],
        }
        for row in selectors.message_daily_counts(days=30)
    ]
    context = {
        "states": states,
        "daily": daily,
        "failures": selectors.message_failure_list(),
        "state": selectors.outbox_state_get(),
        "may_resume": role_at_least(request.user, Role.MANAGER),
    }
    return render(request, "messaging/outbox.html", context)


@role_required(Role.MANAGER)
@require_POST
def resume(request):
    services.outbox_resume()
    return redirect("messaging:outbox")


def _private(response):
    # The token is in the URL: keep it out of Referer headers and search engines.
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex"
    return response


@public_view
@csrf_exempt
@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe(request, token: str):
    if request.method == "POST":
        if not services.unsubscribe_by_token(token=token):
            raise Http404
        if request.POST.get("List-Unsubscribe") == "One-Click":
            # A mailbox provider's one-click request: no page, just the answer.
            return _private(HttpResponse(_("Unsubscribed."), content_type="text/plain; charset=utf-8"))
        return _private(render(request, "messaging/unsubscribe.html", {"token": token, "done": "unsubscribed"}))
    if services.message_for_token(token) is None:
        raise Http404
    return _private(render(request, "messaging/unsubscribe.html", {"token": token, "done": ""}))


@public_view
@csrf_protect
@never_cache
@require_POST
def resubscribe(request, token: str):
    if not services.resubscribe_by_token(token=token):
        raise Http404
    return _private(render(request, "messaging/unsubscribe.html", {"token": token, "done": "resubscribed"}))
