"""The rewards an approved referral earns, within the caps and the budget, and taking them back.

Two-sided, per the programme's settings: the referrer gets cash (referrer_percent of the referee's
first order, at most referrer_cash_cap) or referrer_points; the referee a welcome discount (a
unique code with an expiry), points, or nothing. Reaching a group step (GroupRewardStep: N approved
referrals in one group period) earns the referrer one cash bonus of the step's percentage of
group_base_amount, once per step and period. `Reward.value` is the money value of any reward:
cash at its amount, points at loyalty's point_value, a discount at its percentage of the referee's
first order (what the same order would have saved).

Caps, all per referrer: referrer rewards per calendar month and per year, cash (referrer and group
rewards) per cash-cap period, and the programme's budget for every reward of either side. A reward
over a cap is not made: the referral is still approved and rewarded, and the rewarding event says
which reward was withheld and why. The cash cap cuts a cash reward to what is left of it; the budget
gives a reward whole or not at all. Rewards that were clawed back or voided count for no cap.

Concurrency: every maker and every clawback locks the referrer's ReferralCode row and then the
programme row (always in this order, so two of them never wait for each other in a cycle) before
counting; the counts and the budget cannot move until the transaction ends."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from core.locking import lock_rows
from core.money import ZERO, money_round
from loyalty.models import LoyaltyProgram
from loyalty.services.ledger import Shortfall, account_for_customer, ledger_post
from messaging.defaults import register_default_template
from messaging.services import message_send
from referrals.models import GroupRewardStep, Payout, Referral, ReferralCode, ReferralProgram, Reward
from referrals.services.codes import code_new
from referrals.services.periods import period_span
from referrals.services.program import program_get
from referrals.services.transitions import referral_transition

logger = logging.getLogger(__name__)

REWARDED_TEMPLATE = "referral_rewarded"
COUNTED = ~Q(state__in=[Reward.State.CLAWED_BACK, Reward.State.VOID])
HUNDRED = Decimal(100)


def register_templates() -> None:
    register_default_template(
        key=REWARDED_TEMPLATE,
        name="Referral rewarded",
        purpose="transactional",
        variables="points, amount, currency",
        subject_en="Your referral earned you a reward",
        text_en=(
            "Hello {{ customer.first_name|default:'there' }},\n\n"
            "Someone you referred has become a customer, and you have earned "
            "{% if points %}{{ points }} points{% else %}{{ amount }} {{ currency }}{% endif %}. "
            "Claim it in your account.\n"
        ),
        subject_zh_hans="您的推荐为您赢得了奖励",
        text_zh_hans=(
            "{{ customer.first_name|default:'您' }}好，\n\n"
            "您推荐的朋友已成为我们的客户，您获得了"
            "{% if points %}{{ points }} 积分{% else %}{{ amount }} {{ currency }}{% endif %}。"
            "请在您的账户中领取。\n"
        ),
    )


@dataclass
class RewardOutcome:
    made: list[Reward] = field(default_factory=list)
    withheld: list[dict] = field(default_factory=list)  # {"role": ..., "reason": ...}

    def as_data(self) -> dict:
        return {"rewards": [reward.pk for reward in self.made], "withheld": self.withheld}


def point_value() -> Decimal:
    """Loyalty's money value of one point (its default when loyalty's settings row is missing)."""
    program = LoyaltyProgram.objects.filter(pk=1).only("point_value").first() or LoyaltyProgram()
    return program.point_value


def _points_value(points: int) -> Decimal:
    return money_round(Decimal(points) * point_value())


def lock_referrer_and_program(*, code_id: int) -> ReferralProgram:
    """Lock the referrer's code row, then the programme row (the fixed order every maker and
    clawback uses); the locked programme."""
    program_get()  # the row exists before it is locked
    lock_rows(ReferralCode.objects.filter(pk=code_id))
    return lock_rows(ReferralProgram.objects.filter(pk=1))[0]


class _Budget:
    """What is left of the programme's budget while one transaction makes rewards."""

    def __init__(self, program: ReferralProgram):
        self.program = program
        self.spent = ZERO

    def fits(self, value: Decimal) -> bool:
        total = self.program.budget_total
        return total is None or self.program.budget_spent + self.spent + value <= total

    def spend(self, value: Decimal) -> None:
        self.spent += value

    def save(self, *, returned: Decimal = ZERO) -> None:
        change = self.spent - returned
        if change:
            self.program.budget_spent = max(self.program.budget_spent + change, ZERO)
            self.program.save(update_fields=["budget_spent"])


