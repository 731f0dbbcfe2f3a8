"""Retention interventions for customers at churn risk, run daily (`run_retention`, a beat task).

Per enabled intervention (RetentionIntervention, one per risk level), in one transaction that first
locks the intervention's row, so two runs at once (a task delivered twice) take turns and the second
sees what the first logged:
1. one INSERT ... SELECT logs a RetentionAction for every customer at that level who has not had
   this intervention within its window (and, for e-mail, has marketing consent and an address);
2. e-mail: one messages_queue_bulk call queues the e-mail for exactly those customers, with the
   outbox key retention:<level>:<day>:<customer id> (the outbox also applies its suppression list);
   task: one INSERT ... SELECT creates a follow-up Task for each customer's owner.
A worker killed mid-way rolls all of it back; the next run does it again, once.
"""

from __future__ import annotations

import datetime as dt
import secrets

from django.db import connection, transaction
from django.utils import timezone

from customers.models import Customer
from lifecycle.models_retention import RetentionAction, RetentionIntervention


def _key_prefix(level: int, day: dt.date) -> str:
    return f"retention:{level}:{day.isoformat()}:"


def retention_run(*, as_of: dt.date | None = None) -> dict[str, int]:
    """Give every enabled intervention to the customers who are due for it; returns counts per level."""
    day = as_of or timezone.localdate()
    counts = {}
    for intervention_id, level in RetentionIntervention.objects.filter(enabled=True).order_by("level").values_list("pk", "level"):
        counts[f"level_{level}"] = _intervention_run(intervention_id=intervention_id, day=day)
    return counts


def _offer_context(intervention: RetentionIntervention, day: dt.date) -> dict:
    if not intervention.offer_days:
        return {}
    # One code per level and day: the outbox's bulk queue shares one context among its messages.
    return {
        "offer_code": f"BACK{intervention.level}-{day:%y%m%d}-{secrets.token_hex(3).upper()}",
        "offer_expires_on": (day + dt.timedelta(days=intervention.offer_days)).isoformat(),
        "offer_days": intervention.offer_days,
    }


def _intervention_run(*, intervention_id: int, day: dt.date) -> int:
    from messaging.services import messages_queue_bulk

    now = timezone.now()
    with transaction.atomic():
        intervention = RetentionIntervention.objects.select_for_update().get(pk=intervention_id)
        if not intervention.enabled:
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
        messages_queue_bulk(
            customers=Customer.objects.filter(retention_actions__level=level, retention_actions__at=now),
            template=intervention.template,
            key=prefix + "{customer_id}",
            purpose="marketing",
            context=_offer_context(intervention, day),
        )
        return logged
