"""Retention interventions for customers at churn risk, run daily (`run_retention`, a beat task).

Per enabled intervention (RetentionIntervention, one per risk level), in one transaction that first
locks the intervention's row, so two runs at once (a task delivered twice) take turns and the second
sees what the first logged:
1. one INSERT ... SELECT logs a RetentionAction for every customer at that level who has not had
   this intervention within its window (and, for e-mail, has marketing consent and an address);
2. e-mail: one messages_queue_bulk call queues the e-mail for exactly those customers, with the
   outbox key retention:<level>:<day>:<customer id> (the outbox also applies its suppression list);
   task: one INSERT ... SELECT creates a follow-up Task for each customer's owner.
An intervention with an offer (level 3 by default) gives each customer an offer of their own in the
same transaction, one RetentionOffer row per action: a discount code (one INSERT ... SELECT; unique
by construction, since it holds the customer's id and the day, and by a unique constraint) valid for
`offer_days`, or bonus points credited through the loyalty app's ledger (the awarder it registers in
lifecycle.health_hooks; one post per customer, idempotent by the key retention:<level>:<day>:<id>).
The e-mail shows the customer's own offer: the outbox asks `retention_offer_context` for it at
delivery (messaging.context), so the bulk queue stays one statement.
A worker killed mid-way rolls all of it back; the next run does it again, once.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.db import connection, transaction
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _

from customers.models import Customer
from lifecycle.health_hooks import points_awarder
from lifecycle.models_retention import RetentionAction, RetentionIntervention, RetentionOffer

logger = logging.getLogger(__name__)
OFFER_TEMPLATE = "retention_offer"


def _key_prefix(level: int, day: dt.date) -> str:
    return f"retention:{level}:{day.isoformat()}:"


def retention_run(*, as_of: dt.date | None = None) -> dict[str, int]:
    """Give every enabled intervention to the customers who are due for it; returns counts per level."""
    day = as_of or timezone.localdate()
    counts = {}
    for intervention_id, level in RetentionIntervention.objects.filter(enabled=True).order_by("level").values_list("pk", "level"):
        counts[f"level_{level}"] = _intervention_run(intervention_id=intervention_id, day=day)
    return counts


def _random_hex() -> str:
    """Eight random hex digits, in SQL: the part of a code nobody can guess from the rest."""
    if connection.vendor == "postgresql":
        return "UPPER(SUBSTR(MD5(RANDOM()::text || clock_timestamp()::text), 1, 8))"
    return "UPPER(HEX(RANDOMBLOB(4)))"


def _offers_create(cursor, intervention: RetentionIntervention, day: dt.date, at) -> None:
    """One offer per action this run logged (the actions at `at`): a code or bonus points."""
    Offer = RetentionIntervention.Offer
    level = intervention.level
    if intervention.offer == Offer.CODE:
        # BACK<level><yymmdd>-<customer id>-<random>: (customer, level, day) is unique, so is the code.
        code = f"'BACK' || %s || '-' || CAST(a.customer_id AS TEXT) || '-' || {_random_hex()}"
        code_params = [f"{level}{day:%y%m%d}"]
        expires = connection.ops.adapt_datefield_value(day + dt.timedelta(days=intervention.offer_days))
        points = 0
    else:
        code, code_params, expires, points = "''", [], None, intervention.offer_points
    cursor.execute(
        "INSERT INTO lifecycle_retentionoffer (action_id, customer_id, level, day, kind, code, points, expires_on) "
        f"SELECT a.id, a.customer_id, a.level, a.day, %s, {code}, %s, %s FROM lifecycle_retentionaction a "
        "WHERE a.level = %s AND a.at = %s ON CONFLICT DO NOTHING",
        [intervention.offer, *code_params, points, expires, level, at],
    )
    if intervention.offer == Offer.POINTS:
        award = points_awarder()
        reason = _("Retention offer: we miss you")
        cursor.execute(
            "SELECT o.customer_id FROM lifecycle_retentionoffer o JOIN lifecycle_retentionaction a ON a.id = o.action_id "
            "WHERE a.level = %s AND a.at = %s ORDER BY o.customer_id",
            [level, at],
        )
        for (customer_id,) in cursor.fetchall():
            award(customer_id=customer_id, points=points, key=f"{_key_prefix(level, day)}{customer_id}", reason=reason)


def retention_offer_context(messages: list) -> dict[int, dict]:
    """Each offer e-mail's own code and expiry, or points (messaging.context): one query a batch."""
    wanted = {}
    for message in messages:
        context = message.context or {}
        if "retention_level" in context:
            wanted[message.pk] = (message.customer_id, context["retention_level"], context["retention_day"])
    if not wanted:
        return {}
    offers = {
        (o.customer_id, o.level, o.day.isoformat()): o
        for o in RetentionOffer.objects.filter(
            customer_id__in={c for c, _l, _d in wanted.values()},
            level__in={lvl for _c, lvl, _d in wanted.values()},
            day__in={d for _c, _l, d in wanted.values()},
        )
    }
    language = {message.pk: message.language for message in messages}
    extra = {}
    for message_id, triple in wanted.items():
        offer = offers.get(triple)
        if offer is None:
            continue
        expires = ""
        if offer.expires_on:
            with translation.override(language[message_id]):
                expires = formats.date_format(offer.expires_on, "DATE_FORMAT")
        extra[message_id] = {"offer_code": offer.code, "offer_expires_on": expires, "offer_points": offer.points}
    return extra