def _referrer_rewards(customer_id: int):
    return Reward.objects.filter(COUNTED, customer_id=customer_id)


def _cash_left(*, program: ReferralProgram, customer_id: int, now: dt.datetime) -> Decimal | None:
    if program.cap_cash_per_period is None:
        return None
    span = period_span(program.cap_cash_period, now)
    given = _referrer_rewards(customer_id).filter(
        kind=Reward.Kind.CASH, role__in=[Reward.Role.REFERRER, Reward.Role.GROUP],
        created_at__gte=span.start, created_at__lt=span.end,
    ).aggregate(total=Sum("amount"))["total"] or ZERO
    return max(program.cap_cash_per_period - given, ZERO)


def _count_cap_reached(*, program: ReferralProgram, customer_id: int, now: dt.datetime) -> str | None:
    caps = (("month", program.cap_rewards_per_month), ("year", program.cap_rewards_per_year))
    for period, cap in caps:
        if cap is None:
            continue
        span = period_span(period, now)
        made = _referrer_rewards(customer_id).filter(
            role=Reward.Role.REFERRER, created_at__gte=span.start, created_at__lt=span.end
        ).count()
        if made >= cap:
            if period == "month":
                return _("The referrer reached the cap of %(cap)d rewards this month.") % {"cap": cap}
            return _("The referrer reached the cap of %(cap)d rewards this year.") % {"cap": cap}
    return None


def _referrer_reward(*, referral: Referral, program: ReferralProgram, budget: _Budget, now, outcome: RewardOutcome,
                     period_first_day: dt.date) -> None:
    role = Reward.Role.REFERRER
    reached = _count_cap_reached(program=program, customer_id=referral.referrer_id, now=now)
    if reached:
        outcome.withheld.append({"role": role, "reason": reached})
        return
    fields: dict = {"kind": Reward.Kind.POINTS, "points": program.referrer_points}
    if program.referrer_reward == ReferralProgram.ReferrerReward.CASH_PERCENT:
        amount = money_round((referral.order_amount or ZERO) * program.referrer_percent / HUNDRED)
        if program.referrer_cash_cap is not None:
            amount = min(amount, program.referrer_cash_cap)
        left = _cash_left(program=program, customer_id=referral.referrer_id, now=now)
        if left is not None and amount > left:
            amount = left  # cut to what the cash cap leaves
            if not amount:
                outcome.withheld.append(
                    {"role": role, "reason": _("The referrer reached the cash cap of %(cap)s for this period.")
                     % {"cap": program.cap_cash_per_period}}
                )
                return
        fields = {"kind": Reward.Kind.CASH, "amount": amount}
        value = amount
    else:
        value = _points_value(program.referrer_points)
    if not value and not fields.get("points"):
        outcome.withheld.append({"role": role, "reason": _("The reward would be worth nothing.")})
        return
    _make(referral=referral, role=role, value=value, fields=fields, program=program, budget=budget, outcome=outcome,
          customer_id=referral.referrer_id, period_first_day=period_first_day)


def _referee_reward(*, referral: Referral, program: ReferralProgram, budget: _Budget, now, outcome: RewardOutcome,
                    period_first_day: dt.date) -> None:
    kind = program.referee_reward
    if kind == ReferralProgram.RefereeReward.NONE:
        return
    if kind == ReferralProgram.RefereeReward.POINTS:
        if not program.referee_points:
            return
        fields = {"kind": Reward.Kind.POINTS, "points": program.referee_points}
        value = _points_value(program.referee_points)
    else:
        if not program.referee_discount_percent:
            return
        fields = {
            "kind": Reward.Kind.DISCOUNT, "percent": program.referee_discount_percent,
            "discount_code": f"W{code_new()}", "expires_at": now + dt.timedelta(days=program.referee_discount_days),
        }
        value = money_round((referral.order_amount or ZERO) * program.referee_discount_percent / HUNDRED)
    _make(referral=referral, role=Reward.Role.REFEREE, value=value, fields=fields, program=program, budget=budget,
          outcome=outcome, customer_id=referral.referee_id, period_first_day=period_first_day)


def _make(*, referral, role, value, fields, program, budget: _Budget, outcome: RewardOutcome, customer_id,
          period_first_day, group_step=None) -> Reward | None:
    if not budget.fits(value):
        outcome.withheld.append({"role": role, "reason": _("The programme's budget is spent.")})
        return None
    budget.spend(value)
    reward = Reward.objects.create(
        customer_id=customer_id, referral=referral, role=role, value=value, currency=program.currency,
        period_start=period_first_day, group_step=group_step, **fields,
    )
    outcome.made.append(reward)
    return reward


