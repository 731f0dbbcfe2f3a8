"""Celery tasks of the feedback app: thin wrappers over feedback.services, safe to run twice
(invitations are unique per customer and survey, reminders are marked before they are queued, and
every e-mail has its own outbox key)."""

from celery import shared_task

from feedback.services.invitations import survey_remind_due
from feedback.services.triggers import surveys_invite_after_orders


@shared_task(name="feedback.tasks.survey_reminders")
def survey_reminders() -> int:
    return survey_remind_due()


@shared_task(name="feedback.tasks.survey_order_triggers")
def survey_order_triggers() -> int:
    return surveys_invite_after_orders()
