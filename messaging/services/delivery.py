"""Delivering the outbox: claim a batch of due messages (SELECT ... FOR UPDATE SKIP LOCKED, with a
lease), send them over one SMTP connection, and mark each one the moment the server accepts it.

Why this shape:
- SKIP LOCKED lets any number of workers (and a task that runs twice) take disjoint batches.
- The lease is the claim: a worker killed mid-batch leaves its messages in "sending"; once the
  lease ends the next run claims them again. Each message is marked sent on its own right after the
  server's 250, so only the one in flight when the worker died can go twice.
- Every mark checks the lease it claimed with, so a worker that outlived its lease never overwrites
  the state another worker set.
- 4xx replies and connection errors retry with exponential backoff up to a cap of attempts; 5xx
  replies fail at once with the server's reason (a 5xx to the recipient also suppresses the address
  as a hard bounce).
"""

from __future__ import annotations

import logging
import random
import smtplib
import time
from contextlib import contextmanager
from datetime import datetime, timedelta
from email.utils import make_msgid

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection, mail_admins
from django.db import connection as db_connection
from django.db import transaction
from django.db.models import Count, F, Min, Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from messaging.context import extra_contexts, secret_context_templates
from messaging.models import Message, MessageTemplate, OutboxState, Purpose, Suppression
from messaging.rendering import customer_context, render_parts
from messaging.services.sending import NO_CONSENT
from messaging.services.suppression import suppression_add, unsubscribe_url

logger = logging.getLogger(__name__)


class PermanentFailure(Exception):
    def __init__(self, reason: str, *, hard_bounce: bool = False):
        super().__init__(reason)
        self.reason, self.hard_bounce = reason, hard_bounce


class TransientFailure(Exception):
    def __init__(self, reason: str, *, connection_lost: bool = False):
        super().__init__(reason)
        self.reason, self.connection_lost = reason, connection_lost


def _reply(code: int, text) -> str:
    text = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    return f"{code} {text}".strip()[:1000]


def classify(exc: Exception) -> PermanentFailure | TransientFailure:
    """Sort an error of the mail backend into permanent (5xx) and transient (4xx, the connection)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, text = next(iter(exc.recipients.values()))
        if code >= 500:
            return PermanentFailure(_reply(code, text), hard_bounce=True)
        return TransientFailure(_reply(code, text))
    if isinstance(exc, smtplib.SMTPResponseException):
        if exc.smtp_code >= 500:
            return PermanentFailure(_reply(exc.smtp_code, exc.smtp_error))
        # 421 means the server is closing the connection.
        return TransientFailure(_reply(exc.smtp_code, exc.smtp_error), connection_lost=exc.smtp_code == 421)
    return TransientFailure(f"{type(exc).__name__}: {exc}"[:1000], connection_lost=True)


def retry_delay(attempts: int) -> float:
    """Seconds before the next attempt after `attempts` tries: exponential, capped, with jitter so
    messages that failed together do not all come back in the same second."""
    delay = min(settings.MESSAGING_RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0), settings.MESSAGING_RETRY_MAX_SECONDS)
    return delay * random.uniform(0.9, 1.1)


def outbox_is_paused() -> bool:
    return OutboxState.objects.filter(pk=1, paused=True).exists()


def messages_claim(*, limit: int, transactional_only: bool = False) -> tuple[list[int], datetime]:
    """Claim up to `limit` due messages for this worker: queued ones whose time has come and
    "sending" ones whose lease ended (their worker died). Returns their ids and the lease."""
    now = timezone.now()
    lease = now + timedelta(seconds=settings.MESSAGING_LEASE_SECONDS)
    due = Message.objects.filter(state__in=[Message.State.QUEUED, Message.State.SENDING]).filter(
        Q(state=Message.State.QUEUED, next_attempt_at__lte=now) | Q(state=Message.State.SENDING, lease_until__lt=now)
    )
    if transactional_only:
        due = due.filter(purpose=Purpose.TRANSACTIONAL)
    with transaction.atomic():
        ids = list(
            due.select_for_update(skip_locked=True)
            .order_by("next_attempt_at", "id")
            .values_list("id", flat=True)[:limit]
        )
        if ids:
            Message.objects.filter(id__in=ids).update(
                state=Message.State.SENDING, lease_until=lease, attempts=F("attempts") + 1
            )
    return ids, lease


def _mine(message_id: int, lease: datetime):
    """The message, only while this worker's claim on it holds."""
    return Message.objects.filter(pk=message_id, state=Message.State.SENDING, lease_until=lease)


