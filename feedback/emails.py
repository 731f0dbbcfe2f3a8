"""The survey e-mails: an invitation and one reminder, queued in the outbox set-based, each with the
customer's own link added at delivery (messaging.context), so no token is copied into the outbox."""

from __future__ import annotations

from django.conf import settings
from django.db.models import Q
from django.urls import reverse
from django.utils import formats, timezone, translation

from customers.models import Customer
from feedback.models import Invitation
from messaging.context import register_message_context
from messaging.models import Purpose
from messaging.services import messages_queue_bulk

INVITATION_TEMPLATE = "survey_invitation"
REMINDER_TEMPLATE = "survey_reminder"


def survey_url(token: str) -> str:
    return f"{settings.SITE_URL}{reverse('feedback-public:answer', args=[token])}"


def invitation_emails_queue(*, invitation_ids: list[int], reminder: bool) -> int:
    """Queue one e-mail per invitation, one INSERT ... SELECT per survey. Keys are per survey and
    customer, so a task that runs twice mails nobody twice."""
    if not invitation_ids:
        return 0
    queued = 0
    surveys = Invitation.objects.filter(pk__in=invitation_ids).order_by().values_list("survey_id", flat=True).distinct()
    for survey_id in list(surveys):
        kind = "reminder" if reminder else "invitation"
        customers = Customer.objects.filter(
            survey_invitations__survey_id=survey_id, survey_invitations__pk__in=invitation_ids
        )
        queued += messages_queue_bulk(
            customers=customers,
            template=REMINDER_TEMPLATE if reminder else INVITATION_TEMPLATE,
            key=f"survey:{survey_id}:{kind}:{{customer_id}}",
            purpose=Purpose.MARKETING,
            context={"survey_id": survey_id},
        )
    return queued


def survey_email_context(messages: list) -> dict[int, dict]:
    """Each message's survey name, link and expiry: one query for the whole batch."""
    pairs = Q()
    for message in messages:
        pairs |= Q(survey_id=(message.context or {}).get("survey_id"), customer_id=message.customer_id)
    invitations = {
        (inv.survey_id, inv.customer_id): inv
        for inv in Invitation.objects.filter(pairs).select_related("survey").only(
            "survey_id", "customer_id", "token", "expires_at", "survey__name"
        )
    }
    extra = {}
    for message in messages:
        invitation = invitations.get(((message.context or {}).get("survey_id"), message.customer_id))
        if invitation is None:
            continue
        with translation.override(message.language):
            expires = formats.date_format(timezone.localtime(invitation.expires_at), "DATE_FORMAT")
        extra[message.pk] = {
            "survey_name": invitation.survey.name,
            "survey_url": survey_url(invitation.token),
            "expires_on": expires,
        }
    return extra


def register() -> None:
    for template in (INVITATION_TEMPLATE, REMINDER_TEMPLATE):
        register_message_context(template=template, provider=survey_email_context)
