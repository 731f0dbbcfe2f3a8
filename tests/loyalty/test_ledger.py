"""The ledger service: lots, spending soonest-expiring first, pending holds, idempotency, debt."""

import datetime as dt

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.exceptions import DomainError
from loyalty.models import LedgerEntry, LotAllocation, LoyaltyAccount, LoyaltyProgram, PointLot
from loyalty.services.expiry import ledger_balance_check, lots_expire
from loyalty.services.ledger import InsufficientPoints, KeyReused, points_adjust, points_earn, points_redeem
from loyalty.services.program import lot_expiry
from tests.factories import CustomerFactory
from tests.loyalty.helpers import earn_spendable, program_set

pytestmark = pytest.mark.django_db


def _account(customer):
    return LoyaltyAccount.objects.get(customer=customer)


def test_earn_creates_account_entry_and_pending_lot():
    customer = CustomerFactory()
    result = points_earn(customer_id=customer.pk, points=120, idempotency_key="k1", source=LedgerEntry.Source.CAMPAIGN)
    account = _account(customer)
    assert account.balance == 120
    assert result.entry.balance_after == 120
    lot = result.entry.lot
    assert lot.remaining == 120
    assert lot.available_at > timezone.now() + dt.timedelta(days=13)  # default 14-day hold
    # Pending points cannot be spent yet.
    with pytest.raises(InsufficientPoints) as caught:
        points_redeem(customer_id=customer.pk, points=10, idempotency_key="r1")
    assert caught.value.available == 0


def test_same_earn_key_twice_writes_one_entry():
    customer = CustomerFactory()
    first = points_earn(customer_id=customer.pk, points=50, idempotency_key="dup", source=LedgerEntry.Source.SURVEY)
    second = points_earn(customer_id=customer.pk, points=50, idempotency_key="dup", source=LedgerEntry.Source.SURVEY)
    assert second.created is False and second.entry.pk == first.entry.pk
    assert LedgerEntry.objects.count() == 1
    assert _account(customer).balance == 50


def test_redeem_draws_from_soonest_expiring_lots_and_records_them():
    customer = CustomerFactory()
    late = earn_spendable(customer, 100, "late", expires_in_days=300)
    soon = earn_spendable(customer, 30, "soon", expires_in_days=10)
    never = earn_spendable(customer, 50, "never")
    PointLot.objects.filter(entry=never).update(expires_at=None)
    result = points_redeem(customer_id=customer.pk, points=60, idempotency_key="r")
    allocations = {a.lot.entry_id: a.points for a in LotAllocation.objects.filter(entry=result.entry)}
    assert allocations == {soon.pk: 30, late.pk: 30}
    assert PointLot.objects.get(entry=late).remaining == 70
    assert _account(customer).balance == 120
    assert result.entry.points == -60 and result.entry.balance_after == 120


def test_expiry_takes_only_what_is_left_of_a_lot():
    customer = CustomerFactory()
    lot_entry = earn_spendable(customer, 100, "a", expires_in_days=5)
    earn_spendable(customer, 40, "b", expires_in_days=400)
    points_redeem(customer_id=customer.pk, points=70, idempotency_key="r")
    counts = lots_expire(now=timezone.now() + dt.timedelta(days=6))
    assert counts == {"accounts": 1, "lots": 1, "points": 30}
    assert PointLot.objects.get(entry=lot_entry).remaining == 0
    account = _account(customer)
    assert account.balance == 40
    expire = LedgerEntry.objects.get(kind="expire")
    assert expire.points == -30 and expire.balance_after == 40
    # A second run (a retried task) expires nothing more.
    assert lots_expire(now=timezone.now() + dt.timedelta(days=6, seconds=1))["accounts"] == 0
    assert not ledger_balance_check().mismatches


def test_redeem_short_writes_nothing_and_same_key_returns_first_result():
    customer = CustomerFactory()
    earn_spendable(customer, 25)
    with pytest.raises(InsufficientPoints):
        points_redeem(customer_id=customer.pk, points=30, idempotency_key="x")
    assert LedgerEntry.objects.filter(kind="redeem").count() == 0
    first = points_redeem(customer_id=customer.pk, points=20, idempotency_key="y")
    again = points_redeem(customer_id=customer.pk, points=20, idempotency_key="y")
    assert again.created is False and again.entry.pk == first.entry.pk
    assert _account(customer).balance == 5
    with pytest.raises(KeyReused):
        points_adjust(customer_id=customer.pk, points=5, reason="oops", idempotency_key="y", staff=None)


