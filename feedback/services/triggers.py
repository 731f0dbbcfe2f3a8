"""Automatic invitations: N days after a paid order (a daily task), and on a lifecycle stage change
(the lifecycle app calls `surveys_invite_on_stage_change` with the customers that moved)."""

from __future__ import annotations

import datetime as dt

from django.db.models import QuerySet
from django.utils import timezone

from customers.models import Customer, Order
from feedback.models import Invitation, Survey
from feedback.services.invitations import survey_invite_bulk


def surveys_invite_after_orders(*, now=None) -> int:
    """Invite, for every open survey with an order trigger, the customers whose paid order is that
    many days old (orders of the shop day N days ago). Safe to run again the same day."""
    now = now or timezone.now()
    zone = timezone.get_default_timezone()
    invited = 0
    for survey in Survey.objects.filter(status=Survey.Status.OPEN, invite_days_after_order__isnull=False):
        day = timezone.localtime(now, zone).date() - dt.timedelta(days=survey.invite_days_after_order)
        start = dt.datetime.combine(day, dt.time.min, tzinfo=zone)
        buyers = Customer.objects.filter(
            pk__in=Order.objects.filter(
                status=Order.Status.PAID, ordered_at__gte=start, ordered_at__lt=start + dt.timedelta(days=1)
            ).values("customer_id")
        )
        invited += survey_invite_bulk(survey=survey, customers=buyers, trigger=Invitation.Channel.ORDER, now=now).invited
    return invited


def surveys_invite_on_stage_change(*, survey: Survey, customers: QuerySet, now=None) -> int:
    """The lifecycle app's hook: invite the customers who just entered a stage."""
    return survey_invite_bulk(survey=survey, customers=customers, trigger=Invitation.Channel.STAGE, now=now).invited
