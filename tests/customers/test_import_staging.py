"""How the import stages and merges a chunk (customers/services/imports/staging.py), on SQLite and
PostgreSQL alike: rows split by customer, new rows inserted without looking them up first."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import IntegrityError

from customers.models import Order
from customers.services.imports import import_csv
from customers.services.imports import staging as staging_module
from tests.factories import CustomerFactory, OrderFactory

ORDERS_HEADER = "customer_id,order_id,ordered_at,amount,currency,status\n"


@pytest.fixture
def inserts(monkeypatch):
    """The INSERTs of new orders, each as (ON CONFLICT added, IntegrityError raised)."""
    calls = []
    original = staging_module.Staging.insert_new_rows

    def insert_new_rows(self, cursor, sql, params, *, on_conflict):
        into_orders = Order._meta.db_table in sql.split("SELECT", 1)[0]  # not the customers it creates
        record = calls.append if into_orders else lambda call: None
        try:
            count = original(self, cursor, sql, params, on_conflict=on_conflict)
        except IntegrityError:
            record((not self.expect_new, True))
            raise
        record((not self.expect_new, False))
        return count

    monkeypatch.setattr(staging_module.Staging, "insert_new_rows", insert_new_rows)
    return calls


@pytest.mark.django_db
def test_a_fresh_import_inserts_without_on_conflict(tmp_path, inserts):
    path = tmp_path / "orders.csv"
    path.write_text(ORDERS_HEADER + "".join(f"C{n % 3},O{n},2024-03-05,1.00,,\n" for n in range(9)))

    result = import_csv(kind="orders", file=path, chunk_size=4, writers=1)

    assert (result.created, result.updated) == (9, 0)
    assert inserts == [(False, False)] * 3


@pytest.mark.django_db
def test_existing_orders_after_new_ones_undo_the_chunk_and_merge_it_again_with_on_conflict(tmp_path, inserts):
    OrderFactory(external_id="O5", customer=CustomerFactory(external_id="C2"), amount=Decimal("1.00"),
                 ordered_at=dt.datetime(2024, 3, 5, tzinfo=dt.UTC), currency="USD")
    OrderFactory(external_id="O6", customer=CustomerFactory(external_id="C0"), amount=Decimal("5.00"))
    path = tmp_path / "orders.csv"
    # Chunks of 3: O0-O2 new; O3, O4 new and O5 unchanged; O6 (amount changed), O7, O8 new.
    path.write_text(ORDERS_HEADER + "".join(f"C{n % 3},O{n},2024-03-05T00:00:00Z,1.00,USD,paid\n" for n in range(9)))

    result = import_csv(kind="orders", file=path, chunk_size=3, writers=1)

    assert (result.created, result.updated, result.unchanged, result.customers_created) == (7, 1, 1, 1)
    # The second chunk failed on O5 without ON CONFLICT, was undone and merged again with it.
    assert inserts == [(False, False), (False, True), (True, False), (True, False)]
    assert Order.objects.count() == 9
    assert Order.objects.get(external_id="O6").amount == Decimal("1.00")
    assert Order.objects.filter(external_id="O3").count() == 1


@pytest.mark.django_db
def test_an_integrity_error_of_another_kind_is_raised_after_the_second_try(tmp_path, monkeypatch):
    path = tmp_path / "orders.csv"
    path.write_text(ORDERS_HEADER + "C1,O1,2024-03-05,1.00,,\n")
    tries = []

    def failing_insert(self, cursor, sql, params, *, on_conflict):
        tries.append(self.expect_new)
        raise IntegrityError("a check constraint")

    monkeypatch.setattr(staging_module.Staging, "insert_new_rows", failing_insert)

    with pytest.raises(IntegrityError, match="a check constraint"):
        import_csv(kind="orders", file=path, writers=1)
    assert tries == [True, False]
    assert Order.objects.count() == 0


def test_split_deals_every_row_once_and_each_customer_to_one_part():
    staging = staging_module.OrderStaging()
    chunks = [
        "".join(f"{n}\tC{n % 7}\\t{n % 2}\tO{n}\t2024-01-01 00:00:00+00:00\t1.00\t\\N\t\\N\n" for n in rows)
        for rows in (range(40), range(40, 90))
    ]
    part_of_customer = {}
    for text in chunks:
        parts = staging.split(text, 2)
        assert sorted("".join(parts).splitlines()) == sorted(text.splitlines())
        for number, part in enumerate(parts):
            for row in part.splitlines():
                customer = row.split("\t")[1]  # a tab in the value is escaped: C3\\t1 is one customer
                assert part_of_customer.setdefault(customer, number) == number
    assert len(part_of_customer) == 14 and set(part_of_customer.values()) == {0, 1}
    assert staging.split("", 2) == ["", ""]
