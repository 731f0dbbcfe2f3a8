"""Orders earn and refunds reverse through the order feed, whichever path wrote them."""

import datetime as dt
import time
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from customers.services.orders import order_bulk_upsert
from loyalty.models import LedgerEntry, LoyaltyAccount
from loyalty.services.expiry import ledger_balance_check
from loyalty.services.feed import loyalty_feed_consume
from tests.conftest import skip_or_fail
from tests.factories import CustomerFactory
from tests.loyalty.helpers import usd_rule

# The feed hands a change over once its writer's transaction has ended (see customers/order_feed.py),
# so the orders are committed, not written inside the test's transaction, and the reader waits a
# little for them.
pytestmark = pytest.mark.django_db(transaction=True)


def consume(expected: int, *, run=loyalty_feed_consume, timeout: float = 60) -> int:
    handled, deadline = 0, time.monotonic() + timeout
    while True:
        handled += run()
        if handled >= expected:
            return handled
        if time.monotonic() > deadline:
            if handled == 0 and connection.vendor == "postgresql":
                # A feed writer that never ended would hold the feed back: nothing to judge loyalty by.
                skip_or_fail("the order feed handed nothing over within the timeout")
            return handled
        time.sleep(0.2)


def _order(customer, external_id, amount, status="paid"):
    return {
        "external_id": external_id, "customer": customer.pk, "ordered_at": timezone.now() - dt.timedelta(days=1),
        "amount": Decimal(amount), "currency": "USD", "status": status,
    }


def test_feed_earns_paid_orders_and_reverses_refunds_once():
    usd_rule("1")
    customer = CustomerFactory()
    order_bulk_upsert(items=[_order(customer, "A", "100.00"), _order(customer, "B", "40.00"),
                             _order(customer, "C", "9.00", status="refunded")])
    assert consume(3) == 3
    account = LoyaltyAccount.objects.get(customer=customer)
    assert account.balance == 140
    assert loyalty_feed_consume() == 0  # nothing new: nothing happens
    # A partial refund (amount lowered) and a full refund (status) of the other order.
    order_bulk_upsert(items=[_order(customer, "A", "75.00"), _order(customer, "B", "40.00", status="refunded")])
    assert consume(2) == 2
    account.refresh_from_db()
    assert account.balance == 75
    reversals = sorted(LedgerEntry.objects.filter(kind="reverse").values_list("points", flat=True))
    assert reversals == [-40, -25]
    assert not ledger_balance_check().mismatches
