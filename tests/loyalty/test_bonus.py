"""Bonus points for actions: the first paid order (from the order feed, set-based, once ever), the
birthday (a daily task, set-based, shop time zone, 29 February, once per year) and a submitted survey
(feedback's response_submitted signal), each within its rule's limits."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from customers.models import Order
from customers.services.orders import order_bulk_upsert
from loyalty import tasks
from loyalty.models import BonusRule, LedgerEntry, LoyaltyAccount, PointLot
from loyalty.services.bonus import (
    FIRST_ORDER_KEY,
    birthday_bonuses_award,
    birthday_month_days,
    bonus_award,
    first_order_bonuses_award,
)
from loyalty.services.expiry import ledger_balance_check
from loyalty.services.program import program_get
from tests.factories import CustomerFactory
from tests.loyalty.helpers import earn_spendable, usd_rule

pytestmark = pytest.mark.django_db


def _bonuses(action):
    return LedgerEntry.objects.filter(idempotency_key__startswith=f"bonus:{action}:")


def _paid(customer, external_id, *, days_ago=1, status="paid", amount="10.00"):
    return {
        "external_id": external_id, "customer": customer.pk, "currency": "USD", "status": status,
        "ordered_at": timezone.now() - dt.timedelta(days=days_ago), "amount": Decimal(amount),
    }


def _order_ids(*external_ids):
    return list(Order.objects.filter(external_id__in=external_ids).values_list("pk", flat=True))


# --- First order ----------------------------------------------------------------------------------


def test_first_order_bonus_once_per_customer_whatever_the_batch_holds():
    BonusRule.objects.create(action="first_order", points=50)
    one, two = CustomerFactory(), CustomerFactory()
    order_bulk_upsert(items=[_paid(one, "A1", days_ago=3), _paid(one, "A2"), _paid(two, "B1")])
    assert first_order_bonuses_award(order_ids=_order_ids("A1", "A2", "B1")) == 2
    assert first_order_bonuses_award(order_ids=_order_ids("A1", "A2", "B1")) == 0  # a repeat: nothing
    entries = _bonuses("first_order")
    assert sorted(entries.values_list("account__customer_id", flat=True)) == sorted([one.pk, two.pk])
    entry = entries.get(account__customer=one)
    assert (entry.kind, entry.points, entry.source, entry.order_id, entry.idempotency_key) == (
        "earn", 50, "order", None, FIRST_ORDER_KEY,
    )
    assert entry.balance_after == 50 and LoyaltyAccount.objects.get(customer=one).balance == 50
    assert PointLot.objects.get(entry=entry).remaining == 50
    assert ledger_balance_check().mismatches == []


def test_no_first_order_bonus_after_an_earlier_paid_order_or_without_a_rule():
    regular, newcomer = CustomerFactory(), CustomerFactory()
    order_bulk_upsert(items=[_paid(regular, "OLD", days_ago=90, status="refunded"), _paid(newcomer, "N0", days_ago=9, status="cancelled")])
    order_bulk_upsert(items=[_paid(regular, "NEW"), _paid(newcomer, "N1")])
    assert first_order_bonuses_award(order_ids=_order_ids("NEW", "N1")) == 0  # no rule yet
    BonusRule.objects.create(action="first_order", points=50, active=False)
    assert first_order_bonuses_award(order_ids=_order_ids("NEW", "N1")) == 0  # inactive rule
    BonusRule.objects.filter(action="first_order").update(active=True)
    # The regular's earlier (since refunded) order was paid; the newcomer's cancelled one may never have been.
    assert first_order_bonuses_award(order_ids=_order_ids("NEW", "N1")) == 1
    assert _bonuses("first_order").get().account.customer_id == newcomer.pk


def test_first_order_bonus_repays_debt_first():
    BonusRule.objects.create(action="first_order", points=50)
    customer = CustomerFactory()
    account = LoyaltyAccount.objects.create(customer=customer, debt=20)
    order_bulk_upsert(items=[_paid(customer, "D1")])
    first_order_bonuses_award(order_ids=_order_ids("D1"))
    account.refresh_from_db()
    assert (account.balance, account.debt) == (30, 0)
    entry = _bonuses("first_order").get()
    assert entry.balance_after == 30 and PointLot.objects.get(entry=entry).remaining == 30


def test_first_order_bonus_keeps_the_limits(settings):
    BonusRule.objects.create(action="first_order", points=5, limit_lifetime=1)
    customer = CustomerFactory()
    # Another first-order award under a different key (say, by hand) used the lifetime limit.
    bonus_award(customer_id=customer.pk, action="first_order", key="manual")
    order_bulk_upsert(items=[_paid(customer, "L1")])
    assert first_order_bonuses_award(order_ids=_order_ids("L1")) == 0
    assert _bonuses("first_order").count() == 1


def test_first_order_bonus_queries_do_not_grow_with_orders():
    BonusRule.objects.create(action="first_order", points=5)
    program_get()  # created on first use: not part of what is counted

    def award(count, prefix):
        customers = [CustomerFactory() for _ in range(count)]
        order_bulk_upsert(items=[_paid(c, f"{prefix}{i}") for i, c in enumerate(customers)])
        with CaptureQueriesContext(connection) as queries:
            assert first_order_bonuses_award(order_ids=_order_ids(*[f"{prefix}{i}" for i in range(count)])) == count
        return len(queries)

    assert award(2, "S") == award(40, "M")


@pytest.mark.django_db(transaction=True)
def test_feed_awards_the_first_order_bonus_once_even_after_a_refund():
    from tests.loyalty.test_feed import consume

    usd_rule("1")
    BonusRule.objects.create(action="first_order", points=50)
    customer = CustomerFactory()
    order_bulk_upsert(items=[_paid(customer, "F1", amount="20.00")])
    consume(1)
    assert LoyaltyAccount.objects.get(customer=customer).balance == 70  # 20 earned + 50 bonus
    order_bulk_upsert(items=[_paid(customer, "F1", amount="20.00", status="refunded")])
    consume(1)
    order_bulk_upsert(items=[_paid(customer, "F2", amount="30.00")])
    consume(1)
    assert _bonuses("first_order").count() == 1
    assert LoyaltyAccount.objects.get(customer=customer).balance == 80  # the refund took back 20 only
    assert ledger_balance_check().mismatches == []


# --- Birthday -------------------------------------------------------------------------------------


def _member(birth_date, **kwargs):
    customer = CustomerFactory(birth_date=birth_date, **kwargs)
    LoyaltyAccount.objects.create(customer=customer)
    return customer


def _noon_utc(day):
    return dt.datetime(day.year, day.month, day.day, 12, tzinfo=dt.UTC)


def test_birthday_bonus_for_enrolled_members_born_today_in_the_shop_time_zone(settings):
    settings.TIME_ZONE = "Pacific/Auckland"  # UTC+13 in March: 12:00 UTC on the 4th is the 5th there
    BonusRule.objects.create(action="birthday", points=100)
    today = _member(dt.date(1990, 3, 5))
    _member(dt.date(1990, 3, 4))  # yesterday in the shop's zone
    CustomerFactory(birth_date=dt.date(1985, 3, 5))  # not a member: not enrolled by a birthday
    _member(None)
    assert birthday_bonuses_award(now=_noon_utc(dt.date(2026, 3, 4))) == 1
    entry = _bonuses("birthday").get()
    assert entry.account.customer_id == today.pk and entry.idempotency_key == "bonus:birthday:2026"
    assert entry.points == 100 and entry.source == "campaign"
    assert LoyaltyAccount.objects.count() == 3


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (dt.date(2027, 2, 28), [(2, 28), (2, 29)]),  # no 29th this year: celebrated on the 28th
        (dt.date(2028, 2, 28), [(2, 28)]),
        (dt.date(2028, 2, 29), [(2, 29)]),
        (dt.date(2027, 3, 1), [(3, 1)]),
    ],
)
def test_birthday_month_days_handle_29_february(day, expected):
    assert birthday_month_days(day) == expected


def test_leap_day_members_get_their_bonus_once_a_year():
    BonusRule.objects.create(action="birthday", points=10)
    leap = _member(dt.date(2000, 2, 29))
    _member(dt.date(2001, 3, 1))
    assert birthday_bonuses_award(now=_noon_utc(dt.date(2027, 2, 28))) == 1
    assert birthday_bonuses_award(now=_noon_utc(dt.date(2028, 2, 28))) == 0
    assert birthday_bonuses_award(now=_noon_utc(dt.date(2028, 2, 29))) == 1
    assert sorted(_bonuses("birthday").filter(account__customer=leap).values_list("idempotency_key", flat=True)) == [
        "bonus:birthday:2027", "bonus:birthday:2028",
    ]


def test_birthday_task_twice_awards_once_and_again_next_year(monkeypatch):
    BonusRule.objects.create(action="birthday", points=10)
    customer = _member(dt.date(1970, 6, 1))
    earn_spendable(customer, 5)
    now = _noon_utc(dt.date(2026, 6, 1))
    monkeypatch.setattr(timezone, "now", lambda: now)
    assert tasks.loyalty_birthday_bonuses.apply().get() == 1
    assert tasks.loyalty_birthday_bonuses.apply().get() == 0  # a retried or re-delivered task
    assert LoyaltyAccount.objects.get(customer=customer).balance == 15
    now = _noon_utc(dt.date(2027, 6, 1))
    assert tasks.loyalty_birthday_bonuses.apply().get() == 1
    assert _bonuses("birthday").count() == 2
    assert ledger_balance_check().mismatches == []


def test_birthday_bonus_keeps_the_lifetime_limit():
    BonusRule.objects.create(action="birthday", points=10, limit_lifetime=2)
    customer = _member(dt.date(1970, 6, 1))
    other = _member(dt.date(1971, 6, 1))
    bonus_award(customer_id=other.pk, action="birthday", key="by-hand")  # counts towards `other`'s limit
    assert birthday_bonuses_award(now=_noon_utc(dt.date(2030, 6, 1))) == 2
    assert birthday_bonuses_award(now=_noon_utc(dt.date(2031, 6, 1))) == 1  # `other` has had two
    assert birthday_bonuses_award(now=_noon_utc(dt.date(2032, 6, 1))) == 0
    assert _bonuses("birthday").filter(account__customer=customer).count() == 2
    assert _bonuses("birthday").filter(account__customer=other).count() == 2


def test_birthday_bonus_keeps_the_daily_limit():
    rule = BonusRule.objects.create(action="birthday", points=10, limit_per_day=1)
    now = timezone.now()
    today = timezone.localdate(now)
    customer = _member(dt.date(2000, today.month, today.day))  # 2000 was a leap year: any day exists
    bonus_award(customer_id=customer.pk, action="birthday", key="by-hand")  # today's one
    assert birthday_bonuses_award(now=now) == 0
    rule.limit_per_day = None
    rule.save()
    assert birthday_bonuses_award(now=now) == 1


def test_birthday_queries_do_not_grow_with_members():
    BonusRule.objects.create(action="birthday", points=10)
    program_get()

    def award(count, year):
        for _ in range(count):
            _member(dt.date(1980, 7, 7))
        with CaptureQueriesContext(connection) as queries:
            birthday_bonuses_award(now=_noon_utc(dt.date(year, 7, 7)))
        return len(queries)

    assert award(2, 2026) == award(40, 2027)


# --- Survey answered ------------------------------------------------------------------------------


def test_a_submitted_survey_response_earns_the_survey_bonus_once(django_capture_on_commit_callbacks):
    from feedback.services.responses import response_save
    from tests.feedback.factories import invited, open_survey

    BonusRule.objects.create(action="survey", points=15, limit_per_day=1)
    survey = open_survey()
    nps = survey.questions.get(position=0)
    first = invited(survey)
    with django_capture_on_commit_callbacks(execute=True):
        response = response_save(token=first.token, answers={nps.pk: 9}, submit=True)
    entry = _bonuses("survey").get()
    assert entry.account.customer_id == first.customer_id and entry.points == 15 and entry.source == "survey"
    assert entry.idempotency_key == f"bonus:survey:response:{response.pk}"
    assert tasks.loyalty_survey_bonus.apply(args=[response.pk]).get() is True  # a retry: still one
    assert _bonuses("survey").count() == 1
    # Another member who had a survey bonus today already: over the daily limit, quietly not awarded.
    second = invited(survey)
    bonus_award(customer_id=second.customer_id, action="survey", key="earlier")
    with django_capture_on_commit_callbacks(execute=True):
        response_save(token=second.token, answers={nps.pk: 3}, submit=True)
    assert _bonuses("survey").filter(account__customer_id=second.customer_id).count() == 1


def test_a_started_response_earns_nothing():
    from feedback.services.responses import response_save
    from tests.feedback.factories import invited, open_survey

    BonusRule.objects.create(action="survey", points=15)
    survey = open_survey()
    response = response_save(token=invited(survey).token, answers={survey.questions.get(position=0).pk: 9}, submit=False)
    assert tasks.loyalty_survey_bonus.apply(args=[response.pk]).get() is False
    assert not _bonuses("survey").exists()
