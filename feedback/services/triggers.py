"""Automatic invitations, run by one daily task (`surveys_invite_automatic`), each safe to run again
(an invitation is unique per survey and customer): N days after a paid order, on entering a
lifecycle stage (read from the lifecycle app's transitions), and to a segment of customers (the
customer list's filters) every day, so new members of the segment are invited too."""

from __future__ import annotations

import datetime as dt

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from core.times import shop_day, shop_day_start
from customers.forms import CustomerFilterForm
from customers.models import Customer, Order
from customers.selectors import customer_filter
from feedback.models import Invitation, Survey
from feedback.services.invitations import survey_invite_bulk


def surveys_invite_after_orders(*, now=None) -> int:
    """Invite, for every open survey with an order trigger, the customers whose paid order is that
    many days old (orders of the shop day N days ago). Safe to run again the same day."""
    now = now or timezone.now()
    invited = 0
    for survey in Survey.objects.filter(status=Survey.Status.OPEN, invite_days_after_order__isnull=False):
        day = shop_day(now) - dt.timedelta(days=survey.invite_days_after_order)
        # The next day's midnight, not 24 hours: a shop day across a DST change is 23 or 25 hours.
        start, end = shop_day_start(day), shop_day_start(day + dt.timedelta(days=1))
        buyers = Customer.objects.filter(
            pk__in=Order.objects.filter(status=Order.Status.PAID, ordered_at__gte=start, ordered_at__lt=end).values(
                "customer_id"
            )
        )
        invited += survey_invite_bulk(survey=survey, customers=buyers, trigger=Invitation.Channel.ORDER, now=now).invited
    return invited


def surveys_invite_on_stage_change(*, survey: Survey, customers: QuerySet, now=None) -> int:
    """Invite the given customers who just entered a stage (also callable by another app)."""
    return survey_invite_bulk(survey=survey, customers=customers, trigger=Invitation.Channel.STAGE, now=now).invited


def surveys_invite_on_stage_entry(*, now=None, lookback: dt.timedelta = dt.timedelta(days=2)) -> int:
    """Invite, for every open survey with a stage trigger, the customers whose transition into that
    stage happened since the survey opened and within `lookback` (two days: a daily run that is
    late once misses nobody)."""
    from lifecycle.models_stages import StageTransition

    now = now or timezone.now()
    invited = 0
    for survey in Survey.objects.filter(status=Survey.Status.OPEN).exclude(invite_on_stage=""):
        since = max(survey.opened_at or now, now - lookback)
        entered = StageTransition.objects.filter(to_stage=survey.invite_on_stage, at__gte=since, at__lte=now)
        customers = Customer.objects.filter(pk__in=entered.values("customer_id"))
        invited += surveys_invite_on_stage_change(survey=survey, customers=customers, now=now)
    return invited


def segment_filter_errors(segment: dict) -> list[str]:
    """What is wrong with a segment's filters (unknown names, values the list would refuse)."""
    if not segment:
        return []
    if not isinstance(segment, dict):
        return [_("Give the filters as an object of names and values.")]
    form = CustomerFilterForm(segment)
    unknown = sorted(set(segment) - set(form.fields) - {"sort"})
    errors = [_("Unknown filter: %(name)s.") % {"name": name} for name in unknown]
    if not form.is_valid():
        errors += [f"{name}: {' '.join(messages)}" for name, messages in form.errors.items()]
    return errors


def surveys_invite_segments(*, now=None) -> int:
    """Invite, for every open survey with a segment, the segment's customers not yet invited."""
    now = now or timezone.now()
    invited = 0
    for survey in Survey.objects.filter(status=Survey.Status.OPEN).exclude(segment_filter={}):
        if segment_filter_errors(survey.segment_filter):
            continue
        customers = customer_filter(**CustomerFilterForm(survey.segment_filter).filters())
        invited += survey_invite_bulk(survey=survey, customers=customers, trigger=Invitation.Channel.SCHEDULE, now=now).invited
    return invited


def surveys_invite_automatic(*, now=None) -> int:
    """Every automatic trigger once: after orders, on stage entry, segments."""
    now = now or timezone.now()
    return surveys_invite_after_orders(now=now) + surveys_invite_on_stage_entry(now=now) + surveys_invite_segments(now=now)
