"""Putting messages in the outbox: one message (`message_send`) or a whole selection of customers
in one INSERT ... SELECT (`messages_queue_bulk`). Both write in the caller's transaction and kick
the deliverer after it commits; consent and the suppression list decide at this moment whether a
message is queued or recorded as suppressed (and the deliverer checks again before sending).
While the demo data loads (core.demo) every message is recorded as suppressed with the reason "demo":
the demo's e-mails can be looked at in the outbox and are never sent."""

from __future__ import annotations

import json
from contextlib import suppress

from django.db import IntegrityError, connection, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from core.demo import demo_data_is_loading
from core.enqueue import QueueUnavailable, enqueue
from core.exceptions import DomainError
from messaging.context import secret_context_templates
from messaging.models import Message, MessageTemplate, Purpose, Suppression, normalise_address

# Why a message was not sent, besides the suppression list's own reasons.
NO_ADDRESS = "no_address"
NO_CONSENT = "no_consent"
DEMO = "demo"


def _kick_deliverer() -> None:
    # A broker that is down is logged by enqueue; the messages are stored, and beat starts a delivery
    # run every minute.
    with suppress(QueueUnavailable):
        enqueue("messaging.tasks.messages_deliver")


def deliver_after_commit() -> None:
    """Enqueue one delivery run when the current transaction commits (once per transaction, however
    many messages it wrote)."""
    if any(callback is _kick_deliverer for _sids, callback, _robust in connection.run_on_commit):
        return
    # robust: nothing after the commit may break the caller's request; beat runs it every minute.
    transaction.on_commit(_kick_deliverer, robust=True)


def _template(key: str) -> MessageTemplate:
    try:
        return MessageTemplate.objects.get(key=key)
    except MessageTemplate.DoesNotExist:
        from messaging.defaults import DEFAULT_TEMPLATES

        if key in DEFAULT_TEMPLATES:
            return message_template_ensure(**DEFAULT_TEMPLATES[key])
        raise DomainError(_("No message template with the key %(key)s.") % {"key": key}) from None


def _check_purpose(purpose: str) -> str:
    if purpose not in Purpose.values:
        raise DomainError(_("Unknown message purpose: %(purpose)s.") % {"purpose": purpose})
    return purpose


def suppressed_reason(*, customer, purpose: str) -> str:
    """Why this customer must not get a message of this purpose now, or "" when they may."""
    if demo_data_is_loading():
        return DEMO
    address = normalise_address(customer.email)
    if not address:
        return NO_ADDRESS
    if purpose == Purpose.MARKETING and not customer.email_opt_in:
        return NO_CONSENT
    reasons = Suppression.objects.filter(address=address)
    if purpose == Purpose.TRANSACTIONAL:
        reasons = reasons.filter(reason__in=Suppression.BLOCKS_TRANSACTIONAL)
    return reasons.values_list("reason", flat=True).first() or ""


def message_send(*, customer, template: str, context: dict | None = None, key: str, purpose: str) -> Message:
    """Put one message to `customer` in the outbox; the same `key` again returns the first message
    and writes nothing. A customer who may not get it gets a row in state "suppressed" with the reason."""
    _check_purpose(purpose)
    message_template = _template(template)
    context = context or {}
    json.dumps(context)  # the context must survive the trip to the worker; fail here, not there
    existing = Message.objects.filter(key=key).first()
    if existing is not None:
        return existing
    reason = suppressed_reason(customer=customer, purpose=purpose)
    now = timezone.now()
    message = Message(
        key=key,
        purpose=purpose,
        template=message_template,
        customer=customer,
        to_email=normalise_address(customer.email),
        language=customer.language,
        # A suppressed message is never sent: it keeps no secret it carried.
        context={} if reason and template in secret_context_templates() else context,
        state=Message.State.SUPPRESSED if reason else Message.State.QUEUED,
        suppressed_reason=reason,
        created_at=now,
        next_attempt_at=None if reason else now,
    )
    try:
        # A savepoint: a concurrent writer of the same key leaves the caller's transaction usable.
        with transaction.atomic():
            message.save(force_insert=True)
    except IntegrityError:
        existing = Message.objects.filter(key=key).first()
        if existing is None:
            raise
        return existing
    if message.state == Message.State.QUEUED:
        deliver_after_commit()
    return message


