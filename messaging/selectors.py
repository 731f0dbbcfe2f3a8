"""Reads of the outbox for staff: a customer's send log, the daily counts, recent failures, the
pause state."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from messaging.models import Message, OutboxState, Suppression


def customer_message_list(*, customer_id: int, limit: int = 20) -> list[Message]:
    """The customer's latest messages with their template (one query)."""
    return list(
        Message.objects.filter(customer_id=customer_id)
        .select_related("template")
        .only(
            "id",
            "purpose",
            "state",
            "suppressed_reason",
            "attempts",
            "last_error",
            "created_at",
            "sent_at",
            "failed_at",
            "to_email",
            "language",
            "template__name",
            "template__key",
        )
        .order_by("-created_at", "-id")[:limit]
    )


def message_daily_counts(*, days: int = 30) -> list[dict]:
    """Messages created per day (in the shop's time zone) by state and purpose, newest day first."""
    since = timezone.now() - timedelta(days=days)
    rows = (
        Message.objects.filter(created_at__gte=since)
        .annotate(day=TruncDate("created_at", tzinfo=timezone.get_current_timezone()))
        .values("day", "purpose", "state")
        .annotate(count=Count("id"))
        .order_by("-day", "purpose", "state")
    )
    table: dict[tuple, dict] = {}
    for row in rows:
        entry = table.setdefault(
            (row["day"], row["purpose"]),
            {"day": row["day"], "purpose": row["purpose"], **{state: 0 for state in Message.State.values}, "total": 0},
        )
        entry[row["state"]] = row["count"]
        entry["total"] += row["count"]
    return list(table.values())


def message_failure_list(*, limit: int = 50) -> QuerySet[Message]:
    """The latest permanent failures and retries waiting, with their reasons."""
    return (
        Message.objects.exclude(last_error="")
        .filter(state__in=[Message.State.FAILED, Message.State.QUEUED])
        .select_related("template", "customer")
        .order_by("-id")[:limit]
    )


def outbox_state_get() -> OutboxState:
    return OutboxState.objects.filter(pk=1).first() or OutboxState(pk=1)


def suppression_list() -> QuerySet[Suppression]:
    return Suppression.objects.order_by("-id")
