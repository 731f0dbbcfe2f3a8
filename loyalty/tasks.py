"""Celery tasks of the loyalty programme: thin wrappers over its services, run by beat (entries
created by loyalty/migrations/0002_beat_schedule.py, editable under Periodic tasks).

Each is safe to run twice: the feed's cursor commits with the points, an expired lot is empty and
is not picked again, a downgrade needs a due date in the past and moves it on, a warned lot is
marked and its message key is per customer and day, the balance check only reads, a birthday
bonus is keyed by member and year and a survey bonus by the response."""

import logging

from celery import shared_task
from django.db import OperationalError

from loyalty.services.bonus import BonusLimitReached, birthday_bonuses_award, bonus_award
from loyalty.services.expiry import ledger_balance_check, lots_expire
from loyalty.services.feed import loyalty_feed_consume
from loyalty.services.tiers import tiers_downgrade
from loyalty.services.warnings import expiry_warnings_queue

logger = logging.getLogger(__name__)

RETRY = {"autoretry_for": (OperationalError,), "retry_backoff": True, "max_retries": 5}


@shared_task(name="loyalty.tasks.loyalty_feed", **RETRY)
def loyalty_feed() -> int:
    """Every minute: earn for newly paid orders and reverse refunds from the order feed; while a
    feed writer (an import) is running, it leaves the rest for the next minute."""
    return loyalty_feed_consume(yield_to_writers=True)


@shared_task(name="loyalty.tasks.loyalty_expire", **RETRY)
def loyalty_expire() -> dict:
    """Daily: expire what is left of lots past their expiry."""
    return lots_expire()


@shared_task(name="loyalty.tasks.loyalty_expiry_warnings", **RETRY)
def loyalty_expiry_warnings() -> dict:
    """Daily: e-mail customers whose points expire within the warning period (through the outbox)."""
    return expiry_warnings_queue()


@shared_task(name="loyalty.tasks.loyalty_tier_downgrades", **RETRY)
def loyalty_tier_downgrades() -> dict:
    """Daily: schedule and apply tier downgrades after their grace period."""
    return tiers_downgrade()


@shared_task(name="loyalty.tasks.loyalty_balance_check", **RETRY)
def loyalty_balance_check() -> int:
    """Nightly: compare every balance with its ledger; differences are logged and stored."""
    check = ledger_balance_check()
    if check.mismatches:
        logger.error("loyalty balance check: %d accounts differ from their ledger", len(check.mismatches))
    return len(check.mismatches)


@shared_task(name="loyalty.tasks.loyalty_birthday_bonuses", **RETRY)
def loyalty_birthday_bonuses() -> int:
    """Daily: the birthday bonus for members whose birthday is today (shop time zone)."""
    return birthday_bonuses_award()


@shared_task(name="loyalty.tasks.loyalty_survey_bonus", **RETRY)
def loyalty_survey_bonus(response_id: int) -> bool:
    """After a survey response is submitted (loyalty.receivers): its bonus, once per response.
    False when there is no active rule or the member's limit is used up."""
    from feedback.models import Response

    customer_id = Response.objects.filter(pk=response_id, submitted_at__isnull=False).values_list("customer_id", flat=True).first()
    if customer_id is None:
        return False
    try:
        return bonus_award(customer_id=customer_id, action="survey", key=f"response:{response_id}") is not None
    except BonusLimitReached:
        return False
