"""The daily tasks run twice (a retried or re-delivered task) do their work once."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from customers.services.orders import order_bulk_upsert
from loyalty import tasks
from loyalty.models import BalanceCheck, LedgerEntry, LoyaltyAccount, PointLot, Tier
from tests.factories import CustomerFactory
from tests.loyalty.helpers import earn_spendable, program_set, usd_rule

pytestmark = pytest.mark.django_db


def test_beat_entries_exist():
    names = set(PeriodicTask.objects.filter(task__startswith="loyalty.tasks.").values_list("task", flat=True))
    assert names == {
        "loyalty.tasks.loyalty_feed", "loyalty.tasks.loyalty_expire", "loyalty.tasks.loyalty_tier_downgrades",
        "loyalty.tasks.loyalty_expiry_warnings",
        "loyalty.tasks.loyalty_balance_check", "loyalty.tasks.loyalty_birthday_bonuses",
    }


@pytest.mark.django_db(transaction=True)
def test_feed_task_twice_earns_once():
    from tests.loyalty.test_feed import consume

    usd_rule("1")
    customer = CustomerFactory()
    order_bulk_upsert(items=[{"external_id": "X1", "customer": customer.pk, "ordered_at": timezone.now(),
                              "amount": Decimal("12.00"), "currency": "USD", "status": "paid"}])
    assert consume(1, run=lambda: tasks.loyalty_feed.apply().get()) == 1
    assert tasks.loyalty_feed.apply().get() == 0
    assert LedgerEntry.objects.count() == 1


def test_expire_task_twice_expires_once():
    customer = CustomerFactory()
    entry = earn_spendable(customer, 30, expires_in_days=1)
    PointLot.objects.filter(entry=entry).update(expires_at=timezone.now() - dt.timedelta(minutes=1))
    assert tasks.loyalty_expire.apply().get()["points"] == 30
    assert tasks.loyalty_expire.apply().get()["points"] == 0
    assert LedgerEntry.objects.filter(kind="expire").count() == 1
    assert LoyaltyAccount.objects.get(customer=customer).balance == 0


def test_downgrade_task_twice_schedules_once():
    gold = Tier.objects.create(name="Gold", threshold=Decimal("1000"))
    customer = CustomerFactory()
    earn_spendable(customer, 10)
    LoyaltyAccount.objects.filter(customer=customer).update(tier=gold)
    assert tasks.loyalty_tier_downgrades.apply().get()["scheduled"] == 1
    due = LoyaltyAccount.objects.get(customer=customer).downgrade_due_at
    assert tasks.loyalty_tier_downgrades.apply().get() == {"scheduled": 0, "downgraded": 0, "cleared": 0}
    assert LoyaltyAccount.objects.get(customer=customer).downgrade_due_at == due


def test_balance_check_task_reports():
    customer = CustomerFactory()
    earn_spendable(customer, 10)
    assert tasks.loyalty_balance_check.apply().get() == 0
    LoyaltyAccount.objects.filter(customer=customer).update(balance=11)
    assert tasks.loyalty_balance_check.apply().get() == 1
    assert BalanceCheck.objects.count() == 2


def test_expiry_warnings_queue_once_per_customer_and_day():
    from loyalty.services.warnings import EXPIRY_TEMPLATE
    from messaging.models import Message

    program_set(expiry_warning_days=14)
    soon = CustomerFactory(email="soon@example.com")
    later = CustomerFactory(email="later@example.com")
    earn_spendable(soon, 10, "a", expires_in_days=5)
    earn_spendable(soon, 20, "b", expires_in_days=5)
    earn_spendable(later, 10, "c", expires_in_days=60)
    assert tasks.loyalty_expiry_warnings.apply().get() == {"queued": 1, "lots": 2}
    assert tasks.loyalty_expiry_warnings.apply().get() == {"queued": 0, "lots": 0}  # a retry
    message = Message.objects.get()
    assert message.customer == soon and message.template.key == EXPIRY_TEMPLATE
    assert message.context["expires_on"]
    assert PointLot.objects.filter(warned_at__isnull=False).count() == 2
