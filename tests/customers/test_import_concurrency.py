"""The CSV import with several writer connections (PostgreSQL): rows split by customer over two
connections, customers created once, nothing lost or doubled, failures, and imports running at once."""

import random
import threading
import time
from decimal import Decimal

import pytest
from django.db import connection, transaction

from customers.models import ActivityEvent, Customer, Order
from customers.services.imports import import_csv
from customers.services.imports import staging as staging_module
from tests.factories import CustomerFactory, OrderFactory
from tests.races import race

ORDERS_HEADER = "customer_id,order_id,ordered_at,amount,currency,status\n"
EVENTS_HEADER = "customer_id,event,occurred_at,properties\n"


@pytest.fixture
def write_csv(tmp_path):
    def write(name: str, text: str):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def merge_threads(monkeypatch):
    """Names of the threads that merged order or event parts."""
    names = set()
    for cls in (staging_module.OrderStaging, staging_module.EventStaging):
        original = cls.merge

        def merge(self, cursor, *, original=original, **kwargs):
            names.add(threading.current_thread().name)
            return original(self, cursor, **kwargs)

        monkeypatch.setattr(cls, "merge", merge)
    return names


def orders_csv(orders: list[tuple[str, str, str]]) -> str:
    """(customer_id, order_id, amount) rows."""
    return ORDERS_HEADER + "".join(f"{c},{o},2024-03-05T10:00:00Z,{a},EUR,paid\n" for c, o, a in orders)


def stored_orders() -> dict[str, tuple[str, Decimal]]:
    return {o: (c, a) for o, c, a in Order.objects.values_list("external_id", "customer__external_id", "amount")}


