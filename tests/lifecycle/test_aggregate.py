"""The CLV aggregate (numpy grouping of shipped order columns) against a plain SQL GROUP BY.

The SQL below is the job's former aggregate: two GROUP BYs over (customer, local day) then customer.
It is kept here as the oracle, since it states the conventions directly in SQL."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal

import numpy as np
import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test import override_settings

from customers.models import Customer, Order
from lifecycle.services import aggregate
from lifecycle.services.aggregate import end_of_day, local_days, order_stats, utc_offsets
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db
AS_OF = dt.date(2026, 3, 31)
SHIFT = 10**12
EPOCH = dt.date(1970, 1, 1)

def _sqlite_local_day(value: str | None) -> int | None:
    if value is None:
        return None
    moment = dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC)
    return (moment.astimezone(zoneinfo.ZoneInfo(settings.TIME_ZONE)).date() - EPOCH).days


def _day_expression() -> tuple[str, list]:
    if connection.vendor == "postgresql":
        return "((o.ordered_at AT TIME ZONE %s)::date - DATE '1970-01-01')", [settings.TIME_ZONE]
    if connection.vendor == "sqlite":
        # SQLite stores UTC text; a deterministic Python function turns it into the local day.
        connection.ensure_connection()
        connection.connection.create_function("clv_local_day", 1, _sqlite_local_day, deterministic=True)
        return "clv_local_day(o.ordered_at)", []
    # The project supports PostgreSQL (production) and SQLite (the embedded default) only.
    raise ImproperlyConfigured(f"CLV aggregation supports PostgreSQL and SQLite, not {connection.vendor}")


def aggregate_sql(*, as_of: dt.date, lo: int | None = None, hi: int | None = None) -> tuple[str, list]:
    day_sql, day_params = _day_expression()
    order_table = Order._meta.db_table
    customer_table = Customer._meta.db_table
    cents = "CAST(ROUND(o.amount * 100) AS BIGINT)"
    order_range, customer_range, range_params = "", "", []
    if lo is not None:
        order_range = " AND o.customer_id >= %s AND o.customer_id < %s"
        customer_range = " WHERE c.id >= %s AND c.id < %s"
        range_params = [lo, hi]
    sql = f"""
        SELECT c.id, COALESCE(c.channel_id, 0),
               COALESCE(a.orders_count, 0), COALESCE(a.paid_cents, 0), COALESCE(a.refund_cents, 0),
               COALESCE(a.purchase_days, 0), COALESCE(a.first_day, -1), COALESCE(a.last_day, -1),
               COALESCE(a.first_key, -1)
        FROM {customer_table} c
        LEFT JOIN (
            SELECT d.cid,
                   SUM(d.paid_n) AS orders_count,
                   SUM(d.paid_cents) AS paid_cents,
                   SUM(d.refund_cents) AS refund_cents,
                   SUM(CASE WHEN d.paid_n > 0 THEN 1 ELSE 0 END) AS purchase_days,
                   MIN(CASE WHEN d.paid_n > 0 THEN d.day END) AS first_day,
                   MAX(CASE WHEN d.paid_n > 0 THEN d.day END) AS last_day,
                   MIN(CASE WHEN d.paid_n > 0 THEN d.day * {SHIFT} + d.paid_cents END) AS first_key
            FROM (
                SELECT o.customer_id AS cid, {day_sql} AS day,
                       SUM(CASE WHEN o.status = 'paid' THEN 1 ELSE 0 END) AS paid_n,
                       SUM(CASE WHEN o.status = 'paid' THEN {cents} ELSE 0 END) AS paid_cents,
                       SUM(CASE WHEN o.status = 'refunded' THEN {cents} ELSE 0 END) AS refund_cents
                FROM {order_table} o
                WHERE o.ordered_at < %s AND o.status IN ('paid', 'refunded'){order_range}
                GROUP BY 1, 2
            ) d
            GROUP BY d.cid
        ) a ON a.cid = c.id{customer_range}
        ORDER BY c.id
    """
    cutoff = connection.ops.adapt_datetimefield_value(end_of_day(as_of))
    params = [*day_params, cutoff, *range_params, *range_params]
    return sql, params


def oracle_stats(as_of: dt.date) -> np.ndarray:
    sql, params = aggregate_sql(as_of=as_of)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        data = np.array(cursor.fetchall(), dtype=np.int64).reshape(-1, 9)
    first_key = data[:, 8]
    return np.column_stack([data[:, :8], np.where(first_key >= 0, first_key % SHIFT, 0)])


def numpy_stats(as_of: dt.date, **kwargs) -> np.ndarray:
    s = order_stats(as_of=as_of, **kwargs)
    return np.column_stack(
        [s.customer_id, s.channel_id, s.orders_count, s.paid_cents, s.refund_cents, s.purchase_days, s.first_day, s.last_day, s.first_day_cents]
    )


def random_orders(n_customers: int, seed: int, tz_name: str) -> None:
    """Orders at any time of day around two DST changes, several per day, all statuses, zero amounts."""
    rng = np.random.default_rng(seed)
    tz = zoneinfo.ZoneInfo(tz_name)
    customers = CustomerFactory.create_batch(n_customers)
    start = dt.datetime(2025, 3, 1, tzinfo=tz).timestamp()
    end = dt.datetime(2026, 4, 3, tzinfo=tz).timestamp()  # a few orders after the as-of day
    orders = []
    for customer in customers[: n_customers - 3]:  # the last three never order
        for _ in range(int(rng.integers(0, 9))):
            moment = dt.datetime.fromtimestamp(float(rng.uniform(start, end)), dt.UTC).replace(microsecond=0)
            for _same_day in range(int(rng.integers(1, 3))):
                status = rng.choice(["paid", "paid", "paid", "refunded", "cancelled"])
                cents = int(rng.integers(0, 50_000)) if rng.random() > 0.05 else 0
                orders.append(
                    Order(
                        external_id=f"o{len(orders)}",
                        customer=customer,
                        ordered_at=moment + dt.timedelta(minutes=int(rng.integers(0, 30))),
                        amount=Decimal(cents) / 100,
                        status=status,
                    )
                )
    Order.objects.bulk_create(orders)


@pytest.mark.parametrize("tz_name", ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kathmandu"])
def test_numpy_aggregate_equals_the_sql_group_by(tz_name):
    with override_settings(TIME_ZONE=tz_name):
        random_orders(60, seed=len(tz_name), tz_name=tz_name)
        expected = oracle_stats(AS_OF)
        got = numpy_stats(AS_OF)
    assert len(got) == Customer.objects.count() == 60
    assert (got[:, 2] > 1).any() and (got[:, 4] > 0).any()  # repeat buyers and refunds are there
    np.testing.assert_array_equal(got, expected)


def test_a_range_of_customers_gives_the_same_rows_as_the_whole():
    random_orders(30, seed=3, tz_name=settings.TIME_ZONE)
    ids = sorted(Customer.objects.values_list("id", flat=True))
    lo, hi = ids[5], ids[20]
    whole = numpy_stats(AS_OF)
    part = numpy_stats(AS_OF, lo=lo, hi=hi)
    np.testing.assert_array_equal(part, whole[(whole[:, 0] >= lo) & (whole[:, 0] < hi)])


def test_orders_after_the_end_of_the_as_of_day_are_left_out():
    with override_settings(TIME_ZONE="Europe/Berlin"):
        customer = CustomerFactory()
        last_moment = end_of_day(AS_OF) - dt.timedelta(seconds=1)
        Order.objects.create(external_id="in", customer=customer, ordered_at=last_moment, amount=Decimal("10.00"))
        Order.objects.create(external_id="out", customer=customer, ordered_at=end_of_day(AS_OF), amount=Decimal("99.00"))
        stats = order_stats(as_of=AS_OF)
    assert list(stats.paid_cents) == [1000]
    assert list(stats.first_day) == [(AS_OF - dt.date(1970, 1, 1)).days]


def test_no_customers_at_all():
    stats = order_stats(as_of=AS_OF)
    assert len(stats) == 0 and stats.paid_cents.dtype == np.int64


@pytest.mark.parametrize("tz_name", ["Europe/Berlin", "America/Sao_Paulo", "Australia/Lord_Howe", "Asia/Kathmandu", "UTC"])
def test_local_days_match_python_for_every_quarter_hour_over_years(tz_name):
    tz = zoneinfo.ZoneInfo(tz_name)
    seconds = np.arange(int(dt.datetime(2015, 1, 1, tzinfo=dt.UTC).timestamp()), int(dt.datetime(2027, 1, 1, tzinfo=dt.UTC).timestamp()), 900)
    seconds = seconds + np.arange(len(seconds)) % 7  # not only round instants
    expected = [(dt.datetime.fromtimestamp(int(s), tz).date() - dt.date(1970, 1, 1)).days for s in seconds]
    np.testing.assert_array_equal(local_days(seconds, tz_name), expected)


def test_utc_offsets_find_each_change_to_the_second():
    tz = zoneinfo.ZoneInfo("Europe/Berlin")
    starts, offsets = utc_offsets(tz, int(dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp()), int(dt.datetime(2026, 12, 31, tzinfo=dt.UTC).timestamp()))
    # 2026: summer time from 29 March 01:00 UTC, back on 25 October 01:00 UTC.
    assert list(offsets) == [3600, 7200, 3600]
    assert [dt.datetime.fromtimestamp(int(s), dt.UTC) for s in starts[1:]] == [
        dt.datetime(2026, 3, 29, 1, tzinfo=dt.UTC),
        dt.datetime(2026, 10, 25, 1, tzinfo=dt.UTC),
    ]


def test_a_database_other_than_postgresql_or_sqlite_is_refused(monkeypatch):
    monkeypatch.setattr(connection, "vendor", "mysql")
    with pytest.raises(ImproperlyConfigured):
        order_stats(as_of=AS_OF)


def test_the_bucket_size_does_not_change_the_result(monkeypatch):
    random_orders(25, seed=11, tz_name=settings.TIME_ZONE)
    whole = numpy_stats(AS_OF)
    monkeypatch.setattr(aggregate, "BUCKET_CUSTOMERS", 3)
    np.testing.assert_array_equal(numpy_stats(AS_OF), whole)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_side_by_side_connections_give_the_same_stats_as_one():
    random_orders(40, seed=5, tz_name=settings.TIME_ZONE)
    whole = numpy_stats(AS_OF)
    parallel = aggregate.order_stats_parallel(as_of=AS_OF, connections=3)
    got = np.column_stack([getattr(parallel, name) for name in aggregate.OrderStats.__dataclass_fields__])
    np.testing.assert_array_equal(got, whole)


def test_inside_a_transaction_one_connection_reads_everything():
    # Other connections could not see this transaction's rows: the split must not happen here.
    random_orders(10, seed=2, tz_name=settings.TIME_ZONE)
    stats = aggregate.order_stats_parallel(as_of=AS_OF, connections=4)
    np.testing.assert_array_equal(stats.customer_id, numpy_stats(AS_OF)[:, 0])
    assert len(stats) == 10


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_sqlite_reads_on_one_connection(monkeypatch):
    # SQLite locks a table against a second connection's transaction: no side-by-side reads there.
    random_orders(8, seed=4, tz_name=settings.TIME_ZONE)
    expected = numpy_stats(AS_OF)
    if connection.vendor == "sqlite":
        monkeypatch.setattr(aggregate, "ThreadPoolExecutor", None)  # would fail if used
    stats = aggregate.order_stats_parallel(as_of=AS_OF, connections=2)
    np.testing.assert_array_equal(stats.customer_id, expected[:, 0])
