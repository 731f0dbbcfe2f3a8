"""Set-based earning for paid orders, refunds' reversal at the earned rate, tier upgrades."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from customers.models import Order
from loyalty.models import LedgerEntry, LoyaltyAccount, PointLot, Tier, TierChange
from loyalty.services.earning import orders_earn
from loyalty.services.expiry import ledger_balance_check
from loyalty.services.ledger import points_redeem
from loyalty.services.refunds import order_refund_reverse
from tests.factories import CustomerFactory, OrderFactory
from tests.loyalty.helpers import earn_spendable, program_set, usd_rule

pytestmark = pytest.mark.django_db


def test_orders_earn_set_based_once_per_order(django_assert_max_num_queries):
    usd_rule("2")
    customer = CustomerFactory()
    orders = [OrderFactory(customer=customer, amount=Decimal("10.50")) for _ in range(3)]
    other = OrderFactory(amount=Decimal("3.20"))
    cancelled = OrderFactory(customer=customer, status=Order.Status.CANCELLED)
    eur = OrderFactory(customer=customer, currency="EUR")  # no rule for EUR: earns nothing
    ids = [o.pk for o in [*orders, other, cancelled, eur]]
    with django_assert_max_num_queries(14):  # the same handful of statements for any number of orders
        assert orders_earn(order_ids=ids) == 4
    account = LoyaltyAccount.objects.get(customer=customer)
    assert account.balance == 63  # floor(10.50 * 2) each
    assert LoyaltyAccount.objects.get(customer=other.customer).balance == 6
    entries = list(LedgerEntry.objects.filter(account=account).order_by("id"))
    assert [e.balance_after for e in entries] == [21, 42, 63]
    assert entries[0].rate == Decimal("2") and entries[0].base_amount == Decimal("10.50")
    assert PointLot.objects.filter(account=account, remaining=21).count() == 3
    assert orders_earn(order_ids=ids) == 0  # a repeat writes nothing
    assert LedgerEntry.objects.count() == 4
    assert not ledger_balance_check().mismatches


def test_an_order_earns_once_by_the_database_not_by_a_key():
    """An order's earn has no idempotency key: the unique index of earns by order is the guard,
    whatever writes the second entry; other entries of the order (reversals) and keyed earns are
    not limited by it, and keys stay unique per account."""
    usd_rule("1")
    order = OrderFactory(amount=Decimal("40"))
    orders_earn(order_ids=[order.pk])
    earn = LedgerEntry.objects.get(order=order, kind="earn")
    assert earn.idempotency_key is None
    fields = {"account_id": earn.account_id, "points": 1, "balance_after": 41, "source": "order", "created_at": timezone.now()}
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.create(kind="earn", order=order, **fields)
    LedgerEntry.objects.create(kind="earn", order=None, idempotency_key="survey:1", **fields)
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.create(kind="earn", order=None, idempotency_key="survey:1", **fields)
    order_refund_reverse(order_id=order.pk, refund_key="r1", refunded_amount=Decimal("10"))
    order_refund_reverse(order_id=order.pk, refund_key="r2", refunded_amount=Decimal("10"))
    assert LedgerEntry.objects.filter(order=order, kind="reverse").count() == 2


def test_earning_repays_debt_first():
    usd_rule("1")
    customer = CustomerFactory()
    account = LoyaltyAccount.objects.create(customer=customer, debt=15)
    LedgerEntry.objects.create(account=account, kind="reverse", points=-15, balance_after=-15, source="order",
                               idempotency_key="old-debt", created_at=timezone.now())
    order = OrderFactory(customer=customer, amount=Decimal("10"))
    order2 = OrderFactory(customer=customer, amount=Decimal("10"))
    orders_earn(order_ids=[order.pk, order2.pk])
    account.refresh_from_db()
    assert (account.balance, account.debt) == (5, 0)
    assert sorted(PointLot.objects.filter(account=account).values_list("remaining", flat=True)) == [0, 5]
    assert not ledger_balance_check().mismatches


def test_partial_then_full_refund_reverse_at_the_earned_rate():
    rule = usd_rule("1")
    order = OrderFactory(amount=Decimal("100.00"))
    orders_earn(order_ids=[order.pk])
    rule.delete()  # today's rule must not matter
    entries = order_refund_reverse(order_id=order.pk, refund_key="r1", refunded_amount=Decimal("25.00"))
    assert [e.points for e in entries] == [-25]
    assert order_refund_reverse(order_id=order.pk, refund_key="r1", refunded_amount=Decimal("25.00")) == []
    entries = order_refund_reverse(order_id=order.pk, refund_key="r2")
    assert [e.points for e in entries] == [-75]
    assert order_refund_reverse(order_id=order.pk, refund_key="r3") == []  # nothing left to reverse
    account = LoyaltyAccount.objects.get(customer=order.customer)
    assert account.balance == 0
    assert not ledger_balance_check().mismatches


@pytest.mark.parametrize(("policy", "balance", "debt", "unrecovered"), [("floor", 0, 0, 60), ("debt", 0, 60, 0)])
def test_refund_of_spent_points_follows_the_policy(policy, balance, debt, unrecovered):
    usd_rule("1")
    program_set(refund_policy=policy, pending_days=0)
    order = OrderFactory(amount=Decimal("100.00"))
    orders_earn(order_ids=[order.pk])
    points_redeem(customer_id=order.customer_id, points=60, idempotency_key="spend")
    (entry,) = order_refund_reverse(order_id=order.pk, refund_key="full")
    account = LoyaltyAccount.objects.get(customer=order.customer)
    assert (account.balance, account.debt) == (balance, debt)
    assert entry.unrecovered == unrecovered
    assert -entry.points + entry.unrecovered == 100  # nothing lost: taken, owed or written off on record
    assert not ledger_balance_check().mismatches


def test_full_refund_of_an_order_paid_with_points_gives_them_back():
    customer = CustomerFactory()
    lot_entry = earn_spendable(customer, 80, expires_in_days=100)
    order = OrderFactory(customer=customer, amount=Decimal("30"))
    points_redeem(customer_id=customer.pk, points=50, idempotency_key="pay", order_id=order.pk)
    (back,) = order_refund_reverse(order_id=order.pk, refund_key="refund-1")
    assert back.points == 50
    assert PointLot.objects.get(entry=lot_entry).remaining == 80  # refilled into the lot it came from
    assert LoyaltyAccount.objects.get(customer=customer).balance == 80
    assert order_refund_reverse(order_id=order.pk, refund_key="refund-2") == []
    assert not ledger_balance_check().mismatches


def test_earning_upgrades_tier_at_once_and_records_it():
    usd_rule("1")
    silver = Tier.objects.create(name="Silver", threshold=Decimal("100"), multiplier=Decimal("1.5"))
    Tier.objects.create(name="Gold", threshold=Decimal("1000"))
    customer = CustomerFactory()
    first = OrderFactory(customer=customer, amount=Decimal("120"))
    orders_earn(order_ids=[first.pk])
    account = LoyaltyAccount.objects.get(customer=customer)
    assert account.tier == silver
    assert TierChange.objects.get(account=account).reason == "upgrade"
    second = OrderFactory(customer=customer, amount=Decimal("10"))
    orders_earn(order_ids=[second.pk])
    assert LedgerEntry.objects.get(order=second).points == 15  # the Silver multiplier
    assert LedgerEntry.objects.get(order=second).rate == Decimal("1.5")


def test_tier_downgrade_after_grace_one_tier_at_a_time():
    from loyalty.services.tiers import tier_set_manual, tiers_downgrade

    usd_rule("1")
    Tier.objects.create(name="Bronze", threshold=Decimal("0"))
    silver = Tier.objects.create(name="Silver", threshold=Decimal("100"))
    gold = Tier.objects.create(name="Gold", threshold=Decimal("1000"))
    program_set(downgrade_grace_days=30)
    customer = CustomerFactory()
    orders_earn(order_ids=[OrderFactory(customer=customer, amount=Decimal("10")).pk])
    account = LoyaltyAccount.objects.get(customer=customer)
    LoyaltyAccount.objects.filter(pk=account.pk).update(tier=gold)
    now = timezone.now()
    assert tiers_downgrade(now=now)["scheduled"] == 1
    assert tiers_downgrade(now=now + dt.timedelta(days=29))["downgraded"] == 0
    assert tiers_downgrade(now=now + dt.timedelta(days=31))["downgraded"] == 1
    account.refresh_from_db()
    assert account.tier == silver  # one tier, not straight to Bronze
    assert account.downgrade_due_at is not None  # still below: another grace period
    assert tiers_downgrade(now=now + dt.timedelta(days=31))["downgraded"] == 0  # a retry does nothing more
    tier_set_manual(customer_id=customer.pk, tier=gold, held_until=(now + dt.timedelta(days=90)).date(), staff=None)
    # Held: the nightly run leaves the member alone until the hold ends.
    assert tiers_downgrade(now=now + dt.timedelta(days=40)) == {"scheduled": 0, "downgraded": 0, "cleared": 0}
    account.refresh_from_db()
    assert account.tier == gold
    reasons = list(TierChange.objects.order_by("id").values_list("reason", flat=True))
    assert reasons == ["upgrade", "downgrade", "manual"]  # Bronze on the first order, then the rest


def test_preview_of_a_tier_and_a_rule_change_writes_nothing():
    from loyalty.services.preview import change_preview

    usd_rule("1")
    silver = Tier.objects.create(name="Silver", threshold=Decimal("100"), multiplier=Decimal("1"))
    small, big = CustomerFactory(), CustomerFactory()
    orders_earn(order_ids=[OrderFactory(customer=small, amount=Decimal("50")).pk,
                           OrderFactory(customer=big, amount=Decimal("150")).pk])
    # Lower Silver's threshold to 40 and double its multiplier: the small spender moves up.
    silver.threshold, silver.multiplier = Decimal("40"), Decimal("2")
    preview = change_preview(tier=silver)
    assert (preview["moving_up"], preview["moving_down"]) == (1, 0)
    assert (preview["yearly_points_before"], preview["yearly_points_after"]) == (200, 400)
    assert preview["outstanding_points"] == 200
    assert Tier.objects.get(pk=silver.pk).threshold == Decimal("100")  # nothing saved
    # Raising it above everyone moves the big spender down; halving the rate halves the yearly points.
    silver.threshold = Decimal("1000")
    assert change_preview(tier=silver)["moving_down"] == 1
    from loyalty.models import EarningRule

    rule = EarningRule.objects.get(currency="USD")
    rule.points_per_unit = Decimal("0.5")
    assert change_preview(rule=rule)["yearly_points_change"] == -100


@pytest.mark.parametrize(
    ("pick", "as_ranges"),
    [
        pytest.param(lambda ids: ids[5:60], True, id="one run"),
        pytest.param(lambda ids: ids[:3] + ids[10:20] + ids[-1:], True, id="a few runs"),
        pytest.param(lambda ids: ids[::2], False, id="scattered: more runs than ranges"),
        pytest.param(lambda ids: [ids[7]], True, id="one id"),
        pytest.param(lambda ids: [ids[9], ids[3], ids[4], ids[3], ids[8]], True, id="unsorted, repeated"),
        pytest.param(lambda ids: [], False, id="none"),
    ],
)
def test_ids_clause_matches_exactly_the_ids(pick, as_ranges):
    """Runs of consecutive ids become ranges, more runs than MAX_ID_RANGES a list: either way
    exactly the ids."""
    from django.db import connection

    from core.sql import MAX_ID_RANGES, ids_clause

    all_ids = [OrderFactory().pk for _ in range(2 * MAX_ID_RANGES + 16)]
    wanted = pick(all_ids)
    clause, params = ids_clause("o.id", wanted)
    assert ("BETWEEN" in clause) == as_ranges
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT o.id FROM customers_order o WHERE {clause}", params)
        assert sorted(row[0] for row in cursor.fetchall()) == sorted(set(wanted))


def test_orders_earn_only_the_orders_given_between_others():
    """Orders with ids between the batch's (other orders, not given) do not earn: ranges are of
    the ids given, not from their lowest to their highest."""
    usd_rule("1")
    orders = [OrderFactory(amount=Decimal("10")) for _ in range(70)]
    given = orders[::2] + orders[41:50]
    assert orders_earn(order_ids=[o.pk for o in given]) == len({o.pk for o in given})
    earned = set(LedgerEntry.objects.filter(kind="earn").values_list("order_id", flat=True))
    assert earned == {o.pk for o in given}
