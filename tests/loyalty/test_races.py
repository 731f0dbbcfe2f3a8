"""The ledger under real concurrency on PostgreSQL: threads on their own connections race to spend
the same balance, to earn for the same order and to take the same reward's last items.

PostgreSQL here allows 100 connections shared by every session on the machine, so the 100
redemptions are raced by 25 threads doing 4 each, all released at one barrier."""

import pytest
from django.db.models import Sum

from core.exceptions import DomainError
from loyalty.models import LedgerEntry, LoyaltyAccount, Reward, Voucher
from loyalty.services.earning import orders_earn
from loyalty.services.expiry import ledger_balance_check
from loyalty.services.ledger import InsufficientPoints, points_earn, points_redeem
from tests.factories import CustomerFactory, OrderFactory
from tests.loyalty.helpers import earn_spendable, usd_rule
from tests.races import race

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS, EACH = 25, 4


def test_100_concurrent_redemptions_of_10_from_500():
    customer = CustomerFactory()
    earn_spendable(customer, 500)

    def redeem_four(thread: int):
        outcomes = []
        for n in range(EACH):
            try:
                points_redeem(customer_id=customer.pk, points=10, idempotency_key=f"t{thread}-{n}")
                outcomes.append("ok")
            except InsufficientPoints:
                outcomes.append("short")
        return outcomes

    results, errors = race(*[lambda t=t: redeem_four(t) for t in range(THREADS)])
    assert errors == []
    outcomes = [o for thread in results for o in thread]
    assert len(outcomes) == 100
    assert outcomes.count("ok") == 50
    account = LoyaltyAccount.objects.get(customer=customer)
    assert account.balance == 0
    assert LedgerEntry.objects.filter(account=account).aggregate(s=Sum("points"))["s"] == account.balance
    assert not ledger_balance_check().mismatches


def test_the_same_redemption_sent_ten_times_at_once_spends_once():
    # The key check and the lots are read after the account's lock, in a statement of their own:
    # the requests that waited for the lock see the first one's entry and replay it.
    customer = CustomerFactory()
    earn_spendable(customer, 100)
    results, errors = race(
        *[lambda: points_redeem(customer_id=customer.pk, points=30, idempotency_key="till:1")] * 10
    )
    assert errors == []
    assert sum(r.created for r in results) == 1
    assert len({r.entry.pk for r in results}) == 1 and results[0].entry.points == -30
    assert LoyaltyAccount.objects.get(customer=customer).balance == 70
    assert not ledger_balance_check().mismatches


def test_duplicated_earn_request_creates_one_entry():
    customer = CustomerFactory()
    results, errors = race(
        *[lambda: points_earn(customer_id=customer.pk, points=40, idempotency_key="survey:7", source="survey")] * 10
    )
    assert errors == []
    assert sum(r.created for r in results) == 1
    assert LedgerEntry.objects.filter(idempotency_key="survey:7").count() == 1
    assert LoyaltyAccount.objects.get(customer=customer).balance == 40


def test_the_same_orders_earned_by_two_writers_at_once_earn_once():
    usd_rule("1")
    customer = CustomerFactory()
    orders = [OrderFactory(customer=customer) for _ in range(20)]
    ids = [o.pk for o in orders]
    _results, errors = race(lambda: orders_earn(order_ids=ids), lambda: orders_earn(order_ids=ids[::-1]))
    assert errors == []
    assert LedgerEntry.objects.filter(kind="earn").count() == 20
    assert not ledger_balance_check().mismatches


def test_reward_stock_never_below_zero():
    from loyalty.services.rewards import reward_redeem

    reward = Reward.objects.create(name="Mug", cost=10, stock=3)
    customers = [CustomerFactory() for _ in range(10)]
    for customer in customers:
        earn_spendable(customer, 10)

    def claim(customer):
        try:
            return reward_redeem(customer_id=customer.pk, reward_id=reward.pk, idempotency_key="claim")[0]
        except DomainError:
            return None

    results, errors = race(*[lambda c=c: claim(c) for c in customers])
    assert errors == []
    assert sum(r is not None for r in results) == 3
    reward.refresh_from_db()
    assert reward.stock == 0
    assert Voucher.objects.count() == 3
    assert LedgerEntry.objects.filter(kind="redeem").count() == 3
    assert not ledger_balance_check().mismatches