def _intervention_run(*, intervention_id: int, day: dt.date) -> int:
    from messaging.services import messages_queue_bulk

    now = timezone.now()
    with transaction.atomic():
        intervention = RetentionIntervention.objects.select_for_update().get(pk=intervention_id)
        if not intervention.enabled:
            return 0
        if intervention.offer == RetentionIntervention.Offer.POINTS and points_awarder() is None:
            # The e-mail would promise points nobody can credit: skip it until loyalty is back.
            logger.warning("retention level %s offers bonus points but the loyalty app is not installed", intervention.level)
            return 0
        level = intervention.level
        recent = RetentionAction.objects.filter(level=level, at__gt=now - dt.timedelta(days=intervention.window_days))
        due = Customer.objects.filter(health__churn_risk=level).exclude(pk__in=recent.values("customer_id"))
        if intervention.kind == RetentionIntervention.Kind.EMAIL:
            due = due.filter(email_opt_in=True, email__isnull=False).exclude(email="")
        due_sql, due_params = due.order_by().values("pk").query.sql_with_params()
        prefix = _key_prefix(level, day)
        key = "''" if intervention.kind == RetentionIntervention.Kind.TASK else "%s || CAST(c.id AS TEXT)"
        key_params = [] if intervention.kind == RetentionIntervention.Kind.TASK else [prefix]
        # Raw parameters in the form the ORM stores them (SQLite keeps times as text).
        at, today = connection.ops.adapt_datetimefield_value(now), connection.ops.adapt_datefield_value(day)
        due_at = connection.ops.adapt_datetimefield_value(now + dt.timedelta(days=intervention.task_due_days))
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO lifecycle_retentionaction (customer_id, level, kind, day, at, message_key) "
                f"SELECT c.id, %s, %s, %s, %s, {key} FROM customers_customer c WHERE c.id IN ({due_sql}) "
                "ON CONFLICT (customer_id, level, day) DO NOTHING",
                [level, intervention.kind, today, at, *key_params, *due_params],
            )
            logged = cursor.rowcount
            if not logged:
                return 0
            if intervention.kind == RetentionIntervention.Kind.TASK:
                cursor.execute(
                    "INSERT INTO customers_task (created_at, updated_at, customer_id, assignee_id, created_by_id, title, due_at, done_at) "
                    "SELECT %s, %s, c.id, c.owner_id, NULL, %s, %s, NULL FROM customers_customer c "
                    "JOIN lifecycle_retentionaction a ON a.customer_id = c.id WHERE a.level = %s AND a.at = %s",
                    [at, at, intervention.task_title, due_at, level, at],
                )
                return logged
            context = {}
            if intervention.offer != RetentionIntervention.Offer.NONE:
                _offers_create(cursor, intervention, day, at)
                context = {"retention_level": level, "retention_day": day.isoformat(), "offer_days": intervention.offer_days}
        messages_queue_bulk(
            customers=Customer.objects.filter(retention_actions__level=level, retention_actions__at=now),
            template=intervention.template,
            key=prefix + "{customer_id}",
            purpose="marketing",
            context=context,
        )
        return logged
