"""Caps and the budget under real concurrency on PostgreSQL: threads on their own connections
approve and reward referrals of one referrer, or of many against one budget, at the same moment."""

from decimal import Decimal

import pytest

from referrals.models import Referral, Reward
from referrals.services.rewards import hold_release, holds_release
from tests.factories import CustomerFactory
from tests.races import race
from tests.referrals.helpers import default_group_steps, program_set, referral_make

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

CASH = {"referrer_reward": "cash_percent", "referrer_percent": Decimal("10"), "referrer_cash_cap": None,
        "referee_reward": "none"}


def test_20_referrals_of_one_referrer_rewarded_at_once_with_a_cap_of_5_give_exactly_5():
    program_set(**CASH, cap_rewards_per_month=5)
    default_group_steps()
    referrer = CustomerFactory()
    made = [referral_make(referrer=referrer, state="held") for _ in range(20)]
    results, errors = race(*[lambda r=r: hold_release(referral_id=r.pk) for r in made])
    assert errors == []
    assert results == [True] * 20
    assert Reward.objects.filter(customer=referrer, role="referrer").count() == 5
    assert set(Referral.objects.values_list("state", flat=True)) == {"rewarded"}
    # The group steps were each reached once, whatever the interleaving.
    assert sorted(Reward.objects.filter(role="group").values_list("group_step", flat=True)) == [3, 5]


def test_a_budget_race_never_exceeds_the_budget():
    program_set(**CASH, budget_total=Decimal("50.00"))
    made = [referral_make(state="held", amount="100.00") for _ in range(20)]  # 10.00 each, 20 referrers
    _results, errors = race(*[lambda r=r: hold_release(referral_id=r.pk) for r in made])
    assert errors == []
    assert Reward.objects.count() == 5
    program = program_set()
    assert program.budget_spent == Decimal("50.00") <= program.budget_total


def test_the_cash_cap_holds_under_concurrency():
    program_set(**CASH, cap_cash_per_period=Decimal("35.00"), cap_cash_period="month")
    referrer = CustomerFactory()
    made = [referral_make(referrer=referrer, state="held") for _ in range(10)]
    _results, errors = race(*[lambda r=r: hold_release(referral_id=r.pk) for r in made])
    assert errors == []
    total = sum(Reward.objects.filter(customer=referrer).values_list("amount", flat=True))
    assert total == Decimal("35.00")


def test_the_hold_task_run_twice_at_once_rewards_each_referral_once():
    program_set(**CASH)
    made = [referral_make(state="held") for _ in range(6)]
    results, errors = race(holds_release, holds_release, holds_release)
    assert errors == []
    assert sum(results) == 6
    assert Reward.objects.count() == 6
    assert all(r.events.filter(to_state="rewarded").count() == 1 for r in Referral.objects.filter(pk__in=[m.pk for m in made]))
