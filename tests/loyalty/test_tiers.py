"""Tier downgrades and the change preview, both set-based SQL: boundaries (exactly at a threshold,
a grace period ending now, a manual hold until today, one tier at a time), the same results as the
in-memory evaluations they replaced (tests/loyalty/reference.py) on varied members, and a number of
queries that does not grow with the members."""

import datetime as dt
import random
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.transactions import rolled_back
from customers.models import Order
from loyalty.models import EarningRule, LoyaltyAccount, Tier, TierChange
from loyalty.services.earning import orders_earn
from loyalty.services.preview import change_preview
from loyalty.services.program import program_get
from loyalty.services.tiers import tiers_downgrade
from tests.factories import CustomerFactory
from tests.loyalty.helpers import program_set, usd_rule
from tests.loyalty.reference import reference_change_preview, reference_tiers_downgrade

pytestmark = pytest.mark.django_db


@pytest.fixture
def tiers():
    usd_rule("1")
    program_set(downgrade_grace_days=30)
    return {
        name: Tier.objects.create(name=name, threshold=Decimal(threshold), multiplier=Decimal(multiplier))
        for name, threshold, multiplier in [("Bronze", "0", "1"), ("Silver", "100", "1.25"), ("Gold", "500", "1.5"),
                                            ("Platinum", "2000", "2")]
    }


def members_with(figures: list[int]) -> list[LoyaltyAccount]:
    """One member per figure, each with an order (10 days ago) earning that many points at 1 a unit
    (0: enrolled without orders); tiers are then set by the test, not by the upgrade."""
    customers = [CustomerFactory() for _ in figures]
    orders = Order.objects.bulk_create(
        Order(external_id=f"T{c.pk}", customer=c, ordered_at=timezone.now() - dt.timedelta(days=10), amount=Decimal(f),
              currency="USD", status="paid")
        for c, f in zip(customers, figures) if f
    )
    orders_earn(order_ids=[o.pk for o in orders])
    for customer in customers:
        LoyaltyAccount.objects.get_or_create(customer=customer)
    TierChange.objects.all().delete()  # the upgrades of the earning: not what a test looks at
    return [LoyaltyAccount.objects.get(customer=c) for c in customers]


def set_state(account, tier=None, due=None, held_until=None):
    LoyaltyAccount.objects.filter(pk=account.pk).update(tier=tier, downgrade_due_at=due, tier_held_until=held_until)


def state(account):
    account.refresh_from_db()
    return account.tier.name if account.tier else None, account.downgrade_due_at


# --- boundaries -----------------------------------------------------------------------------------


def test_exactly_at_the_threshold_keeps_the_tier(tiers):
    at, below = members_with([500, 499])
    set_state(at, tiers["Gold"])
    set_state(below, tiers["Gold"])
    now = timezone.now()
    assert tiers_downgrade(now=now) == {"scheduled": 1, "downgraded": 0, "cleared": 0}
    assert state(at) == ("Gold", None)
    assert state(below) == ("Gold", now + dt.timedelta(days=30))


def test_a_grace_period_ending_now_drops_and_one_ending_later_waits(tiers):
    ending, later = members_with([150, 150])
    now = timezone.now()
    set_state(ending, tiers["Gold"], due=now)
    set_state(later, tiers["Gold"], due=now + dt.timedelta(seconds=1))
    assert tiers_downgrade(now=now) == {"scheduled": 0, "downgraded": 1, "cleared": 0}
    assert state(ending) == ("Silver", None)  # qualifies for Silver: no new grace period
    assert state(later) == ("Gold", now + dt.timedelta(seconds=1))
    change = TierChange.objects.get()
    assert (change.account_id, change.from_tier, change.to_tier, change.reason) == (
        ending.pk, tiers["Gold"], tiers["Silver"], "downgrade",
    )


def test_a_manual_hold_lasts_until_its_date_inclusive(tiers):
    held_today, held_until_yesterday = members_with([0, 0])
    now = timezone.now()
    today = timezone.localdate(now)
    set_state(held_today, tiers["Platinum"], due=now - dt.timedelta(days=1), held_until=today)
    set_state(held_until_yesterday, tiers["Platinum"], due=now - dt.timedelta(days=1), held_until=today - dt.timedelta(days=1))
    assert tiers_downgrade(now=now)["downgraded"] == 1
    assert state(held_today)[0] == "Platinum"
    assert state(held_until_yesterday)[0] == "Gold"


def test_dropping_one_tier_at_a_time_down_to_the_lowest(tiers):
    (member,) = members_with([0])
    set_state(member, tiers["Platinum"])
    now = timezone.now()
    assert tiers_downgrade(now=now)["scheduled"] == 1
    names = []
    for _step in range(4):
        now += dt.timedelta(days=31)
        tiers_downgrade(now=now)
        names.append(state(member))
    assert names == [
        ("Gold", now - dt.timedelta(days=93) + dt.timedelta(days=30)),
        ("Silver", now - dt.timedelta(days=62) + dt.timedelta(days=30)),
        ("Bronze", None),  # a figure of 0 reaches Bronze (threshold 0): no further grace
        ("Bronze", None),
    ]
    assert list(TierChange.objects.order_by("id").values_list("to_tier__name", flat=True)) == ["Gold", "Silver", "Bronze"]