def backends_of_this_database(*, settle_at: int | None = None) -> int:
    """Connections to the test database; with `settle_at`, give closed ones up to 5 s to go (a
    backend leaves pg_stat_activity a moment after its client said goodbye)."""
    deadline = time.monotonic() + 5
    while True:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
            count = cursor.fetchone()[0]
        if settle_at is None or count <= settle_at or time.monotonic() > deadline:
            return count
        time.sleep(0.05)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_writers_share_new_customers_across_chunks_without_losing_or_doubling_rows(write_csv, merge_threads):
    rng = random.Random(7)
    # 600 orders of 40 customers nobody knows yet, mixed so that every chunk of 7 rows names
    # customers that other chunks name too.
    orders = [(f"C{rng.randrange(40):02d}", f"O{n:04d}", f"{rng.randrange(100, 9999) / 100:.2f}") for n in range(600)]
    path = write_csv("orders.csv", orders_csv(orders))
    before = backends_of_this_database()
    progress = []

    result = import_csv(kind="orders", file=path, chunk_size=7, writers=2, progress=lambda d, t: progress.append((d, t)))

    assert len(merge_threads) == 2 and threading.current_thread().name not in merge_threads
    assert result.summary() == {
        "rows": 600, "created": 600, "updated": 0, "unchanged": 0, "rejected": 0,
        "customers_created": len({c for c, _o, _a in orders}), "channels_created": 0,
    }
    assert stored_orders() == {o: (c, Decimal(a)) for c, o, a in orders}
    assert Customer.objects.count() == len({c for c, _o, _a in orders})
    size = path.stat().st_size
    assert progress[-1] == (size, size)
    assert [done for done, _t in progress] == sorted(done for done, _t in progress)
    assert backends_of_this_database(settle_at=before) == before  # the writers closed their connections

    rerun = import_csv(kind="orders", file=path, chunk_size=7, writers=2)
    assert (rerun.created, rerun.updated, rerun.unchanged, rerun.customers_created) == (0, 0, 600, 0)

    # Every third order changes its amount, every fifth moves to a new customer.
    changed = [
        (f"N{n % 3}" if n % 5 == 0 else c, o, f"{Decimal(a) + 1}" if n % 3 == 0 else a)
        for n, (c, o, a) in enumerate(orders)
    ]
    moved = import_csv(kind="orders", file=write_csv("changed.csv", orders_csv(changed)), chunk_size=7, writers=2)
    touched = sum(1 for n in range(600) if n % 3 == 0 or n % 5 == 0)
    assert (moved.created, moved.updated, moved.unchanged, moved.customers_created) == (0, touched, 600 - touched, 3)
    assert stored_orders() == {o: (c, Decimal(a)) for c, o, a in changed}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_writers_report_rejected_rows_with_their_lines(write_csv, merge_threads):
    OrderFactory(external_id="O0007", customer=CustomerFactory(external_id="C01"), amount=Decimal("3.00"))
    rows = [f"C{n % 6:02d},O{n:04d},2024-03-05T10:00:00Z,1.00,EUR,paid" for n in range(60)]
    rows[7] = "C01,O0007,,,,"  # an existing order without values: fine, nothing changes
    rows[20] = "C02,O0020,2024-03-05,abc,,"  # refused while parsing
    rows[33] = "C03,O0033,,5.00,,"  # a new order without ordered_at: refused by the merge
    rows[45] = "LONELY,O0045,2024-03-05,,,"  # the same; its customer is not created
    path = write_csv("orders.csv", ORDERS_HEADER + "\n".join(rows) + "\n")

    result = import_csv(kind="orders", file=path, chunk_size=7, writers=2)

    assert len(merge_threads) == 2
    assert [(row.line, row.reason.split(":")[0]) for row in result.rejected] == [
        (22, "amount"), (35, "ordered_at and amount are needed for a new order (this order_id is not in the database yet)."),
        (47, "ordered_at and amount are needed for a new order (this order_id is not in the database yet)."),
    ]
    assert result.rejected[1].raw == "C03,O0033,,5.00,,"
    assert (result.created, result.updated, result.unchanged) == (56, 0, 1)
    assert Order.objects.count() == 57
    assert not Customer.objects.filter(external_id="LONELY").exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_events_with_two_writers_create_each_customer_once(write_csv, merge_threads):
    rows = [(f"C{n % 25:02d}", f"2024-01-01T00:{n // 60:02d}:{n % 60:02d}+00:00") for n in range(300)]
    path = write_csv("events.csv", EVENTS_HEADER + "".join(f'{c},login,{t},"{{""n"": 1}}"\n' for c, t in rows))

    result = import_csv(kind="events", file=path, chunk_size=9, writers=2)
    rerun = import_csv(kind="events", file=path, chunk_size=9, writers=2)

    assert len(merge_threads) == 2
    assert (result.created, result.customers_created, len(result.rejected)) == (300, 25, 0)
    assert (rerun.created, rerun.updated, rerun.unchanged, rerun.customers_created) == (0, 0, 300, 0)
    assert ActivityEvent.objects.count() == 300 and Customer.objects.count() == 25
    assert set(ActivityEvent.objects.values_list("customer__external_id", "occurred_at__minute", "occurred_at__second")) == {
        (c, int(t[14:16]), int(t[17:19])) for c, t in rows
    }


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_imports_at_once_needing_the_same_new_customers_do_not_deadlock(write_csv):
    customers = [f"C{n:03d}" for n in range(400)]
    # Chunk k of both files names the same 100 new customers, in opposite orders: created in the
    # order of the rows, each transaction would soon hold customers that the other one waits for.
    groups = [customers[k : k + 100] for k in range(0, 400, 100)]
    first = write_csv("a.csv", orders_csv([(c, f"A{c}", "1.00") for group in groups for c in group]))
    second = write_csv("b.csv", orders_csv([(c, f"B{c}", "2.00") for group in groups for c in reversed(group)]))
    (a, b), errors = race(
        *(lambda path=path: import_csv(kind="orders", file=path, chunk_size=100, writers=2) for path in (first, second))
    )
    assert errors == []
    assert a.created == b.created == 400
    assert a.customers_created + b.customers_created == 400
    assert Customer.objects.count() == 400
    assert Order.objects.count() == 800


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_failing_part_stops_the_import_and_keeps_what_was_committed(write_csv, monkeypatch):
    path = write_csv("orders.csv", orders_csv([(f"C{n % 10}", f"O{n:03d}", "1.00") for n in range(100)]))
    failing_line = 52  # order O050 (line 1 is the header), in the 8th chunk of 7 rows
    merge = staging_module.OrderStaging.merge

    def failing_merge(self, cursor, **kwargs):
        cursor.execute(f"SELECT 1 FROM {staging_module.RAW} WHERE line = %s", [failing_line])
        if cursor.fetchone():
            raise RuntimeError("database went away")
        return merge(self, cursor, **kwargs)

    monkeypatch.setattr(staging_module.OrderStaging, "merge", failing_merge)
    before = backends_of_this_database()

    with pytest.raises(RuntimeError, match="database went away"):
        import_csv(kind="orders", file=path, chunk_size=7, writers=2)

    stored = set(Order.objects.values_list("external_id", flat=True))
    # Chunks before the failing one are all in; the failing part's rows are not.
    assert {f"O{n:03d}" for n in range(49)} <= stored
    failing_customer = f"C{50 % 10}"
    assert not {f"O{n:03d}" for n in range(49, 56) if f"C{n % 10}" == failing_customer} & stored
    assert backends_of_this_database(settle_at=before) == before
    assert not [t for t in threading.enumerate() if t.name.startswith("csv-import-")]

    # A re-run completes the file.
    monkeypatch.setattr(staging_module.OrderStaging, "merge", merge)
    result = import_csv(kind="orders", file=path, chunk_size=7, writers=2)
    assert result.created == 100 - len(stored)
    assert Order.objects.count() == 100