def _mark_sent(message_id: int, lease: datetime, provider_id: str) -> None:
    _mine(message_id, lease).update(
        state=Message.State.SENT,
        sent_at=timezone.now(),
        provider_message_id=provider_id,
        lease_until=None,
        next_attempt_at=None,
        last_error="",
    )


def _mark_failed(message_id: int, lease: datetime, reason: str) -> None:
    _mine(message_id, lease).update(
        state=Message.State.FAILED, failed_at=timezone.now(), last_error=reason, lease_until=None, next_attempt_at=None
    )


def _mark_retry(message: Message, lease: datetime, reason: str) -> None:
    if message.attempts >= settings.MESSAGING_MAX_ATTEMPTS:
        _mark_failed(
            message.pk, lease, _("Gave up after %(n)s attempts: %(reason)s") % {"n": message.attempts, "reason": reason}
        )
        return
    _mine(message.pk, lease).update(
        state=Message.State.QUEUED,
        next_attempt_at=timezone.now() + timedelta(seconds=retry_delay(message.attempts)),
        last_error=reason,
        lease_until=None,
    )


def _release(message_ids: list[int], lease: datetime, *, wait: float = 0.0, reason: str = "") -> None:
    """Give back claimed messages this batch did not try (the attempt is not counted)."""
    changes = {"last_error": reason} if reason else {}
    Message.objects.filter(pk__in=message_ids, state=Message.State.SENDING, lease_until=lease).update(
        state=Message.State.QUEUED,
        lease_until=None,
        attempts=F("attempts") - 1,
        next_attempt_at=timezone.now() + timedelta(seconds=wait),
        **changes,
    )


def _suppress_now(message_ids: list[int], lease: datetime, reasons: dict[int, str]) -> None:
    for message_id in message_ids:
        _mine(message_id, lease).update(
            state=Message.State.SUPPRESSED,
            suppressed_reason=reasons[message_id],
            lease_until=None,
            next_attempt_at=None,
        )


def _headers(message: Message, message_id_header: str, unsubscribe: str) -> dict[str, str]:
    headers = {"Message-ID": message_id_header}
    if message.purpose == Purpose.MARKETING:
        links = [f"<{unsubscribe}>"]
        if settings.MESSAGING_UNSUBSCRIBE_MAILTO:
            links.append(f"<mailto:{settings.MESSAGING_UNSUBSCRIBE_MAILTO}?subject=unsubscribe%20{message.pk}>")
        headers["List-Unsubscribe"] = ", ".join(links)
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return headers


def build_email(
    message: Message, template: MessageTemplate, customer: dict, connection=None, extra_context: dict | None = None
) -> EmailMultiAlternatives:
    """`extra_context`: what the template's app adds per message at delivery (messaging.context)."""
    unsubscribe = unsubscribe_url(message_id=message.pk) if message.purpose == Purpose.MARKETING else ""
    context = {**(message.context or {}), **(extra_context or {})}
    with translation.override(message.language):
        subject, text, html = render_parts(
            template, language=message.language, customer=customer, context=context, unsubscribe_url=unsubscribe
        )
    domain = settings.DEFAULT_FROM_EMAIL.rpartition("@")[2].rstrip(">") or "localhost"
    email = EmailMultiAlternatives(
        subject,
        text,
        settings.DEFAULT_FROM_EMAIL,
        [message.to_email],
        headers=_headers(message, make_msgid(f"m{message.pk}", domain=domain), unsubscribe),
        connection=connection,
    )
    if html:
        email.attach_alternative(html, "text/html")
    return email


def _still_allowed(messages: list[Message], customers: dict[int, dict]) -> dict[int, str]:
    """Messages that may no longer go (consent withdrawn or address suppressed since they were
    queued), with the reason: one query for the whole batch."""
    suppressed = dict(
        Suppression.objects.filter(address__in={m.to_email for m in messages}).values_list("address", "reason")
    )
    reasons = {}
    for message in messages:
        reason = suppressed.get(message.to_email, "")
        if message.purpose == Purpose.TRANSACTIONAL and reason not in Suppression.BLOCKS_TRANSACTIONAL:
            reason = ""
        if not reason and message.purpose == Purpose.MARKETING and not customers[message.customer_id]["email_opt_in"]:
            reason = NO_CONSENT
        if reason:
            reasons[message.pk] = reason
    return reasons


