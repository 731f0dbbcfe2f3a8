"""The referral programme's part of the demo data (`make run`): a dozen demo customers share their
codes (with share-link visits), and their referrals of other demo customers sit in every state of
the machine: pending, held, flagged for review (one overdue), auto-rejected, void and rewarded, with
some rewards claimed and some payouts paid. Built on the customers and orders seed_demo stored, with
the programme's own services (codes, transitions, rewards, claims, payouts), so the dashboard, the
review queue, the payouts and the portal have something to show. Reproducible for a seed; a few
hundred rows, well under a second.

Registered as a demo step by referrals.ui; the demo's reset deletes these rows with the demo
customers (everything referral-related cascades from its customer)."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Min
from django.utils import timezone
from django.utils.translation import gettext as _

from customers.models import Customer, Order
from customers.services.demo import params as P
from referrals.models import Referral, Reward, ShareVisit
from referrals.services.claims import reward_claim
from referrals.services.codes import referral_code_for
from referrals.services.payouts import payout_mark_paid
from referrals.services.program import program_get
from referrals.services.rewards import referral_reward
from referrals.services.transitions import referral_created_event, referral_transition

S = Referral.State
REFERRERS = 12
# The end state of each demo referral, drawn with these weights.
OUTCOMES = [("rewarded", 5), ("held", 2), ("pending", 2), ("flagged", 2), ("rejected", 1), ("void", 1)]
DEMO_BUDGET = Decimal("5000.00")


def _flag_signals(rng: random.Random) -> list[dict]:
    pool = [
        {"code": "same_device", "weight": 40, "action": "flag", "detail": {}},
        {"code": "ip_burst", "weight": 20, "action": "flag", "detail": {"signups": 7}},
        {"code": "similar_name", "weight": 20, "action": "flag", "detail": {"similarity": 86}},
        {"code": "fast_order", "weight": 15, "action": "flag", "detail": {"minutes": 3}},
    ]
    return rng.sample(pool, rng.randint(1, 3))


def _move(referral: Referral, to_state: str, reason: str, **fields) -> None:
    referral_transition(referral=referral, to_state=to_state, actor="system", reason=reason, fields=fields)


def _qualify(referral: Referral, order: dict, at: dt.datetime, hold_until: dt.datetime) -> None:
    _move(referral, S.QUALIFIED, _("First paid order"), qualifying_order_id=order["pk"], order_amount=order["amount"],
          qualified_at=at)
    _move(referral, S.HELD, _("Held until the refund window closes"), hold_until=hold_until)


def referrals_demo_seed(*, seed: int, now: dt.datetime | None = None, referrers: int = REFERRERS) -> dict:
    """Add the demo referrals; the counts of what was made (empty without demo customers)."""
    now = now or timezone.now()
    rng = random.Random(seed)
    demo_ids = list(
        Customer.objects.filter(external_id__startswith=P.CUSTOMER_PREFIX).order_by("pk").values_list("pk", flat=True)
    )
    if len(demo_ids) < referrers * 2:
        return {}
    # Each demo customer's first paid order (a referee qualifies with it).
    first_orders = {
        row["customer_id"]: row["first"]
        for row in Order.objects.filter(customer_id__in=demo_ids, status=Order.Status.PAID)
        .values("customer_id").annotate(first=Min("pk")).order_by()
    }
    orders = {o["pk"]: o for o in Order.objects.filter(pk__in=first_orders.values()).values("pk", "amount", "ordered_at")}
    referrer_ids = rng.sample(demo_ids, referrers)
    taken = set(referrer_ids) | set(Referral.objects.values_list("referee_id", flat=True))
    # Referees who ordered qualify (held, void, rewarded); those who have not stay pending or wait in
    # review, so the order feed's qualification finds nothing of theirs to move later.
    buyers = [pk for pk in demo_ids if pk in first_orders and pk not in taken]
    others = [pk for pk in demo_ids if pk not in first_orders and pk not in taken]
    rng.shuffle(buyers)
    rng.shuffle(others)
    manager = get_user_model().objects.filter(username="manager").first()
    states, weights = zip(*OUTCOMES, strict=True)
    counts = {"codes": 0, "referrals": 0, "rewards": 0, "payouts_paid": 0}

    with transaction.atomic():
        program = program_get()
        if program.budget_total is None:
            program.budget_total = DEMO_BUDGET
            program.save(update_fields=["budget_total"])
        visits = []
        for referrer_id in referrer_ids:
            code = referral_code_for(customer_id=referrer_id)
            counts["codes"] += 1
            for back in rng.sample(range(180), 25):
                visits.append(ShareVisit(code=code, day=timezone.localdate(now) - dt.timedelta(days=back),
                                         visits=rng.randint(1, 12)))
            for _n in range(rng.randint(1, 6)):
                outcome = rng.choices(states, weights)[0]
                pool = buyers if outcome in ("held", "void", "rewarded") else others or buyers
                if not pool:
                    break
                referee_id = pool.pop()
                order = orders.get(first_orders.get(referee_id))
                if order is not None:
                    created = order["ordered_at"] - dt.timedelta(days=rng.randint(1, 10))
                else:
                    created = now - dt.timedelta(days=rng.randint(0, 330))
                referral = Referral.objects.create(referrer_id=referrer_id, referee_id=referee_id, code=code,
                                                   source=Referral.Source.SIGNUP)
                Referral.objects.filter(pk=referral.pk).update(created_at=created)
                referral_created_event(referral=referral, actor="system", reason=_("Demo data"))
                if outcome == "rejected":
                    _move(referral, S.REJECTED, _("Auto-rejected: the referee was already a customer"),
                          verdict=Referral.Verdict.REJECTED, risk_score=100,
                          signals=[{"code": "existing_customer", "weight": 100, "action": "reject", "detail": {}}],
                          decided_at=created)
                elif outcome == "flagged":
                    signals = _flag_signals(rng)
                    _move(referral, S.FLAGGED, _("Risk score reached the review threshold"),
                          verdict=Referral.Verdict.REVIEW, signals=signals,
                          risk_score=min(100, sum(s["weight"] for s in signals)),
                          review_deadline=now + dt.timedelta(hours=rng.choice([-6, 20, 48, 70])))
                elif outcome in ("held", "void", "rewarded"):
                    hold_until = now + dt.timedelta(days=rng.randint(3, 25)) if outcome == "held" else now
                    _qualify(referral, order, order["ordered_at"], hold_until)
                    if outcome == "void":
                        _move(referral, S.VOID, _("The qualifying order was refunded during the hold"))
                    elif outcome == "rewarded":
                        made = referral_reward(referral=referral, actor="system", reason=_("The hold ended"), now=now)
                        counts["rewards"] += len(made.made)
                counts["referrals"] += 1
        ShareVisit.objects.bulk_create(visits, ignore_conflicts=True)
        # Some customers already claimed their cash; some payouts were paid.
        cash = list(Reward.objects.filter(customer_id__in=referrer_ids, kind=Reward.Kind.CASH,
                                          state=Reward.State.AVAILABLE).order_by("pk"))
        for reward in cash[: len(cash) * 2 // 3]:
            outcome = reward_claim(reward_id=reward.pk, customer_id=reward.customer_id, now=now)
            if outcome.payout is not None and manager is not None and rng.random() < 0.5:
                payout_mark_paid(payout_id=outcome.payout.pk, staff=manager, reference=f"DEMO-{outcome.payout.pk:05d}")
                counts["payouts_paid"] += 1
    return counts


def referrals_demo(*, seed: int) -> str:
    """The demo step (core.registry.register_demo_step): a line for the person watching."""
    counts = referrals_demo_seed(seed=seed)
    if not counts:
        return _("Demo referrals: none (too few demo customers).")
    return _(
        "Demo referrals: %(codes)d codes, %(referrals)d referrals, %(rewards)d rewards, %(paid)d payouts paid."
    ) % {"codes": counts["codes"], "referrals": counts["referrals"], "rewards": counts["rewards"],
         "paid": counts["payouts_paid"]}
