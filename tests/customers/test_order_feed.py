"""The order feed (customers.order_feed): every write path adds its changes in its own transaction,
an update that changes nothing adds none, and a consumer never skips a change that commits late."""

import datetime as dt
import threading
import time
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.urls import reverse

from customers.models import Order, OrderChange, OrderFeedCursor
from customers.order_feed import order_changes_consume, order_changes_record, order_feed_writer_lock
from customers.services.imports import import_csv
from customers.services.orders import order_bulk_upsert
from tests.factories import CustomerFactory
from tests.races import race

T0 = dt.datetime(2025, 5, 1, 9, 0, tzinfo=dt.UTC)
HEADER = "customer_id,order_id,ordered_at,amount,currency,status\n"


def item(**overrides) -> dict:
    return {
        "external_id": "O1",
        "customer_external_id": "C1",
        "ordered_at": T0,
        "amount": Decimal("10.00"),
        "currency": "USD",
        "status": "paid",
    } | overrides


def feed() -> list[tuple]:
    return list(
        OrderChange.objects.order_by("id").values_list(
            "order__external_id", "old_status", "new_status", "old_amount", "new_amount"
        )
    )


@pytest.mark.django_db
def test_the_api_path_feeds_new_and_changed_orders_once():
    order_bulk_upsert(items=[item(), item(external_id="O2")])
    order_bulk_upsert(items=[item(status="refunded"), item(external_id="O2")])  # O2 unchanged
    order_bulk_upsert(items=[item(status="refunded")])  # nothing changes

    assert feed() == [
        ("O1", None, "paid", None, Decimal("10.00")),
        ("O2", None, "paid", None, Decimal("10.00")),
        ("O1", "paid", "refunded", Decimal("10.00"), Decimal("10.00")),
    ]
    change = OrderChange.objects.select_related("order", "customer").last()
    assert change.customer == change.order.customer and change.currency == "USD"


@pytest.mark.django_db
def test_the_api_path_writes_the_feed_with_one_insert(django_assert_max_num_queries):
    CustomerFactory(external_id="C1")
    with django_assert_max_num_queries(8):  # whatever the batch size
        order_bulk_upsert(items=[item(external_id=f"O{n}") for n in range(200)])
    assert OrderChange.objects.count() == 200


@pytest.mark.django_db
def test_the_import_feeds_new_and_changed_orders_and_nothing_for_an_unchanged_rerun(tmp_path):
    first = tmp_path / "a.csv"
    first.write_text(HEADER + "C1,O1,2025-05-01T09:00:00Z,10.00,USD,paid\nC2,O2,2025-05-01T09:00:00Z,5.00,USD,paid\n")
    changed = tmp_path / "b.csv"
    changed.write_text(HEADER + "C1,O1,2025-05-01T09:00:00Z,10.00,USD,refunded\nC2,O2,2025-05-01T09:00:00Z,5.00,USD,paid\n")

    import_csv(kind="orders", file=first)
    import_csv(kind="orders", file=first)
    import_csv(kind="orders", file=changed)

    assert sorted(feed()[:2]) == [("O1", None, "paid", None, Decimal("10.00")), ("O2", None, "paid", None, Decimal("5.00"))]
    assert feed()[2:] == [("O1", "paid", "refunded", Decimal("10.00"), Decimal("10.00"))]


@pytest.mark.django_db
def test_the_staff_form_feeds_the_order(client, manager):
    customer = CustomerFactory()
    client.force_login(manager)
    data = {"external_id": "W1", "ordered_at": "2025-05-01T09:00", "amount": "12.50", "currency": "eur", "status": "paid"}

    response = client.post(reverse("customers:order_create", args=[customer.pk]), data)

    assert response.status_code == 302
    assert Order.objects.get(external_id="W1").currency == "EUR"
    assert feed() == [("W1", None, "paid", None, Decimal("12.50"))]


@pytest.mark.django_db
def test_the_admin_feeds_a_changed_order(client, admin_user):
    order_bulk_upsert(items=[item()])
    order = Order.objects.get()
    client.force_login(admin_user)
    url = reverse("admin:customers_order_change", args=[order.pk])
    data = {
        "external_id": "O1", "customer": order.customer_id, "ordered_at_0": "2025-05-01", "ordered_at_1": "09:00:00",
        "amount": "10.00", "currency": "USD", "status": "refunded",
    }
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    client.post(url, data)  # the same again: no change, no feed row
    assert feed()[1:] == [("O1", "paid", "refunded", Decimal("10.00"), Decimal("10.00"))]


