"""Celery tasks of the feedback app: thin wrappers over feedback.services, safe to run twice
(invitations are unique per customer and survey, reminders are marked before they are queued, and
every e-mail has its own outbox key)."""

from celery import shared_task

from feedback.services.invitations import survey_remind_due
from feedback.services.triggers import surveys_invite_automatic


@shared_task(name="feedback.tasks.survey_reminders")
def survey_reminders() -> int:
    return survey_remind_due()


@shared_task(name="feedback.tasks.survey_automatic_invitations")
def survey_automatic_invitations() -> int:
    return surveys_invite_automatic()
