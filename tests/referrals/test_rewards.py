"""The rewards of an approved referral: both sides, group bonuses, each cap and the budget."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from loyalty.services.program import program_get as loyalty_program_get
from messaging.models import Message
from referrals.models import GroupRewardStep, Referral, Reward
from referrals.services.qualification import order_changes_handle
from referrals.services.rewards import holds_release
from tests.referrals.helpers import default_group_steps, program_set, referral_make
from tests.referrals.test_qualification import refunded

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _steps():
    default_group_steps()

CASH = {"referrer_reward": "cash_percent", "referrer_percent": Decimal("10"), "referrer_cash_cap": None,
        "referee_reward": "none"}


def release(referrer=None, count=1, amount="100.00"):
    made = []
    for _ in range(count):
        made.append(referral_make(referrer=referrer, state="held", amount=amount))
        referrer = made[0].referrer
    holds_release()
    return referrer, made


def referrer_rewards(customer):
    return Reward.objects.filter(customer=customer, role="referrer").order_by("pk")


def test_cash_is_the_percentage_of_the_first_order_capped_per_reward():
    program_set(**{**CASH, "referrer_cash_cap": Decimal("15.00")})
    referrer, _made = release(amount="80.00")
    release(referrer, amount="400.00")
    assert [(r.kind, r.amount, r.value) for r in referrer_rewards(referrer)] == [
        ("cash", Decimal("8.00"), Decimal("8.00")), ("cash", Decimal("15.00"), Decimal("15.00"))]


def test_points_are_valued_at_loyaltys_point_value():
    loyalty = loyalty_program_get()
    loyalty.point_value = Decimal("0.0200")
    loyalty.save()
    program_set(referrer_reward="points", referrer_points=500, referee_reward="points", referee_points=200)
    _referrer, (referral,) = release()
    rewards = {r.role: r for r in Reward.objects.filter(referral=referral)}
    assert (rewards["referrer"].points, rewards["referrer"].value) == (500, Decimal("10.00"))
    assert (rewards["referee"].points, rewards["referee"].value, rewards["referee"].customer_id) == (
        200, Decimal("4.00"), referral.referee_id)


def test_points_without_loyalty_settings_use_loyaltys_default_value():
    program_set(referrer_reward="points", referrer_points=500, referee_reward="none")
    _referrer, (referral,) = release()
    assert Reward.objects.get(referral=referral).value == Decimal("5.00")  # 500 x 0.01


def test_the_referees_welcome_discount_has_its_own_code_and_expiry():
    program_set(**{**CASH, "referee_reward": "discount", "referee_discount_percent": Decimal("15"),
                   "referee_discount_days": 30})
    _referrer, _made = release(count=2, amount="60.00")
    discounts = list(Reward.objects.filter(role="referee"))
    assert len({d.discount_code for d in discounts}) == 2
    for discount in discounts:
        assert (discount.kind, discount.percent, discount.value) == ("discount", 15, Decimal("9.00"))
        assert discount.expires_at - timezone.now() > dt.timedelta(days=29)


def test_the_referrer_is_told_by_e_mail_once():
    program_set(**CASH)
    referrer, (referral,) = release()
    reward = Reward.objects.get(referral=referral)
    message = Message.objects.get(customer=referrer)
    assert message.key == f"referral-reward:{reward.pk}:made" and message.template.key == "referral_rewarded"
    assert holds_release() == 0
    assert Message.objects.count() == 1


@pytest.mark.parametrize("approved, bonuses", [(2, []), (3, [(3, Decimal("30.00"))]),
                                               (5, [(3, Decimal("30.00")), (5, Decimal("50.00"))])])
def test_group_bonuses_at_2_3_and_5_approved_referrals(approved, bonuses):
    program_set(**{**CASH, "group_base_amount": Decimal("100.00")})
    referrer, _made = release(count=approved)
    group = Reward.objects.filter(customer=referrer, role="group").order_by("group_step")
    assert [(g.group_step, g.amount) for g in group] == bonuses
    assert all(g.referral_id is None and g.kind == "cash" for g in group)
    release(referrer, count=1)  # one more: the third makes the step, later ones never repeat it
    assert Reward.objects.filter(customer=referrer, role="group", group_step=3).count() == 1


def test_only_approved_referrals_count_for_the_group_bonus():
    program_set(**CASH)
    referrer, _made = release(count=2)
    referral_make(referrer=referrer, state="flagged")
    referral_make(referrer=referrer, state="held", hold_ended=False)
    referral_make(referrer=referrer, state="rejected", qualifying_order=None)
    holds_release()
    assert not Reward.objects.filter(role="group").exists()


def test_a_clawed_back_referral_lowers_the_count_and_claws_back_an_unclaimed_bonus():
    program_set(**{**CASH, "budget_total": Decimal("1000.00")})
    referrer, made = release(count=3)
    bonus = Reward.objects.get(role="group")
    spent = program_set().budget_spent
    assert spent == Decimal("60.00")  # 3 x 10 + 30
    order_changes_handle([refunded(made[0].qualifying_order)])
    bonus.refresh_from_db()
    assert bonus.state == "clawed_back"
    assert program_set().budget_spent == Decimal("20.00")
    # Reaching three again in the period does not make the step's bonus twice.
    release(referrer)
    assert Reward.objects.filter(role="group").count() == 1


def test_a_claimed_bonus_whose_step_is_lost_is_recorded_as_clawed_back():
    program_set(**CASH)
    _referrer, made = release(count=3)
    Reward.objects.filter(role="group").update(state="claimed")
    order_changes_handle([refunded(made[1].qualifying_order)])
    assert Reward.objects.get(role="group").state == "clawed_back"


def test_the_monthly_cap_withholds_the_referrer_reward_but_approves_and_says_why():
    program_set(**{**CASH, "referee_reward": "discount", "cap_rewards_per_month": 2})
    referrer, made = release(count=3)
    assert referrer_rewards(referrer).count() == 2
    assert Reward.objects.filter(role="referee").count() == 3  # the referee's side has no per-referrer cap
    assert set(Referral.objects.filter(referrer=referrer).values_list("state", flat=True)) == {"rewarded"}
    capped = next(r for r in made if not Reward.objects.filter(referral=r, role="referrer").exists())
    withheld = capped.events.get(to_state="rewarded").data["withheld"]
    assert withheld[0]["role"] == "referrer" and "2" in withheld[0]["reason"]


def test_the_yearly_cap_counts_earlier_months_and_clawed_back_rewards_free_a_place():
    program_set(**{**CASH, "cap_rewards_per_year": 2})
    referrer, _made = release(count=2)
    earlier = timezone.now() - dt.timedelta(days=40)
    if earlier.year == timezone.now().year:
        Reward.objects.filter(customer=referrer).update(created_at=earlier)
    release(referrer)
    assert referrer_rewards(referrer).count() == 2
    Reward.objects.filter(pk=referrer_rewards(referrer).first().pk).update(state="clawed_back")
    release(referrer)
    assert referrer_rewards(referrer).count() == 3


def test_the_cash_cap_per_period_cuts_the_last_reward_then_withholds():
    program_set(**{**CASH, "cap_cash_per_period": Decimal("25.00"), "cap_cash_period": "year"})
    referrer, _made = release(count=4)
    assert [r.amount for r in referrer_rewards(referrer)] == [Decimal("10.00"), Decimal("10.00"), Decimal("5.00")]
    # The group bonus at 3 found the cap spent.
    assert not Reward.objects.filter(role="group").exists()


def test_the_budget_gives_a_reward_whole_or_not_at_all_and_is_never_exceeded():
    program_set(**{**CASH, "referee_reward": "discount", "budget_total": Decimal("35.00")})
    release(count=2)  # 10 + 10 discount each
    program = program_set()
    assert program.budget_spent == Decimal("30.00")
    _referrer, (last,) = release()
    assert program_set().budget_spent == Decimal("30.00")
    assert last.events.get(to_state="rewarded").data["withheld"][0]["reason"] == "The programme's budget is spent."


def test_group_steps_come_from_the_admin_settings():
    GroupRewardStep.objects.all().delete()
    GroupRewardStep.objects.create(referrals=2, percent=Decimal("10"))
    program_set(**CASH)
    _referrer, _made = release(count=2)
    assert Reward.objects.get(role="group").amount == Decimal("10.00")
