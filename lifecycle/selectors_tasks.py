"""The staff tasks inbox: open tasks, overdue first (marked), then by due date; a user's own, or
everyone's for a Manager who asks."""

from __future__ import annotations

from django.db.models import BooleanField, Case, F, Q, QuerySet, Value, When
from django.utils import timezone

from customers.models import Task


def open_tasks(*, user=None, everyone: bool = False) -> QuerySet:
    now = timezone.now()
    queryset = Task.objects.filter(done_at__isnull=True).select_related("customer", "assignee")
    if not everyone:
        queryset = queryset.filter(assignee=user)
    return queryset.annotate(
        overdue=Case(When(Q(due_at__lt=now), then=Value(True)), default=Value(False), output_field=BooleanField())
    ).order_by("-overdue", F("due_at").asc(nulls_last=True), "id")
