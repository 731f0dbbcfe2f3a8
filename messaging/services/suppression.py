"""The suppression list and the unsubscribe link, and resuming a paused outbox.

An unsubscribe link carries the message's id signed with SECRET_KEY (django.core.signing): it
names no address, cannot be forged, and only ever unsubscribes the address that message went to."""

from __future__ import annotations

from functools import lru_cache

from django.core import signing
from django.db import transaction
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from core.exceptions import DomainError
from messaging.models import Message, OutboxState, Suppression, normalise_address

UNSUBSCRIBE_SALT = "messaging.unsubscribe"


def unsubscribe_token(*, message_id: int) -> str:
    return signing.dumps(message_id, salt=UNSUBSCRIBE_SALT)


def unsubscribe_url(*, message_id: int) -> str:
    from django.conf import settings

    pattern = _unsubscribe_pattern(get_urlconf(), get_script_prefix())
    return settings.SITE_URL + pattern.replace("TOKEN", unsubscribe_token(message_id=message_id))


@lru_cache(maxsize=8)
def _unsubscribe_pattern(urlconf, prefix) -> str:
    # reverse() once with a stand-in: it costs more than the signature, and the deliverer asks per message.
    return reverse("messaging:unsubscribe", args=["TOKEN"], urlconf=urlconf)


def message_for_token(token: str) -> Message | None:
    """The message an unsubscribe token was made for, or None for a token we did not sign."""
    try:
        message_id = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(message_id, int):
        return None
    return Message.objects.select_related("customer").filter(pk=message_id).first()


def suppression_add(*, address: str, reason: str, note: str = "") -> Suppression:
    """Suppress an address (idempotent). An existing entry keeps its reason unless the new one is
    stronger: a hard bounce or complaint outranks an unsubscribe or a manual entry."""
    address = normalise_address(address)
    if not address:
        raise DomainError(_("An address is required."), field="address")
    if reason not in Suppression.Reason.values:
        raise DomainError(_("Unknown reason: %(reason)s.") % {"reason": reason}, field="reason")
    with transaction.atomic():
        suppression, created = Suppression.objects.select_for_update().get_or_create(
            address=address, defaults={"reason": reason, "note": note}
        )
        if not created and reason in Suppression.BLOCKS_TRANSACTIONAL and suppression.reason != reason:
            suppression.reason, suppression.note = reason, note or suppression.note
            suppression.save(update_fields=["reason", "note"])
    return suppression


def suppression_remove(*, address: str) -> int:
    deleted, _detail = Suppression.objects.filter(address=normalise_address(address)).delete()
    return deleted


def unsubscribe_by_token(*, token: str) -> bool:
    """One-click unsubscribe (RFC 8058): suppress the message's address and withdraw the customer's
    marketing consent. False for a token we did not sign; safe to repeat."""
    message = message_for_token(token)
    if message is None:
        return False
    with transaction.atomic():
        if message.to_email:
            suppression_add(
                address=message.to_email, reason=Suppression.Reason.UNSUBSCRIBED, note=f"message {message.pk}"
            )
        customer = message.customer
        if customer.email_opt_in and normalise_address(customer.email) == message.to_email:
            customer.email_opt_in, customer.email_opt_in_at = False, None
            customer.save(update_fields=["email_opt_in", "email_opt_in_at", "updated_at"])
    return True


def resubscribe_by_token(*, token: str) -> bool:
    """Undo an unsubscribe from the same link: lifts only an "unsubscribed" entry (never a bounce,
    complaint or manual one) and records the customer's consent again."""
    message = message_for_token(token)
    if message is None:
        return False
    with transaction.atomic():
        Suppression.objects.filter(address=message.to_email, reason=Suppression.Reason.UNSUBSCRIBED).delete()
        customer = message.customer
        if normalise_address(customer.email) == message.to_email and not customer.email_opt_in:
            customer.email_opt_in, customer.email_opt_in_at = True, timezone.now()
            customer.save(update_fields=["email_opt_in", "email_opt_in_at", "updated_at"])
    return True


def outbox_resume() -> OutboxState:
    """Staff resume a paused outbox. The thresholds then count from this moment, so what paused it
    does not pause it again at once."""
    state, _created = OutboxState.objects.get_or_create(pk=1)
    state.paused, state.paused_reason, state.resumed_at = False, "", timezone.now()
    state.save()
    return state
