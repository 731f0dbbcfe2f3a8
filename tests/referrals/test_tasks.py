"""The periodic tasks: released holds, escalated reviews; each safe to run again."""

import datetime as dt

import pytest
from django.core.management import call_command
from django.utils import timezone

from customers.models import Task
from referrals import tasks
from referrals.models import Referral, ReferralEvent, Reward
from tests.referrals.helpers import program_set, referral_make

pytestmark = pytest.mark.django_db


def test_the_hold_task_approves_and_rewards_ended_holds_only_and_a_retry_does_nothing():
    program_set(referee_reward="none")
    ended = referral_make(state="held")
    running = referral_make(state="held", hold_ended=False)
    assert tasks.referrals_release_holds() == 1
    assert tasks.referrals_release_holds() == 0
    assert Referral.objects.get(pk=ended.pk).state == "rewarded"
    assert Referral.objects.get(pk=running.pk).state == "held"
    assert Reward.objects.count() == 1
    events = list(ended.events.values_list("from_state", "to_state", "actor"))
    assert events == [("held", "approved", "system"), ("approved", "rewarded", "system")]


def test_a_lapsed_review_is_escalated_once_with_a_task_and_never_paid():
    overdue = referral_make(state="flagged", review_deadline=timezone.now() - dt.timedelta(minutes=1))
    in_time = referral_make(state="flagged", review_deadline=timezone.now() + dt.timedelta(hours=1))
    assert tasks.referrals_escalate_reviews() == 1
    assert tasks.referrals_escalate_reviews() == 0
    assert tasks.referrals_release_holds() == 0
    overdue.refresh_from_db()
    assert overdue.state == "flagged" and overdue.escalated_at is not None
    assert Referral.objects.get(pk=in_time.pk).escalated_at is None
    event = ReferralEvent.objects.get(referral=overdue)
    assert (event.from_state, event.to_state, event.actor, event.data["escalated"]) == ("flagged", "flagged", "system", True)
    task = Task.objects.get()
    assert task.customer_id == overdue.referrer_id and str(overdue.pk) in task.title
    assert not Reward.objects.exists()


def test_the_feed_task_hands_over_nothing_twice():
    assert tasks.referrals_feed() >= 0
    assert tasks.referrals_feed() == 0


def test_the_command_runs_every_step(capsys):
    program_set(referee_reward="none")
    referral_make(state="held")
    referral_make(state="flagged", review_deadline=timezone.now() - dt.timedelta(minutes=1))
    call_command("run_referrals")
    out = capsys.readouterr().out
    assert "1 referrals rewarded, 1 reviews escalated" in out
    call_command("run_referrals")
    assert "0 referrals rewarded, 0 reviews escalated" in capsys.readouterr().out
