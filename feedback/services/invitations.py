"""Inviting customers to a survey: one at a time (staff, API) or a whole selection at once (a
filtered list, a trigger), with the same rules either way:

- the survey is open; the customer has an e-mail address and opted in to marketing e-mail;
- one contact limit across every survey: nobody is invited twice within FEEDBACK_CONTACT_LIMIT_DAYS;
- one invitation per customer and survey (a unique constraint).

A refused invitation says why. A selection is invited with one INSERT ... SELECT, never a query per
customer, and each invitation's e-mail is queued in the outbox with a key of its own, so a trigger
that runs twice invites and mails nobody twice."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy

from core.exceptions import DomainError
from core.times import shop_day
from customers.models import Customer
from feedback.emails import invitation_emails_queue
from feedback.models import Invitation, Survey, SurveyDayTotals, new_token

REFUSAL_REASONS = {
    "survey_not_open": gettext_lazy("The survey is not open."),
    "no_email": gettext_lazy("The customer has no e-mail address."),
    "no_consent": gettext_lazy("The customer has not opted in to marketing e-mail."),
    "contact_limit": gettext_lazy("The customer was invited to a survey in the last %(days)d days."),
    "already_invited": gettext_lazy("The customer is already invited to this survey."),
}


def refusal_message(reason: str) -> str:
    return str(REFUSAL_REASONS[reason]) % {"days": contact_limit_days()}


def contact_limit_days() -> int:
    return int(settings.FEEDBACK_CONTACT_LIMIT_DAYS)


@dataclass
class InviteSummary:
    invited: int = 0
    refused: dict[str, int] = field(default_factory=dict)  # reason -> customers

    @property
    def refused_total(self) -> int:
        return sum(self.refused.values())


def _count_invitations(*, survey: Survey, day: dt.date, count: int) -> None:
    """Add to the survey's invitations of the day (results' response rate), one upsert."""
    if count:
        SurveyDayTotals.objects.get_or_create(survey=survey, day=day)
        SurveyDayTotals.objects.filter(survey=survey, day=day).update(invitations=F("invitations") + count)


def _recently_invited(now: dt.datetime):
    return Invitation.objects.filter(customer=OuterRef("pk"), created_at__gt=now - dt.timedelta(days=contact_limit_days()))


def _refusal_for(*, survey: Survey, customer: Customer, now: dt.datetime) -> str | None:
    if survey.status != Survey.Status.OPEN:
        return "survey_not_open"
    if not customer.email:
        return "no_email"
    if not customer.email_opt_in:
        return "no_consent"
    if Invitation.objects.filter(survey=survey, customer=customer).exists():
        return "already_invited"
    if Invitation.objects.filter(customer=customer, created_at__gt=now - dt.timedelta(days=contact_limit_days())).exists():
        return "contact_limit"
    return None


def survey_invite(*, survey: Survey, customer: Customer, trigger: str = Invitation.Channel.MANUAL, now=None) -> Invitation:
    """Invite one customer and queue the e-mail; a DomainError (code "refused") says why not."""
    now = now or timezone.now()
    reason = _refusal_for(survey=survey, customer=customer, now=now)
    if reason is not None:
        raise DomainError(refusal_message(reason), field="customer", code="refused")
    try:
        with transaction.atomic():
            invitation = Invitation.objects.create(
                survey=survey,
                customer=customer,
                trigger=trigger,
                expires_at=now + dt.timedelta(days=survey.invitation_valid_days),
            )
            _count_invitations(survey=survey, day=shop_day(now), count=1)
            invitation_emails_queue(invitation_ids=[invitation.pk], reminder=False)
    except IntegrityError:
        raise DomainError(refusal_message("already_invited"), field="customer", code="refused") from None
    return invitation


def survey_invite_bulk(
    *, survey: Survey, customers: QuerySet, trigger: str = Invitation.Channel.MANUAL, now=None
) -> InviteSummary:
    """Invite every eligible customer of the selection: one INSERT ... SELECT; the others counted by
    the reason they were refused (one aggregate query)."""
    now = now or timezone.now()
    selection = customers.order_by().values("pk")
    base = Customer.objects.filter(pk__in=selection)
    if survey.status != Survey.Status.OPEN:
        return InviteSummary(refused={"survey_not_open": base.count()})
    here = Invitation.objects.filter(survey=survey, customer=OuterRef("pk"))
    no_email = Q(email__isnull=True) | Q(email="")
    annotated = base.annotate(here=Exists(here), recent=Exists(_recently_invited(now)))
    counts = annotated.aggregate(
        no_email=Count("pk", filter=no_email),
        no_consent=Count("pk", filter=~no_email & Q(email_opt_in=False)),
        already_invited=Count("pk", filter=~no_email & Q(email_opt_in=True, here=True)),
        contact_limit=Count("pk", filter=~no_email & Q(email_opt_in=True, here=False, recent=True)),
    )
    eligible = annotated.filter(email_opt_in=True, here=False, recent=False).exclude(no_email).values("pk")
    with transaction.atomic():
        new_ids = _insert_invitations(survey=survey, eligible=eligible, trigger=trigger, now=now)
        _count_invitations(survey=survey, day=shop_day(now), count=len(new_ids))
        invitation_emails_queue(invitation_ids=new_ids, reminder=False)
    refused = {reason: n for reason, n in counts.items() if n}
    return InviteSummary(invited=len(new_ids), refused=refused)


def _token_sql() -> str:
    """A fresh unguessable token per row, made by the database (an INSERT ... SELECT has no Python
    per row): 244 random bits from two version-4 UUIDs on PostgreSQL, 256 from randomblob on SQLite."""
    if connection.vendor == "postgresql":
        return "replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '')"
    return "lower(hex(randomblob(32)))"


def _insert_invitations(*, survey: Survey, eligible: QuerySet, trigger: str, now: dt.datetime) -> list[int]:
    sql, params = eligible.query.sql_with_params()
    table = Invitation._meta.db_table
    insert = (
        f'INSERT INTO {table} (survey_id, customer_id, token, "trigger", created_at, expires_at) '
        f"SELECT %s, e.id, {_token_sql()}, %s, %s, %s FROM {Customer._meta.db_table} AS e WHERE e.id IN ({sql}) "
        "ON CONFLICT DO NOTHING RETURNING id"
    )
    expires = now + dt.timedelta(days=survey.invitation_valid_days)
    with connection.cursor() as cursor:
        cursor.execute(insert, [survey.pk, trigger, now, expires, *params])
        return [row[0] for row in cursor.fetchall()]


def survey_remind_due(*, now=None) -> int:
    """Remind once the customers who have not answered an open survey's invitation after the
    survey's reminder delay (and before it expires): per survey, one locking SELECT, one UPDATE and
    one bulk queue. Returns how many were reminded."""
    now = now or timezone.now()
    reminded = 0
    surveys = Survey.objects.filter(status=Survey.Status.OPEN, reminder_after_days__isnull=False)
    for survey in surveys.only("pk", "reminder_after_days"):
        with transaction.atomic():
            due = list(
                Invitation.objects.select_for_update(skip_locked=True)
                .filter(
                    survey=survey,
                    answered_at__isnull=True,
                    reminded_at__isnull=True,
                    expires_at__gt=now,
                    created_at__lte=now - dt.timedelta(days=survey.reminder_after_days),
                )
                .values_list("pk", flat=True)
            )
            Invitation.objects.filter(pk__in=due).update(reminded_at=now)
            invitation_emails_queue(invitation_ids=due, reminder=True)
        reminded += len(due)
    return reminded


__all__ = ["InviteSummary", "new_token", "refusal_message", "survey_invite", "survey_invite_bulk", "survey_remind_due"]
