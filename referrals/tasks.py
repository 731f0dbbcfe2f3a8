"""Celery tasks of the referral programme: thin wrappers over its services, run by beat (entries
created by referrals/migrations/0003_refcore_approved_at_beat.py, editable under Periodic tasks).

Each is safe to run twice or to retry: the feed's cursor commits with the transitions; a released
hold is no longer held and an escalated review has escalated_at set, both checked under the row's
lock; rewards are one per referral and side (a database constraint) and e-mails have keys."""

from celery import shared_task
from django.db import OperationalError

from referrals.services.qualification import referrals_feed_consume
from referrals.services.review import reviews_escalate
from referrals.services.rewards import holds_release

RETRY = {"autoretry_for": (OperationalError,), "retry_backoff": True, "max_retries": 5}


@shared_task(name="referrals.tasks.referrals_feed", **RETRY)
def referrals_feed() -> int:
    """Every minute: qualify referrals on first paid orders, void or claw back on refunds."""
    return referrals_feed_consume()


@shared_task(name="referrals.tasks.referrals_release_holds", **RETRY)
def referrals_release_holds() -> int:
    """Every 15 minutes: approve and reward the held referrals whose hold has ended."""
    return holds_release()


@shared_task(name="referrals.tasks.referrals_escalate_reviews", **RETRY)
def referrals_escalate_reviews() -> int:
    """Every 15 minutes: escalate flagged referrals whose review deadline lapsed (never pays them)."""
    return reviews_escalate()
