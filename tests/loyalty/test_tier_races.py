"""The nightly tier downgrade (loyalty.services.tiers.tiers_downgrade) racing the earning of the
same members' orders (loyalty.services.earning.orders_earn), on PostgreSQL with real threads: both
lock the accounts in id order, and the downgrade reads the figures again under its locks, so
whatever the interleaving every member ends in the tier the rules give their final ledger, every
TierChange follows from the one before, no deadlock or serialization error escapes, and each
balance is its ledger's sum.

Four kinds of member, all starting above their figure's tier or about to move:
- back: Gold, grace over, figure 200 (Silver), an order that lifts them over Gold's 500 again;
- drop: Gold, grace over, figure 200, no order: dropped one tier to Silver (which they qualify for);
- wait: Gold, no grace period yet, figure 200, a small order that leaves them under 500: a grace
  period is scheduled, they stay Gold for now;
- up: Silver, figure 200, an order that lifts them to Gold."""

import datetime as dt
from decimal import Decimal
from functools import partial

import pytest
from django.db.models import Max
from django.utils import timezone

from customers.models import Order
from loyalty.models import LedgerEntry, LoyaltyAccount, Tier, TierChange
from loyalty.services.earning import orders_earn
from loyalty.services.expiry import ledger_balance_check
from loyalty.services.program import program_get
from loyalty.services.tiers import qualifying_values, tier_for, tiers_downgrade
from tests.factories import CustomerFactory
from tests.races import race

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

EACH = 8  # members of each kind per round
ROUNDS = 3
# kind -> (tier at the start, grace over?, amount of the new order or None)
KINDS = {"back": ("Gold", True, "400"), "drop": ("Gold", True, None), "wait": ("Gold", False, "100"),
         "up": ("Silver", False, "300")}


def _orders(customers, amount: str, days_ago: int) -> list[int]:
    orders = Order.objects.bulk_create(
        Order(external_id=f"T{c.pk}-{days_ago}", customer=c, ordered_at=timezone.now() - dt.timedelta(days=days_ago),
              amount=Decimal(amount), currency="USD", status="paid")
        for c in customers
    )
    return [o.pk for o in orders]


def _members(tiers) -> tuple[dict[str, list[int]], list[int]]:
    """The round's members by kind (account ids) in their starting state, and the new orders to earn."""
    now = timezone.now()
    by_kind, new_orders = {}, []
    for kind, (tier, grace_over, amount) in KINDS.items():
        customers = [CustomerFactory() for _ in range(EACH)]
        # An order of 200 earns 200 points (no tier yet: the rate is 1), then the kind's starting state.
        orders_earn(order_ids=_orders(customers, "200", days_ago=40))
        accounts = LoyaltyAccount.objects.filter(customer__in=customers)
        accounts.update(tier=tiers[tier], downgrade_due_at=now - dt.timedelta(days=1) if grace_over else None)
        by_kind[kind] = sorted(accounts.values_list("pk", flat=True))
        if amount:
            new_orders += _orders(customers, amount, days_ago=0)
    return by_kind, new_orders


def _check_changes_follow(account_ids, start_tier, after_id: int) -> None:
    """Each member's TierChanges of the race, oldest first, chain from the starting tier to the
    current one, one tier down at a time for a downgrade."""
    ranks = {t.pk: i for i, t in enumerate(Tier.objects.order_by("threshold"))}
    changes = {}
    for change in TierChange.objects.filter(account_id__in=account_ids, pk__gt=after_id).order_by("pk"):
        changes.setdefault(change.account_id, []).append(change)
    for account in LoyaltyAccount.objects.filter(pk__in=account_ids):
        tier_id = start_tier.pk
        for change in changes.get(account.pk, []):
            assert change.from_tier_id == tier_id, (account.pk, change)
            if change.reason == TierChange.Reason.DOWNGRADE:
                assert ranks[change.to_tier_id] == ranks[tier_id] - 1
            else:
                assert change.reason == TierChange.Reason.UPGRADE and ranks[change.to_tier_id] > ranks[tier_id]
            tier_id = change.to_tier_id
        assert account.tier_id == tier_id, account.pk


def test_the_nightly_downgrade_beside_earning_for_the_same_members(tiers):
    tier_list = list(Tier.objects.order_by("threshold"))
    for _round in range(ROUNDS):
        by_kind, new_orders = _members(tiers)
        before = TierChange.objects.aggregate(m=Max("pk"))["m"] or 0
        half = len(new_orders) // 2
        results, errors = race(
            tiers_downgrade,
            partial(orders_earn, order_ids=new_orders[:half]),
            tiers_downgrade,  # the nightly task run twice at once
            partial(orders_earn, order_ids=new_orders[half:]),
        )
        assert errors == []
        assert results[1] + results[3] == len(new_orders)  # every new order earned, once
        now = timezone.now()
        everyone = [pk for ids in by_kind.values() for pk in ids]
        figures = qualifying_values(account_ids=everyone, program=program_get(), now=now)
        accounts = {a.pk: a for a in LoyaltyAccount.objects.filter(pk__in=everyone).select_related("tier")}
        for kind, ids in by_kind.items():
            for pk in ids:
                account, figure = accounts[pk], figures[pk]
                earned = tier_for(figure, tier_list)
                # The rules: never below the tier the figure earns (upgrades are at once); above it
                # only during a grace period that has not ended.
                assert account.tier.threshold >= earned.threshold, (kind, pk, figure)
                if account.tier.pk == earned.pk:
                    assert account.downgrade_due_at is None, (kind, pk)
                else:
                    assert account.downgrade_due_at is not None and account.downgrade_due_at > now, (kind, pk)
                expected = {"back": "Gold", "drop": "Silver", "wait": "Gold", "up": "Gold"}[kind]
                assert account.tier.name == expected, (kind, pk, figure)
            start = tiers[KINDS[kind][0]]
            _check_changes_follow(ids, start, before)
        assert not ledger_balance_check().mismatches
    assert LedgerEntry.objects.filter(kind="earn").values("order_id").distinct().count() == (
        LedgerEntry.objects.filter(kind="earn").count()
    )