# Its own committed transactions: a consumer only reads changes of transactions that have ended.
@pytest.mark.django_db(transaction=True)
def test_a_consumer_gets_each_change_once_in_batches_and_a_failing_handler_consumes_nothing():
    order_bulk_upsert(items=[item(external_id=f"O{n}") for n in range(5)])
    seen: list[str] = []

    def fail(changes):
        raise RuntimeError("handler broke")

    with pytest.raises(RuntimeError):
        order_changes_consume(consumer="loyalty", handle=fail)
    while order_changes_consume(consumer="loyalty", handle=lambda cs: seen.extend(c.order.external_id for c in cs), batch_size=2):
        pass

    assert sorted(seen) == [f"O{n}" for n in range(5)]
    assert order_changes_consume(consumer="loyalty", handle=seen.extend) == 0
    # Another consumer has its own cursor.
    assert order_changes_consume(consumer="referrals", handle=lambda cs: None) == 5
    assert OrderFeedCursor.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_consumer_can_take_rows_of_chosen_fields_instead_of_models():
    order_bulk_upsert(items=[item(external_id=f"O{n}") for n in range(3)])
    order_bulk_upsert(items=[item(external_id="O0", status="refunded")])
    batches: list[list] = []
    while order_changes_consume(consumer="rows", handle=batches.append, batch_size=3, fields=("order_id", "old_status", "new_status")):
        pass
    assert [len(batch) for batch in batches] == [3, 1]
    rows = [row for batch in batches for row in batch]
    assert not isinstance(rows[0], OrderChange) and rows[0]._fields == ("id", "order_id", "old_status", "new_status")
    assert [row.id for row in rows] == list(OrderChange.objects.order_by("id").values_list("id", flat=True))
    assert [(row.old_status, row.new_status) for row in rows] == [(None, "paid")] * 3 + [("paid", "refunded")]
    assert rows[3].order_id == Order.objects.get(external_id="O0").pk
    assert OrderFeedCursor.objects.get(consumer="rows").last_id == rows[3].id


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_change_that_commits_after_a_later_one_is_not_skipped():
    """The outbox gap: writer A takes the lower id but commits after writer B. A consumer reading in
    between must not hand B's change and move past A's: it waits for A, then hands both in order."""
    customer = CustomerFactory()
    order_a = Order.objects.create(external_id="A", customer=customer, ordered_at=T0, amount=Decimal("1.00"))
    order_b = Order.objects.create(external_id="B", customer=customer, ordered_at=T0, amount=Decimal("2.00"))
    a_wrote, b_committed, release_a = threading.Event(), threading.Event(), threading.Event()
    consumed: list[int] = []

    def writer_a():
        with transaction.atomic(), connection.cursor() as cursor:
            order_feed_writer_lock(cursor)
            order_changes_record(changes=[(None, order_a)], changed_at=T0)
            a_wrote.set()
            assert release_a.wait(30)

    def writer_b_then_consumer():
        assert a_wrote.wait(30)
        with transaction.atomic(), connection.cursor() as cursor:
            order_feed_writer_lock(cursor)
            order_changes_record(changes=[(None, order_b)], changed_at=T0)
        b_committed.set()
        return order_changes_consume(consumer="loyalty", handle=lambda cs: consumed.extend(c.order_id for c in cs))

    def controller():
        assert b_committed.wait(30)
        time.sleep(0.5)  # the consumer has had time to read whatever it would read
        seen_while_a_open = list(consumed)
        release_a.set()
        return seen_while_a_open

    results, errors = race(writer_a, writer_b_then_consumer, controller)
    assert errors == []
    a_id, b_id = OrderChange.objects.get(order=order_a).id, OrderChange.objects.get(order=order_b).id
    assert a_id < b_id  # A took the lower id
    assert results[2] == []  # while A was open, nothing was handed (not B's change alone)
    assert results[1] == 2 and consumed == [order_a.pk, order_b.pk]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_consumer_that_yields_to_writers_hands_nothing_while_one_runs_and_does_not_wait():
    """wait_for_writers=False (loyalty's every-minute task): while a writer is open the consumer
    returns 0 at once, handing nothing and keeping its cursor; once the writer has committed, it
    hands the change."""
    customer = CustomerFactory()
    order = Order.objects.create(external_id="Y", customer=customer, ordered_at=T0, amount=Decimal("1.00"))
    wrote, release = threading.Event(), threading.Event()
    consumed: list[int] = []

    def writer():
        with transaction.atomic(), connection.cursor() as cursor:
            order_feed_writer_lock(cursor)
            order_changes_record(changes=[(None, order)], changed_at=T0)
            wrote.set()
            assert release.wait(30)

    def consumer():
        assert wrote.wait(30)
        started = time.perf_counter()
        handed = order_changes_consume(
            consumer="yielding", handle=lambda cs: consumed.extend(c.order_id for c in cs), wait_for_writers=False
        )
        elapsed = time.perf_counter() - started
        release.set()
        return handed, elapsed

    results, errors = race(writer, consumer)
    assert errors == []
    handed, elapsed = results[1]
    assert handed == 0 and consumed == [] and elapsed < 5  # did not wait for the writer
    assert OrderFeedCursor.objects.get(consumer="yielding").last_id == 0
    assert order_changes_consume(
        consumer="yielding", handle=lambda cs: consumed.extend(c.order_id for c in cs), wait_for_writers=False
    ) == 1
    assert consumed == [order.pk]
