import datetime as dt

import pytest

from core.exceptions import DomainError
from referrals.models import Referral, ReferralEvent, Reward
from referrals.services.review import NotInReview, referral_approve, referral_reject
from referrals.services.transitions import TransitionRefused
from tests.referrals.helpers import program_set, referral_make

pytestmark = pytest.mark.django_db


def test_approving_a_flag_without_an_order_yet_sends_it_back_to_pending(manager):
    referral = referral_make(state="flagged", qualifying_order=None)
    referral_approve(referral_id=referral.pk, staff=manager, note="known family")
    referral.refresh_from_db()
    assert referral.state == "pending" and referral.decided_at is not None
    event = referral.events.get()
    assert (event.actor, event.staff, event.data) == ("staff", manager, {"note": "known family"})


def test_approving_a_flag_still_in_its_hold_sends_it_to_held(manager):
    referral = referral_make(state="flagged", hold_ended=False)
    referral_approve(referral_id=referral.pk, staff=manager, note="")
    referral.refresh_from_db()
    assert referral.state == "held"
    assert not Reward.objects.exists()


def test_approving_a_flag_whose_hold_is_over_rewards_it_at_once(manager):
    program_set(referrer_percent=10, referrer_cash_cap=None)
    referral = referral_make(state="flagged", amount="80.00")
    referral_approve(referral_id=referral.pk, staff=manager, note="checked")
    referral.refresh_from_db()
    assert referral.state == "rewarded" and referral.approved_at and referral.decided_at
    assert list(referral.events.values_list("to_state", flat=True)) == ["approved", "rewarded"]
    reward = Reward.objects.get(role="referrer")
    assert (reward.kind, reward.amount, reward.customer_id) == ("cash", 8, referral.referrer_id)


def test_only_flagged_referrals_are_approved_and_nothing_is_logged_otherwise(manager):
    referral = referral_make(state="held")
    with pytest.raises(NotInReview):
        referral_approve(referral_id=referral.pk, staff=manager, note="")
    assert not ReferralEvent.objects.exists()


def test_a_rejection_needs_a_manager_and_a_note(agent, manager):
    referral = referral_make(state="flagged")
    with pytest.raises(PermissionError):
        referral_reject(referral_id=referral.pk, staff=agent, note="fraud")
    with pytest.raises(DomainError) as caught:
        referral_reject(referral_id=referral.pk, staff=manager, note="  ")
    assert caught.value.field == "note"
    referral_reject(referral_id=referral.pk, staff=manager, note="same card")
    referral.refresh_from_db()
    assert referral.state == "rejected"
    with pytest.raises(TransitionRefused):
        referral_reject(referral_id=referral.pk, staff=manager, note="again")


def test_a_referrer_is_suspended_when_rejections_reach_the_limit(manager):
    program_set(suspend_after_rejections=2)
    first = referral_make(state="flagged")
    second = referral_make(referrer=first.referrer, state="held")
    referral_reject(referral_id=first.pk, staff=manager, note="fake")
    first.code.refresh_from_db()
    assert first.code.suspended_at is None
    referral_reject(referral_id=second.pk, staff=manager, note="fake too")
    first.code.refresh_from_db()
    assert first.code.suspended_at is not None and "2" in first.code.suspended_reason


def test_zero_never_suspends(manager):
    program_set(suspend_after_rejections=0)
    referral = referral_make(state="flagged")
    referral_reject(referral_id=referral.pk, staff=manager, note="fake")
    assert Referral.objects.get(pk=referral.pk).code.suspended_at is None


def test_a_flag_raised_before_the_hold_gets_its_refund_window_when_approved(manager):
    program_set(hold_days=30)
    referral = referral_make(state="flagged", hold_until=None, qualified_at=None)
    referral_approve(referral_id=referral.pk, staff=manager, note="")
    referral.refresh_from_db()
    assert referral.state == "held" and referral.hold_until > referral.created_at + dt.timedelta(days=29)