def approved_in_period(*, referrer_id: int, program: ReferralProgram, moment: dt.datetime) -> tuple[int, dt.date]:
    """How many of the referrer's referrals count for the group bonus in the group period of `moment`
    (approved or rewarded, approved in that period), and the period's first day."""
    span = period_span(program.group_period, moment)
    count = Referral.objects.filter(
        referrer_id=referrer_id, state__in=[Referral.State.APPROVED, Referral.State.REWARDED],
        approved_at__gte=span.start, approved_at__lt=span.end,
    ).count()
    return count, span.first_day


def _group_rewards(*, referral: Referral, program: ReferralProgram, budget: _Budget, now, outcome: RewardOutcome) -> None:
    count, first_day = approved_in_period(referrer_id=referral.referrer_id, program=program, moment=referral.approved_at)
    steps = list(GroupRewardStep.objects.filter(referrals__lte=count))
    if not steps:
        return
    # One per step and period, ever: a bonus clawed back in this period is not made again.
    have = set(Reward.objects.filter(
        customer_id=referral.referrer_id, role=Reward.Role.GROUP, period_start=first_day
    ).values_list("group_step", flat=True))
    for step in steps:
        if step.referrals in have:
            continue
        amount = money_round(program.group_base_amount * step.percent / HUNDRED)
        left = _cash_left(program=program, customer_id=referral.referrer_id, now=now)
        if left is not None:  # counts the cash made above in this transaction too
            amount = min(amount, left)
        if amount <= 0:
            outcome.withheld.append(
                {"role": Reward.Role.GROUP, "step": step.referrals,
                 "reason": _("The referrer reached the cash cap of %(cap)s for this period.") % {"cap": program.cap_cash_per_period}}
            )
            continue
        _make(referral=None, role=Reward.Role.GROUP, value=amount, fields={"kind": Reward.Kind.CASH, "amount": amount},
              program=program, budget=budget, outcome=outcome, customer_id=referral.referrer_id,
              period_first_day=first_day, group_step=step.referrals)


def rewards_make(*, referral: Referral, now: dt.datetime) -> RewardOutcome:
    """Make the rewards of `referral` (approved, locked by the caller, in its transaction)."""
    program = lock_referrer_and_program(code_id=referral.code_id)
    budget = _Budget(program)
    outcome = RewardOutcome()
    first_day = period_span(program.group_period, referral.approved_at or now).first_day
    _referrer_reward(referral=referral, program=program, budget=budget, now=now, outcome=outcome, period_first_day=first_day)
    _referee_reward(referral=referral, program=program, budget=budget, now=now, outcome=outcome, period_first_day=first_day)
    _group_rewards(referral=referral, program=program, budget=budget, now=now, outcome=outcome)
    budget.save()
    return outcome


def referral_reward(*, referral: Referral, actor: str, reason: str, staff=None, now: dt.datetime | None = None,
                    data: dict | None = None, fields: dict | None = None) -> RewardOutcome:
    """Approve `referral` (held or flagged, locked by the caller), make its rewards and mark it
    rewarded; e-mail the referrer when they got a reward. One transaction: the caller's."""
    now = now or timezone.now()
    referral_transition(referral=referral, to_state=Referral.State.APPROVED, actor=actor, staff=staff, reason=reason,
                        data=data, fields={**(fields or {}), "approved_at": now})
    outcome = rewards_make(referral=referral, now=now)
    for withheld in outcome.withheld:
        logger.info("referral %s: %s reward withheld: %s", referral.pk, withheld["role"], withheld["reason"])
    referral_transition(
        referral=referral, to_state=Referral.State.REWARDED, actor="system",
        reason=_("Rewards made: %(made)d; withheld: %(withheld)d.") % {"made": len(outcome.made), "withheld": len(outcome.withheld)},
        data=outcome.as_data(),
    )
    for reward in outcome.made:
        if reward.role != Reward.Role.REFEREE:
            _notify(reward)
    return outcome


def _notify(reward: Reward) -> None:
    from customers.models import Customer

    message_send(
        customer=Customer.objects.get(pk=reward.customer_id), template=REWARDED_TEMPLATE,
        key=f"referral-reward:{reward.pk}:made", purpose="transactional",
        context={"points": reward.points or 0, "amount": str(reward.amount or ""), "currency": reward.currency},
    )


