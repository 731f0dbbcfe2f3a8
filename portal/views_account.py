"""The customer's own account pages in the portal: their e-mails and their e-mail preferences.

Every object is fetched through customer_object_or_404, so another customer's id is a 404."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from portal.access import customer_object_or_404, customer_required
from portal.forms import EmailPreferencesForm
from portal.selectors import MESSAGE_LIST_LIMIT, customer_messages, message_rendered, sent_messages
from portal.services import customer_email_preferences_set


@customer_required
@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest) -> HttpResponse:
    customer = request.portal_customer
    initial = {"marketing_opt_in": customer.email_opt_in, "language": customer.language}
    form = EmailPreferencesForm(request.POST if request.method == "POST" else None, initial=initial)
    if request.method == "POST":
        if form.is_valid():
            customer_email_preferences_set(
                customer=customer,
                marketing_opt_in=form.cleaned_data["marketing_opt_in"],
                language=form.cleaned_data["language"],
            )
            messages.success(request, _("Your e-mail preferences are saved."))
            return redirect("portal:preferences")
        return render(request, "portal/preferences.html", {"form": form, "customer": customer}, status=400)
    return render(request, "portal/preferences.html", {"form": form, "customer": customer})


@customer_required
@require_GET
def message_list(request: HttpRequest) -> HttpResponse:
    customer = request.portal_customer
    rows = [
        message_rendered(message=message, customer=customer)
        for message in customer_messages(customer=customer)[:MESSAGE_LIST_LIMIT]
    ]
    return render(request, "portal/message_list.html", {"rows": rows, "limit": MESSAGE_LIST_LIMIT})


@customer_required
@require_GET
def message_detail(request: HttpRequest, message_pk: int) -> HttpResponse:
    customer = request.portal_customer
    message = customer_object_or_404(request, sent_messages(), pk=message_pk)
    return render(request, "portal/message_detail.html", message_rendered(message=message, customer=customer))
