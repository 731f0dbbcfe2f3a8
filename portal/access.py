"""Who the portal's visitor is, and the one rule of what they may see.

A customer's portal identity lives under its own session key and nothing else: request.user is never
set, so every staff page (which checks request.user) treats a customer as an anonymous visitor, and
a staff login never counts as a customer (a session that holds one is not a customer's session).
Logging in to either side ends the other (portal.services.portal_login flushes the session; the
staff login signal drops the portal key, see portal.apps).

Every portal view that shows a customer's data is wrapped in `customer_required` and fetches objects
with `customer_object_or_404`: another customer's object is a 404, never a 403, so the portal never
confirms that an id exists."""

from __future__ import annotations

from functools import wraps

from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django_htmx.http import HttpResponseClientRedirect

from customers.models import Customer

SESSION_KEY = "portal_customer_id"


def portal_customer(request: HttpRequest) -> Customer | None:
    """The customer this session belongs to, or None (anonymous, a staff session, or a customer who
    no longer exists). Loaded once per request."""
    if not hasattr(request, "_portal_customer"):
        customer = None
        customer_id = request.session.get(SESSION_KEY)
        user = getattr(request, "user", None)
        if customer_id is not None and not (user is not None and user.is_authenticated):
            customer = Customer.objects.filter(pk=customer_id).first()
        request._portal_customer = customer
    return request._portal_customer


def portal_public(view_func):
    """Mark a portal view as open to visitors without a portal session (the login pages); the
    URL-walking test holds every other portal view to `customer_required`."""
    view_func.portal_public = True
    return view_func


def customer_required(view_func):
    """The visitor must be logged in to the portal; `request.portal_customer` is then the customer.
    Anyone else goes to the portal's login page (an htmx request reloads the whole page)."""

    @wraps(view_func)
    def wrapper(request, *args, **kwargs):
        customer = portal_customer(request)
        if customer is None:
            login_url = reverse("portal:login")
            if getattr(request, "htmx", False):
                return HttpResponseClientRedirect(login_url)
            return redirect(login_url)
        request.portal_customer = customer
        return view_func(request, *args, **kwargs)

    wrapper.portal_customer_required = True
    return wrapper


def customer_object_or_404(request: HttpRequest, queryset: QuerySet | type[Model], *, customer_field: str = "customer",
                           **lookup) -> Model:
    """The object matching `lookup` among the logged-in customer's own, or Http404.

    `customer_field` is the path from the object to its customer ("customer", "account__customer").
    Use it in every portal view that takes an object id: it is the only place the rule lives."""
    customer = getattr(request, "portal_customer", None)
    if customer is None:
        # Called outside customer_required: never fall back to an unfiltered lookup.
        raise Http404
    if isinstance(queryset, type):
        queryset = queryset._default_manager.all()
    return get_object_or_404(queryset.filter(**{customer_field: customer}), **lookup)