def test_adjust_needs_reason_and_never_goes_negative():
    customer = CustomerFactory()
    with pytest.raises(DomainError):
        points_adjust(customer_id=customer.pk, points=10, reason=" ", idempotency_key="a", staff=None)
    points_adjust(customer_id=customer.pk, points=10, reason="goodwill", idempotency_key="a", staff=None)
    assert _account(customer).balance == 10  # an adjustment is spendable at once
    with pytest.raises(InsufficientPoints):
        points_adjust(customer_id=customer.pk, points=-11, reason="too much", idempotency_key="b", staff=None)
    points_adjust(customer_id=customer.pk, points=-10, reason="fix", idempotency_key="c", staff=None)
    assert _account(customer).balance == 0


def test_database_refuses_negative_balance():
    customer = CustomerFactory()
    earn_spendable(customer, 5)
    with pytest.raises(IntegrityError), transaction.atomic():
        LoyaltyAccount.objects.filter(customer=customer).update(balance=-1)


def test_balance_check_reports_a_difference():
    customer = CustomerFactory()
    earn_spendable(customer, 5)
    LoyaltyAccount.objects.filter(customer=customer).update(balance=7)
    check = ledger_balance_check()
    assert check.accounts_checked == 1
    assert check.mismatches == [
        {"account": _account(customer).pk, "balance": 7, "debt": 0, "ledger_sum": 5, "lots_sum": 5}
    ]


@pytest.mark.parametrize(
    ("months", "rounding", "expected"),
    [
        (None, "none", None),
        (12, "none", dt.datetime(2027, 1, 31, 10, tzinfo=dt.UTC)),
        (1, "none", dt.datetime(2026, 2, 28, 10, tzinfo=dt.UTC)),
        (1, "month", dt.datetime(2026, 3, 1, tzinfo=dt.UTC)),
        (1, "quarter", dt.datetime(2026, 4, 1, tzinfo=dt.UTC)),
        (3, "quarter", dt.datetime(2026, 7, 1, tzinfo=dt.UTC)),
        (1, "year", dt.datetime(2027, 1, 1, tzinfo=dt.UTC)),
    ],
)
def test_lot_expiry_settings(months, rounding, expected):
    program = LoyaltyProgram(expiry_months=months, expiry_rounding=rounding)
    assert lot_expiry(program=program, earned_at=dt.datetime(2026, 1, 31, 10, tzinfo=dt.UTC)) == expected


def test_debt_policy_future_earnings_repay():
    customer = CustomerFactory()
    program_set(refund_policy="debt")
    from loyalty.services.ledger import Shortfall, ledger_post

    account = LoyaltyAccount.objects.create(customer=customer)
    ledger_post(account_id=account.pk, kind="reverse", points=-30, idempotency_key="rev", source="order",
                shortfall=Shortfall.DEBT)
    account.refresh_from_db()
    assert (account.balance, account.debt) == (0, 30)
    earn_spendable(customer, 50, "later")
    account.refresh_from_db()
    assert (account.balance, account.debt) == (20, 0)
    assert PointLot.objects.get(entry__idempotency_key="later").remaining == 20
    assert not ledger_balance_check().mismatches


def test_bonus_limits_per_day_and_lifetime():
    from loyalty.models import BonusRule
    from loyalty.services.bonus import BonusLimitReached, bonus_award

    customer = CustomerFactory()
    assert bonus_award(customer_id=customer.pk, action="survey", key="s0") is None  # no rule: nothing
    BonusRule.objects.create(action="survey", points=20, limit_per_day=2, limit_lifetime=3)
    bonus_award(customer_id=customer.pk, action="survey", key="s1")
    bonus_award(customer_id=customer.pk, action="survey", key="s2")
    assert bonus_award(customer_id=customer.pk, action="survey", key="s2").created is False  # same key: once
    with pytest.raises(BonusLimitReached):
        bonus_award(customer_id=customer.pk, action="survey", key="s3")
    assert _account(customer).balance == 40
    LedgerEntry.objects.filter(idempotency_key__startswith="bonus:").update(created_at=timezone.now() - dt.timedelta(days=2))
    bonus_award(customer_id=customer.pk, action="survey", key="s4")
    with pytest.raises(BonusLimitReached):  # the lifetime limit of 3
        bonus_award(customer_id=customer.pk, action="survey", key="s5")
    assert not ledger_balance_check().mismatches