def messages_queue_bulk(
    *, customers: QuerySet, template: str, key: str, purpose: str, context: dict | None = None
) -> int:
    """Queue one message per customer of `customers` in one INSERT ... SELECT ... ON CONFLICT DO
    NOTHING. `key` is a format with {customer_id}. Consent and the suppression list are applied in
    the same statement: customers who may not get it are left out (no row). Returns the rows queued;
    a key already in the outbox is skipped, so running it again queues nothing. While the demo data
    loads, the rows are written as suppressed ("demo") and nothing is sent."""
    _check_purpose(purpose)
    if "{customer_id}" not in key:
        raise DomainError(_("A bulk message key must contain {customer_id}."))
    if "%" in key:
        raise DomainError(_("A bulk message key must not contain %."))
    message_template = _template(template)
    prefix, _sep, suffix = key.partition("{customer_id}")
    if "{customer_id}" in suffix:
        raise DomainError(_("A bulk message key must contain {customer_id} once."))
    selection_sql, selection_params = customers.order_by().values("pk").query.sql_with_params()
    blocking = (
        list(Suppression.Reason.values) if purpose == Purpose.MARKETING else list(Suppression.BLOCKS_TRANSACTIONAL)
    )
    reason_marks = ", ".join(["%s"] * len(blocking))
    json_cast = "CAST(%s AS jsonb)" if connection.vendor == "postgresql" else "%s"
    table, customer_table = Message._meta.db_table, "customers_customer"
    sql = f"""
        INSERT INTO {table}
            (key, purpose, template_id, customer_id, to_email, language, context, state, suppressed_reason,
             attempts, last_error, provider_message_id, created_at, next_attempt_at)
        SELECT %s || CAST(c.id AS TEXT) || %s, %s, %s, c.id, LOWER(TRIM(c.email)), c.language, {json_cast},
               %s, %s, 0, '', '', %s, %s
        FROM {customer_table} c
        WHERE c.id IN ({selection_sql})
          AND c.email IS NOT NULL AND TRIM(c.email) <> ''
          AND (%s OR c.email_opt_in)
          AND NOT EXISTS (
              SELECT 1 FROM {Suppression._meta.db_table} s
              WHERE s.address = LOWER(TRIM(c.email)) AND s.reason IN ({reason_marks})
          )
        ORDER BY c.id
        ON CONFLICT (key) DO NOTHING
    """
    now = timezone.now()
    demo = demo_data_is_loading()
    params = [
        prefix,
        suffix,
        purpose,
        message_template.pk,
        json.dumps(context or {}),
        (Message.State.SUPPRESSED if demo else Message.State.QUEUED).value,
        DEMO if demo else "",
        now,
        None if demo else now,
        *selection_params,
        purpose != Purpose.MARKETING,
        *blocking,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        queued = cursor.rowcount
    if queued and not demo:
        deliver_after_commit()
    return queued


def message_template_ensure(
    *,
    key: str,
    name: str,
    purpose: str,
    variables: str = "",
    subject_en: str,
    text_en: str,
    html_en: str = "",
    subject_zh_hans: str = "",
    text_zh_hans: str = "",
    html_zh_hans: str = "",
    model=None,
) -> MessageTemplate:
    """Ship a default template from an app: created when missing, never overwriting what staff
    edited. In a data migration pass `model=apps.get_model("messaging", "MessageTemplate")`."""
    model = model or MessageTemplate
    template, _created = model.objects.get_or_create(
        key=key,
        defaults={
            "name": name,
            "purpose": purpose,
            "variables": variables,
            "subject_en": subject_en,
            "text_en": text_en,
            "html_en": html_en,
            "subject_zh_hans": subject_zh_hans,
            "text_zh_hans": text_zh_hans,
            "html_zh_hans": html_zh_hans,
        },
    )
    return template