# --- Taking rewards back --------------------------------------------------------------------------


def _reward_claw_back(*, reward: Reward, now: dt.datetime, reason: str) -> tuple[Decimal, dict]:
    """Claw back one locked reward; the value it gives back to the budget and what was done.

    Unclaimed: clawed back whole (back to the budget). A claimed points reward: the points are taken
    back through the loyalty ledger (as far as the balance allows); a cash payout not paid yet is
    cancelled (back to the budget); one already paid, or a discount, is recorded as clawed back."""
    done: dict = {"reward": reward.pk, "was": reward.state}
    returned = ZERO
    if reward.state == Reward.State.AVAILABLE:
        returned = reward.value
    elif reward.kind == Reward.Kind.POINTS:
        account = account_for_customer(customer_id=reward.customer_id)
        entry = ledger_post(
            account_id=account.pk, kind="adjust", points=-reward.points, idempotency_key=f"referral-reward:{reward.pk}:clawback",
            source="referral", reason=reason[:200], shortfall=Shortfall.FLOOR, include_pending=True, now=now,
        ).entry
        done["ledger_entry"] = entry.pk
    elif reward.kind == Reward.Kind.CASH:
        payout = Payout.objects.select_for_update().filter(reward=reward).first()
        if payout is not None and payout.state == Payout.State.REQUESTED:
            payout.state = Payout.State.CANCELLED
            payout.save(update_fields=["state"])
            returned = reward.value
            done["payout"] = "cancelled"
        elif payout is not None:
            done["payout"] = payout.state
    reward.state = Reward.State.CLAWED_BACK
    reward.clawed_back_at = now
    reward.save(update_fields=["state", "clawed_back_at"])
    return returned, done


def referral_claw_back(*, referral: Referral, reason: str, data: dict, now: dt.datetime | None = None) -> None:
    """The qualifying order of an approved or rewarded referral (locked by the caller) was refunded:
    claw back its rewards, and the referrer's group bonuses whose step the count no longer reaches
    (those still available; claimed ones are recorded as clawed back as above), then mark it
    clawed_back."""
    now = now or timezone.now()
    program = lock_referrer_and_program(code_id=referral.code_id)
    budget = _Budget(program)
    returned = ZERO
    done = []
    for reward in lock_rows(Reward.objects.filter(COUNTED, referral=referral)):
        back, what = _reward_claw_back(reward=reward, now=now, reason=reason)
        returned += back
        done.append(what)
    referral_transition(referral=referral, to_state=Referral.State.CLAWED_BACK, actor="system", reason=reason,
                        data={**data, "rewards": done})
    if referral.approved_at is not None:
        count, first_day = approved_in_period(referrer_id=referral.referrer_id, program=program, moment=referral.approved_at)
        bonuses = Reward.objects.filter(
            COUNTED, customer_id=referral.referrer_id, role=Reward.Role.GROUP, period_start=first_day, group_step__gt=count
        )
        for reward in lock_rows(bonuses):
            back, _what = _reward_claw_back(reward=reward, now=now, reason=reason)
            returned += back
    budget.save(returned=returned)


# --- The end of the hold --------------------------------------------------------------------------

RELEASE_BATCH = 500


def holds_release(*, now: dt.datetime | None = None) -> int:
    """Approve and reward every held referral whose hold has ended; how many. Each in its own
    transaction (locks held briefly); a referral moved meanwhile (refunded, flagged) is skipped."""
    now = now or timezone.now()
    released = 0
    last_id = 0
    while True:
        ids = list(
            Referral.objects.filter(state=Referral.State.HELD, hold_until__lte=now, pk__gt=last_id)
            .order_by("pk").values_list("pk", flat=True)[:RELEASE_BATCH]
        )
        if not ids:
            return released
        last_id = ids[-1]
        released += sum(hold_release(referral_id=referral_id, now=now) for referral_id in ids)


def hold_release(*, referral_id: int, now: dt.datetime | None = None) -> bool:
    """Approve and reward one held referral if its hold has ended (locked; a second call, or one
    racing it, finds it no longer held and does nothing); whether it did."""
    now = now or timezone.now()
    with transaction.atomic():
        referral = Referral.objects.select_for_update().filter(
            pk=referral_id, state=Referral.State.HELD, hold_until__lte=now
        ).first()
        if referral is None:
            return False
        referral_reward(referral=referral, actor="system", now=now, reason=_("The hold ended."))
        return True
