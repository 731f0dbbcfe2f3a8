"""The API's bulk upserts of orders and events raced by real threads on PostgreSQL: two clients sending
overlapping batches at the same moment, in opposite orders, both succeed, and every order, event and
customer exists once."""

import datetime as dt
from decimal import Decimal

import pytest

from customers.models import ActivityEvent, Customer, Order
from customers.services.orders import event_bulk_upsert, order_bulk_upsert
from tests.races import race

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

T0 = dt.datetime(2025, 5, 1, 9, 0, tzinfo=dt.UTC)
ROUNDS = 10


def race_rounds(upsert, make_items, *, prefix: str, customers: int, customers_exist: bool) -> None:
    """ROUNDS races of two batches of the same items in opposite orders (the second's values
    differ: "b"), on customers that exist already or that both batches create."""
    if customers_exist:  # else the first batch to create them makes the other wait for its commit
        Customer.objects.bulk_create(
            [Customer(external_id=f"{prefix}{r}-C{n:03d}") for r in range(ROUNDS) for n in range(customers)]
        )
    for round_ in range(ROUNDS):
        forward, backward = make_items(round_, "a"), make_items(round_, "b")[::-1]
        _results, errors = race(lambda: upsert(items=forward), lambda: upsert(items=backward))  # noqa: B023 (run now)
        assert errors == [], f"round {round_}: {errors!r}"
    assert Customer.objects.count() == ROUNDS * customers


def order_items(round_: int, variant: str) -> list[dict]:
    return [
        {
            "external_id": f"R{round_}-O{n:03d}",
            "customer_external_id": f"R{round_}-C{n % 50:03d}",
            "ordered_at": T0 + dt.timedelta(minutes=n),
            "amount": Decimal("1.00") if variant == "a" else Decimal("2.00"),
            "currency": "EUR",
            "status": "paid",
        }
        for n in range(300)
    ]


def event_items(round_: int, variant: str) -> list[dict]:
    return [
        {
            "customer_external_id": f"E{round_}-C{n % 40:03d}",
            "name": "page_view",
            "occurred_at": T0 + dt.timedelta(seconds=n),
            "properties": {"source": variant},
        }
        for n in range(200)
    ]


@pytest.mark.parametrize("customers_exist", [True, False])
def test_two_clients_upserting_the_same_orders_in_opposite_orders_both_succeed(customers_exist):
    race_rounds(order_bulk_upsert, order_items, prefix="R", customers=50, customers_exist=customers_exist)
    assert Order.objects.count() == ROUNDS * 300
    # Whichever came second won, for the whole of its batch (each batch is one transaction).
    for round_ in range(ROUNDS):
        amounts = set(Order.objects.filter(external_id__startswith=f"R{round_}-").values_list("amount", flat=True))
        assert amounts in ({Decimal("1.00")}, {Decimal("2.00")})


@pytest.mark.parametrize("customers_exist", [True, False])
def test_two_clients_recording_the_same_events_in_opposite_orders_both_succeed(customers_exist):
    race_rounds(event_bulk_upsert, event_items, prefix="E", customers=40, customers_exist=customers_exist)
    assert ActivityEvent.objects.count() == ROUNDS * 200
    sources = set(ActivityEvent.objects.values_list("properties__source", flat=True))
    assert sources <= {"a", "b"}