def test_qualifying_again_clears_a_pending_downgrade(tiers):
    (member,) = members_with([600])
    now = timezone.now()
    set_state(member, tiers["Gold"], due=now - dt.timedelta(days=1))  # due, but qualifies now
    assert tiers_downgrade(now=now) == {"scheduled": 0, "downgraded": 0, "cleared": 1}
    assert state(member) == ("Gold", None)


# --- the same results as the in-memory evaluation -------------------------------------------------


def _outcome(run, times):
    """Run `run(now=...)` at each time, the results and the members' states after; rolled back."""
    outcome = {}
    with rolled_back():
        outcome["counts"] = [run(now=moment) for moment in times]
        outcome["accounts"] = sorted(LoyaltyAccount.objects.values_list("pk", "tier_id", "downgrade_due_at"))
        outcome["changes"] = sorted(TierChange.objects.values_list("account_id", "from_tier_id", "to_tier_id", "reason"))
    return outcome


def _varied_members(tiers, seed=12):
    rng = random.Random(seed)
    figures = [0, 99, 100, 101, 499, 500, 1999, 2000, 2500]
    accounts = members_with([rng.choice(figures) for _ in range(60)])
    now = timezone.now()
    today = timezone.localdate(now)
    for account in accounts:
        set_state(
            account,
            rng.choice([None, *tiers.values()]),
            due=rng.choice([None, now, now - dt.timedelta(days=3), now + dt.timedelta(days=3)]),
            held_until=rng.choice([None, today, today - dt.timedelta(days=1), today + dt.timedelta(days=5)]),
        )
    return now


def test_downgrades_match_the_in_memory_evaluation(tiers):
    now = _varied_members(tiers)
    times = [now, now + dt.timedelta(days=1), now + dt.timedelta(days=31), now + dt.timedelta(days=62)]
    new, old = _outcome(tiers_downgrade, times), _outcome(reference_tiers_downgrade, times)
    assert new == old
    assert sum(counts["downgraded"] for counts in new["counts"]) > 5  # the data exercised the drops


def test_preview_matches_the_in_memory_evaluation(tiers):
    _varied_members(tiers, seed=7)
    gold = tiers["Gold"]
    rule = EarningRule.objects.get(currency="USD")
    proposals = []
    for threshold, multiplier in [("100", "1.5"), ("1000", "3"), ("2000", "1.5"), ("0", "1")]:
        gold.threshold, gold.multiplier = Decimal(threshold), Decimal(multiplier)
        proposals.append({"tier": Tier(pk=gold.pk, name="Gold", threshold=gold.threshold, multiplier=gold.multiplier)})
    proposals.append({"tier": Tier.objects.get(pk=tiers["Silver"].pk), "delete_tier": True})
    rule.points_per_unit = Decimal("0.75")
    proposals.append({"rule": rule})
    proposals.append({"rule": EarningRule(currency="EUR", points_per_unit=Decimal("2"))})
    for proposal in proposals:
        new, old = change_preview(**proposal), reference_change_preview(**proposal)
        new.pop("as_of"), old.pop("as_of")
        assert new == old, proposal
    assert any(change_preview(**p)["moving_down"] for p in proposals[:4])


def test_preview_of_a_new_tier_counts_members_without_a_tier(tiers):
    """Where the in-memory preview was wrong: a member without a tier who would qualify for a new
    (unsaved) tier moved nowhere, and members left without a tier were given its multiplier."""
    Tier.objects.exclude(name="Platinum").delete()
    none_yet, small = members_with([300, 10])
    preview = change_preview(tier=Tier(name="Silver", threshold=Decimal("100"), multiplier=Decimal("2")))
    assert (preview["moving_up"], preview["moving_down"]) == (1, 0)
    assert preview["yearly_points_before"] == 310
    assert preview["yearly_points_after"] == 300 * 2 + 10
    assert none_yet and small


# --- queries do not grow with the members ---------------------------------------------------------


def _queries(run):
    with CaptureQueriesContext(connection) as queries:
        run()
    return len(queries)


def test_downgrade_and_preview_queries_do_not_grow_with_members(tiers):
    program_get()
    few = members_with([0, 150, 600])
    for account in few:
        set_state(account, tiers["Gold"], due=timezone.now() - dt.timedelta(days=1))
    counts = [_queries(tiers_downgrade), _queries(lambda: change_preview(tier=tiers["Gold"]))]
    many = members_with([0, 150, 600] * 15)
    for account in many:
        set_state(account, tiers["Platinum"], due=timezone.now() - dt.timedelta(days=1))
    assert [_queries(tiers_downgrade), _queries(lambda: change_preview(tier=tiers["Gold"]))] == counts
    assert LoyaltyAccount.objects.filter(tier__name="Gold").count() >= 45  # the many dropped a tier