@pytest.mark.django_db
def test_inside_a_transaction_the_import_keeps_to_its_own_connection(write_csv, merge_threads):
    # The test's transaction is open: other connections could not see its rows, so one writer.
    path = write_csv("orders.csv", orders_csv([(f"C{n % 4}", f"O{n}", "1.00") for n in range(30)]))
    with transaction.atomic():
        result = import_csv(kind="orders", file=path, chunk_size=4, writers=2)
        assert Order.objects.count() == 30
    assert merge_threads == {threading.current_thread().name}
    assert result.created == 30


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_imports_writing_the_same_rows_in_opposite_orders_do_not_deadlock(write_csv):
    # Existing customers, so neither import waits on the other's new customers; each file holds the
    # same orders (and events) of every customer, in opposite orders: inserted as the files list them,
    # each transaction would soon hold rows that the other one waits for.
    # Few customers with many rows each, so the two imports work on the same customer at once.
    customers = [f"C{n:03d}" for n in range(4)]
    for external_id in customers:
        CustomerFactory(external_id=external_id)
    rows = [(c, f"{c}-O{k:04d}") for c in customers for k in range(1500)]
    moments = [f"2024-03-{1 + k // 1440:02d}T{k // 60 % 24:02d}:{k % 60:02d}:00Z" for k in range(1500)]
    events = [(c, moment) for c in customers for moment in moments]
    files = {
        "orders": [write_csv(f"o{n}.csv", orders_csv([(c, o, "1.00") for c, o in rows[::step]])) for n, step in enumerate((1, -1))],
        "events": [
            write_csv(f"e{n}.csv", EVENTS_HEADER + "".join(f"{c},login,{m},\n" for c, m in events[::step]))
            for n, step in enumerate((1, -1))
        ],
    }
    for round_ in range(10):
        Order.objects.all().delete()
        ActivityEvent.objects.all().delete()
        for kind, paths in files.items():
            _results, errors = race(
                *(lambda kind=kind, path=path: import_csv(kind=kind, file=path, chunk_size=10_000, writers=2) for path in paths)
            )
            assert errors == [], f"round {round_}, {kind}: {errors!r}"
        assert Order.objects.count() == len(rows)
        assert ActivityEvent.objects.count() == len(events)
