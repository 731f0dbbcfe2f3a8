"""What changes in the portal: login links requested and spent, portal sessions begun and ended,
and the customer's own e-mail preferences.

A login link is a random token mailed to the customer through the outbox; the database keeps only
its SHA-256. Spending it is one conditional UPDATE, so of two requests racing with the same link
exactly one logs in."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import logout as staff_logout
from django.db import IntegrityError, transaction
from django.db.models.functions import Lower
from django.http import HttpRequest
from django.middleware.csrf import rotate_token
from django.urls import reverse
from django.utils import timezone

from customers.models import Customer
from portal.access import SESSION_KEY
from portal.emails import LOGIN_TEMPLATE
from portal.models import LoginToken
from portal.signals import portal_logged_in


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def login_link_url(token: str) -> str:
    return settings.SITE_URL + reverse("portal:login_link", args=[token])


def customer_by_email(email: str) -> Customer | None:
    """The customer with this address, compared as customer_email_ci_uniq does (lower-cased)."""
    address = (email or "").strip().lower()
    if not address:
        return None
    return Customer.objects.alias(email_lower=Lower("email")).filter(email_lower=address).first()


def login_link_request(*, email: str, request_id: uuid.UUID | str) -> LoginToken | None:
    """Mail a login link to the customer with this address; None when there is no such customer or
    this request was already answered (a task that runs twice mails once: request_id is unique)."""
    from messaging.models import Purpose
    from messaging.services import message_send

    customer = customer_by_email(email)
    if customer is None:
        return None
    token = secrets.token_urlsafe(32)
    now = timezone.now()
    minutes = settings.PORTAL_LOGIN_LINK_MINUTES
    with transaction.atomic():
        # Links long dead go as the customer asks for a new one: the table stays small without a
        # cleanup job (the rate limit bounds what a day can add).
        LoginToken.objects.filter(customer=customer, expires_at__lt=now - timedelta(days=1)).delete()
        try:
            with transaction.atomic():
                login_token = LoginToken.objects.create(
                    token_hash=token_hash(token),
                    request_id=request_id,
                    customer=customer,
                    created_at=now,
                    expires_at=now + timedelta(minutes=minutes),
                )
        except IntegrityError:
            if LoginToken.objects.filter(request_id=request_id).exists():
                return None
            raise
        message_send(
            customer=customer,
            template=LOGIN_TEMPLATE,
            context={"login_url": login_link_url(token), "expires_minutes": minutes},
            key=f"portal-login:{request_id}",
            purpose=Purpose.TRANSACTIONAL,
        )
    return login_token


def _spendable(token: str):
    return LoginToken.objects.filter(token_hash=token_hash(token), used_at__isnull=True, expires_at__gt=timezone.now())


def login_token_is_valid(*, token: str) -> bool:
    """Whether the link can still log in. Reads only: a mail scanner opening the link spends nothing."""
    return _spendable(token).exists()


def login_token_spend(*, token: str) -> Customer | None:
    """Spend a login link: the customer it logs in, or None when it is unknown, used or expired.

    One UPDATE ... WHERE used_at IS NULL AND expires_at > now decides; the database runs two such
    updates of one row one after the other, and the second finds used_at set and changes nothing."""
    hashed = token_hash(token)
    with transaction.atomic():
        spent = _spendable(token).update(used_at=timezone.now())
        if spent != 1:
            return None
        return Customer.objects.filter(login_tokens__token_hash=hashed).first()


def portal_login(request: HttpRequest, *, customer: Customer) -> None:
    """Begin a portal session for `customer`. The old session is thrown away (a new key, so a
    session id planted before the login is worthless) and with it any staff login in this browser:
    one session is never both."""
    if getattr(request, "user", None) is not None and request.user.is_authenticated:
        staff_logout(request)  # also flushes the session
    else:
        request.session.flush()
    request.session[SESSION_KEY] = customer.pk
    request.session.set_expiry(settings.PORTAL_SESSION_SECONDS)
    rotate_token(request)
    request._portal_customer = customer
    transaction.on_commit(lambda: portal_logged_in.send(sender=Customer, request=request, customer=customer))


def portal_logout(request: HttpRequest) -> None:
    request.session.flush()
    request._portal_customer = None


def customer_email_preferences_set(*, customer: Customer, marketing_opt_in: bool, language: str) -> Customer:
    """The customer's own choice of marketing e-mail and of the language we write in.

    Opting out is an unsubscribe: consent withdrawn and the address on the suppression list as
    "unsubscribed", as the one-click link does. Opting in records the consent's time and lifts only
    an "unsubscribed" entry, never a hard bounce, complaint or one staff added."""
    from messaging.models import Suppression, normalise_address
    from messaging.services import suppression_add

    with transaction.atomic():
        customer = Customer.objects.select_for_update().get(pk=customer.pk)
        fields = []
        if language != customer.language:
            customer.language = language
            fields.append("language")
        address = normalise_address(customer.email)
        if marketing_opt_in and not customer.email_opt_in:
            customer.email_opt_in, customer.email_opt_in_at = True, timezone.now()
            fields += ["email_opt_in", "email_opt_in_at"]
            Suppression.objects.filter(address=address, reason=Suppression.Reason.UNSUBSCRIBED).delete()
        elif not marketing_opt_in and customer.email_opt_in:
            customer.email_opt_in, customer.email_opt_in_at = False, None
            fields += ["email_opt_in", "email_opt_in_at"]
            if address:
                suppression_add(address=address, reason=Suppression.Reason.UNSUBSCRIBED, note="portal")
        if fields:
            customer.save(update_fields=[*fields, "updated_at"])
    return customer