def messages_deliver_batch(*, message_ids: list[int], lease: datetime) -> dict[str, int]:
    """Send the claimed messages over one connection of the configured backend (EMAIL_URL)."""
    counts = {"sent": 0, "failed": 0, "retry": 0, "suppressed": 0, "connection_lost": 0}
    messages = list(
        Message.objects.filter(pk__in=message_ids, state=Message.State.SENDING, lease_until=lease)
        .only("id", "key", "purpose", "template_id", "customer_id", "to_email", "language", "context", "attempts")
        .order_by("id")
    )
    if not messages:
        return counts
    templates = MessageTemplate.objects.in_bulk({m.template_id for m in messages})
    from customers.models import Customer

    customers = {
        row["id"]: row
        for row in Customer.objects.filter(pk__in={m.customer_id for m in messages}).values(
            "id", "first_name", "last_name", "email", "email_opt_in"
        )
    }
    blocked = _still_allowed(messages, customers)
    _suppress_now(list(blocked), lease, blocked)
    counts["suppressed"] = len(blocked)
    messages = [m for m in messages if m.pk not in blocked]

    connection = get_connection(fail_silently=False)
    # Stop early rather than send on a lease that is about to end (another worker may take over).
    stop_at = lease - timedelta(seconds=min(30, settings.MESSAGING_LEASE_SECONDS / 5))
    try:
        # Opened here, the backend keeps it for the whole batch (send_messages() alone would open
        # and close a connection per message).
        connection.open()
    except Exception as exc:
        failure = classify(exc)
        _release([m.pk for m in messages], lease, wait=retry_delay(1), reason=failure.reason)
        logger.warning("the mail server is unreachable: %s", failure.reason)
        counts["connection_lost"] = 1
        return counts
    try:
        with _fast_marks():
            _send_all(messages, templates, customers, connection, lease, stop_at, counts)
    finally:
        _close(connection)
        _erase_secrets([m.pk for m in messages])
    return counts


def _erase_secrets(message_ids: list[int]) -> None:
    """Erase the context of the batch's messages that are done with it (one UPDATE), for templates
    that carry a secret (messaging.context.register_secret_context)."""
    secret = secret_context_templates()
    if secret and message_ids:
        Message.objects.filter(
            pk__in=message_ids,
            template__key__in=secret,
            state__in=[Message.State.SENT, Message.State.FAILED, Message.State.SUPPRESSED],
        ).update(context={})


@contextmanager
def _fast_marks():
    """Each "sent" mark commits on its own; on PostgreSQL it need not wait for the disk flush. A
    worker killed mid-batch loses nothing by that (the server has the commit); only a crash of the
    database server itself could forget the last few marks, and those messages would go again."""
    if db_connection.vendor != "postgresql" or db_connection.in_atomic_block:
        yield
        return
    with db_connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit TO OFF")
    try:
        yield
    finally:
        with db_connection.cursor() as cursor:
            cursor.execute("RESET synchronous_commit")


def _send_all(messages, templates, customers, connection, lease, stop_at, counts) -> None:
    extra = extra_contexts(messages, {pk: template.key for pk, template in templates.items()})
    for position, message in enumerate(messages):
        if timezone.now() >= stop_at:
            _release([m.pk for m in messages[position:]], lease)
            break
        try:
            email = build_email(
                message,
                templates[message.template_id],
                customer_context(customers[message.customer_id]),
                extra_context=extra.get(message.pk),
            )
        except Exception as exc:  # a template that cannot render is the template's fault: do not retry
            logger.exception("message %s: render failed", message.pk)
            _mark_failed(message.pk, lease, _("Could not render: %(error)s") % {"error": exc})
            counts["failed"] += 1
            continue
        try:
            connection.send_messages([email])
        except Exception as exc:
            failure = classify(exc)
            if isinstance(failure, PermanentFailure):
                _mark_failed(message.pk, lease, failure.reason)
                if failure.hard_bounce:
                    suppression_add(
                        address=message.to_email, reason=Suppression.Reason.HARD_BOUNCE, note=failure.reason[:500]
                    )
                counts["failed"] += 1
                continue
            _mark_retry(message, lease, failure.reason)
            counts["retry"] += 1
            if failure.connection_lost:
                # The server is gone: the rest of the batch waits as long as the failed message
                # (a server that is down is not hammered), and the run ends.
                _close(connection)
                _release([m.pk for m in messages[position + 1 :]], lease, wait=retry_delay(1))
                counts["connection_lost"] = 1
                break
            continue
        _mark_sent(message.pk, lease, email.extra_headers["Message-ID"])
        counts["sent"] += 1


