"""Finishing a follow-up task from the staff tasks inbox, with a note on the customer saying what
was done (the retention run creates such tasks for the customers' owners)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.exceptions import DomainError
from core.roles import Role, role_at_least
from customers.models import Note, Task


def task_done_with_note(*, task_id: int, user, note: str) -> Task:
    """Mark a task done with a note (kept on the customer's timeline). The assignee or a Manager may."""
    note = (note or "").strip()
    if not note:
        raise DomainError(_("Say what was done."), field="note")
    with transaction.atomic():
        task = Task.objects.select_for_update().get(pk=task_id)
        if task.assignee_id != user.pk and not role_at_least(user, Role.MANAGER):
            raise PermissionError(_("Only the assignee or a Manager may finish this task."))
        if task.done_at is not None:
            raise DomainError(_("This task is already done."))
        task.done_at = timezone.now()
        task.save(update_fields=["done_at", "updated_at"])
        Note.objects.create(customer_id=task.customer_id, author=user, body=_("Task done: %(title)s — %(note)s") % {"title": task.title, "note": note})
    return task