def _close(connection) -> None:
    try:
        connection.close()
    except Exception:  # the connection is already gone; nothing to tidy
        logger.debug("closing the mail connection failed", exc_info=True)


def outbox_check_health() -> str:
    """Pause marketing mail (and alert ADMINS once) when, in the last 24 hours since the last
    resume, permanent failures or unsubscribes pass their share. Returns the reason, or ""."""
    state, _created = OutboxState.objects.get_or_create(pk=1)
    if state.paused:
        return state.paused_reason
    since = timezone.now() - timedelta(hours=24)
    if state.resumed_at and state.resumed_at > since:
        since = state.resumed_at
    figures = Message.objects.filter(Q(sent_at__gte=since) | Q(failed_at__gte=since)).aggregate(
        sent=Count("id", filter=Q(state=Message.State.SENT)),
        failed=Count("id", filter=Q(state=Message.State.FAILED)),
        marketing_sent=Count("id", filter=Q(state=Message.State.SENT, purpose=Purpose.MARKETING)),
    )
    unsubscribes = Suppression.objects.filter(reason=Suppression.Reason.UNSUBSCRIBED, created_at__gte=since).count()
    reason = ""
    finished = figures["sent"] + figures["failed"]
    if (
        finished >= settings.MESSAGING_PAUSE_MIN_MESSAGES
        and figures["failed"] / finished > settings.MESSAGING_PAUSE_FAILURE_RATE
    ):
        reason = _("%(failed)s of %(total)s messages failed permanently in the last 24 hours (limit %(limit)s%%).") % {
            "failed": figures["failed"],
            "total": finished,
            "limit": round(settings.MESSAGING_PAUSE_FAILURE_RATE * 100, 2),
        }
    elif (
        figures["marketing_sent"] >= settings.MESSAGING_PAUSE_MIN_MESSAGES
        and unsubscribes / figures["marketing_sent"] > settings.MESSAGING_PAUSE_UNSUBSCRIBE_RATE
    ):
        reason = _(
            "%(unsubscribes)s unsubscribes for %(sent)s marketing messages in the last 24 hours (limit %(limit)s%%)."
        ) % {
            "unsubscribes": unsubscribes,
            "sent": figures["marketing_sent"],
            "limit": round(settings.MESSAGING_PAUSE_UNSUBSCRIBE_RATE * 100, 2),
        }
    if not reason:
        return ""
    # Only the run that flips the switch alerts, however many workers see the same figures.
    flipped = OutboxState.objects.filter(pk=1, paused=False).update(
        paused=True, paused_reason=reason, paused_at=timezone.now()
    )
    if flipped:
        logger.warning("outbox paused: %s", reason)
        mail_admins(
            _("Marketing e-mail paused"), _("The outbox paused marketing e-mail: %(reason)s") % {"reason": reason}
        )
    return reason


def next_due_in() -> float | None:
    """Seconds until the next queued message is due or the next lease ends (None: nothing waits)."""
    paused = outbox_is_paused()
    waiting = Message.objects.filter(state__in=[Message.State.QUEUED, Message.State.SENDING])
    if paused:
        waiting = waiting.filter(purpose=Purpose.TRANSACTIONAL)
    figures = waiting.aggregate(
        queued=Min("next_attempt_at", filter=Q(state=Message.State.QUEUED)),
        lease=Min("lease_until", filter=Q(state=Message.State.SENDING)),
    )
    times = [t for t in figures.values() if t is not None]
    if not times:
        return None
    return max((min(times) - timezone.now()).total_seconds(), 0.0)


def messages_deliver_due(*, time_budget: float | None = None) -> dict[str, int]:
    """Deliver batch after batch until nothing is due or the run's time is up."""
    budget = settings.MESSAGING_RUN_SECONDS if time_budget is None else time_budget
    started = time.monotonic()
    totals = {"sent": 0, "failed": 0, "retry": 0, "suppressed": 0, "connection_lost": 0, "batches": 0}
    while time.monotonic() - started < budget:
        paused = bool(outbox_check_health())
        ids, lease = messages_claim(limit=settings.MESSAGING_BATCH_SIZE, transactional_only=paused)
        if not ids:
            break
        for name, value in messages_deliver_batch(message_ids=ids, lease=lease).items():
            totals[name] += value
        totals["batches"] += 1
        if totals["connection_lost"]:
            break
    return totals
