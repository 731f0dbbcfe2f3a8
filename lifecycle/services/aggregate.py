"""Every customer's order figures for the CLV job, as numpy arrays.

Conventions (as in Fader, Hardie & Lee and the reference libraries):
- only orders with status "paid" are purchases; "refunded" orders count as revenue that was
  refunded; "cancelled" orders are ignored; orders after the end of the as-of day (in the shop's
  time zone, settings.TIME_ZONE) are ignored;
- purchases are counted per calendar day in the shop's time zone: several paid orders on one day
  are one transaction whose value is their sum;
- money is summed in integer cents, so the historic figures are exact.

How: the database only filters and ships the orders' raw columns (customer id, time, cents signed
by status), packed into one binary array per column and per bucket of customer ids so a million
orders travel as a few large values instead of a million rows; numpy then does the grouping by
customer and local day with one sort per bucket. A SQL GROUP BY over (customer, day) does the same
work but costs several times more on PostgreSQL (a hash table with an entry per customer-day, which
spills to disk at ten million orders), and Python rows would cost more still.
Days are integers (days since 1970-01-01, local); customers without any order are included with
zeros and first/last day -1.
"""

from __future__ import annotations

import datetime as dt
import itertools
import zoneinfo
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction

from core.connections import on_own_connection
from core.planner import jit_off
from core.times import shop_day_start, shop_zone
from customers.models import Customer, Order

EPOCH = dt.date(1970, 1, 1)
# PostgreSQL's binary timestamptz: microseconds since 2000-01-01 UTC.
PG_EPOCH_SECONDS = 946_684_800
SECONDS_PER_DAY = 86_400
# Customers per bucket: one bucket's orders travel as one row of arrays (a few MB at ten orders each).
BUCKET_CUSTOMERS = 20_000
# The sort key packs (customer position in the bucket, day - first day) into one int64.
DAY_BITS = 24


@dataclass
class OrderStats:
    """Per customer, in customer-id order. Days are local day numbers, money in cents."""

    customer_id: np.ndarray
    channel_id: np.ndarray  # 0 = no channel
    orders_count: np.ndarray
    paid_cents: np.ndarray
    refund_cents: np.ndarray
    purchase_days: np.ndarray
    first_day: np.ndarray  # -1 without a paid order
    last_day: np.ndarray
    first_day_cents: np.ndarray

    def __len__(self) -> int:
        return len(self.customer_id)

    def slice(self, lo: int, hi: int) -> OrderStats:
        """The customers with lo <= id < hi (the arrays are sorted by id)."""
        start, stop = np.searchsorted(self.customer_id, [lo, hi], side="left")
        return OrderStats(**{name: getattr(self, name)[start:stop] for name in self.__dataclass_fields__})

    @classmethod
    def concatenate(cls, parts: list[OrderStats]) -> OrderStats:
        if not parts:
            return _customer_stats(np.empty(0, np.int64), np.empty(0, np.int64), *_no_orders())
        return cls(**{name: np.concatenate([getattr(p, name) for p in parts]) for name in cls.__dataclass_fields__})


def day_number(day: dt.date) -> int:
    return (day - EPOCH).days


def end_of_day(day: dt.date) -> dt.datetime:
    """The first instant after `day` in the shop's time zone (aware)."""
    return shop_day_start(day + dt.timedelta(days=1))


# --- Local days ----------------------------------------------------------------------------------


def _offset(tz: zoneinfo.ZoneInfo, second: int) -> int:
    return int(dt.datetime.fromtimestamp(second, tz).utcoffset().total_seconds())


def utc_offsets(tz: zoneinfo.ZoneInfo, first: int, last: int) -> tuple[np.ndarray, np.ndarray]:
    """(starts, offsets): from UTC second starts[i] on, the zone is offsets[i] seconds ahead of UTC;
    starts[0] <= first and the table covers up to `last`. Exact to the second: sampled every 12
    hours (zones change offset at most a few times a year) and each change bisected."""
    step = 12 * 3600
    samples = list(range(first - first % step, last + step, step))
    offsets = [_offset(tz, s) for s in samples]
    starts, values = [samples[0]], [offsets[0]]
    for (a, before), (b, after) in zip(zip(samples, offsets), zip(samples[1:], offsets[1:]), strict=False):
        if before == after:
            continue
        while b - a > 1:  # the change happens in (a, b]
            middle = (a + b) // 2
            if _offset(tz, middle) == before:
                a = middle
            else:
                b = middle
        starts.append(b)
        values.append(after)
    return np.array(starts, dtype=np.int64), np.array(values, dtype=np.int64)


def local_days(utc_seconds: np.ndarray, tz: zoneinfo.ZoneInfo | str) -> np.ndarray:
    """Local calendar day numbers (days since 1970-01-01) of UTC instants in seconds."""
    if not len(utc_seconds):
        return np.empty(0, dtype=np.int64)
    tz = zoneinfo.ZoneInfo(tz) if isinstance(tz, str) else tz
    starts, offsets = utc_offsets(tz, int(utc_seconds.min()), int(utc_seconds.max()))
    if len(offsets) == 1:
        local = utc_seconds + offsets[0]
    else:
        local = utc_seconds + offsets[np.searchsorted(starts, utc_seconds, side="right") - 1]
    return local // SECONDS_PER_DAY


# --- Grouping --------------------------------------------------------------------------------------


def _no_orders():
    empty = np.empty(0, dtype=np.int64)
    return empty, empty, empty


def _customer_stats(ids: np.ndarray, channels: np.ndarray, order_customer: np.ndarray, day: np.ndarray, signed_cents: np.ndarray) -> OrderStats:
    """Stats of the customers `ids` (sorted) from their orders: customer id, local day and cents,
    negative cents - 1 for a refunded order (so the sign carries the status)."""
    n = len(ids)
    stats = OrderStats(
        customer_id=ids,
        channel_id=channels,
        orders_count=np.zeros(n, np.int64),
        paid_cents=np.zeros(n, np.int64),
        refund_cents=np.zeros(n, np.int64),
        purchase_days=np.zeros(n, np.int64),
        first_day=np.full(n, -1, np.int64),
        last_day=np.full(n, -1, np.int64),
        first_day_cents=np.zeros(n, np.int64),
    )
    if not len(order_customer):
        return stats
    position = np.searchsorted(ids, order_customer)
    # Orders of a customer created after the customers were read have no place: left out.
    known = ids[np.minimum(position, n - 1)] == order_customer if n else np.zeros(len(position), bool)
    if not known.all():
        position, day, signed_cents = position[known], day[known], signed_cents[known]
    paid = signed_cents >= 0
    refunded = ~paid
    if refunded.any():
        stats.refund_cents = _sums(position[refunded], -1 - signed_cents[refunded], n)
    if not paid.any():
        return stats
    position, day, cents = position[paid], day[paid], signed_cents[paid]
    first = int(day.min())
    if int(day.max()) - first >= 1 << DAY_BITS:
        raise OverflowError("order days span more than the CLV job's range")
    key = (position << DAY_BITS) | (day - first)
    order = np.argsort(key, kind="stable")
    key, cents = key[order], cents[order]
    # One entry per (customer, day): a purchase.
    starts = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))
    purchase_key = key[starts]
    purchase_cents = np.add.reduceat(cents, starts)
    purchase_customer = purchase_key >> DAY_BITS
    purchase_day = (purchase_key & ((1 << DAY_BITS) - 1)) + first
    # One entry per customer with purchases: its first and last purchase.
    customer_starts = np.flatnonzero(np.concatenate(([True], purchase_customer[1:] != purchase_customer[:-1])))
    customer_ends = np.concatenate((customer_starts[1:], [len(purchase_customer)])) - 1
    buyers = purchase_customer[customer_starts]
    stats.purchase_days[buyers] = customer_ends - customer_starts + 1
    stats.first_day[buyers] = purchase_day[customer_starts]
    stats.last_day[buyers] = purchase_day[customer_ends]
    stats.first_day_cents[buyers] = purchase_cents[customer_starts]
    stats.paid_cents[buyers] = np.add.reduceat(purchase_cents, customer_starts)
    stats.orders_count = np.bincount(position, minlength=n).astype(np.int64)
    return stats


def _sums(position: np.ndarray, cents: np.ndarray, n: int) -> np.ndarray:
    """Exact int64 sums of `cents` per position."""
    order = np.argsort(position, kind="stable")
    position, cents = position[order], cents[order]
    starts = np.flatnonzero(np.concatenate(([True], position[1:] != position[:-1])))
    totals = np.zeros(n, np.int64)
    totals[position[starts]] = np.add.reduceat(cents, starts)
    return totals


# --- Fetching ------------------------------------------------------------------------------------


def _pg_array(value: bytes, dtype: str) -> np.ndarray:
    """A one-dimensional PostgreSQL array without NULLs in binary form (array_send) as numpy."""
    if value is None:
        return np.empty(0, dtype=np.int64)
    header = np.frombuffer(value, dtype=">i4", count=3)
    if header[0] == 0:
        return np.empty(0, dtype=np.int64)
    # ndim, has-nulls flag, element type, then (length, lower bound), then (size, value) per element.
    elements = np.frombuffer(value, dtype=np.dtype([("size", ">i4"), ("value", dtype)]), offset=20)
    return elements["value"].astype(np.int64)


def _range_sql(column: str, lo: int | None, hi: int | None) -> tuple[str, list]:
    if lo is None:
        return "", []
    return f" AND {column} >= %s AND {column} < %s", [lo, hi]


def postgresql_queries(*, cutoff: dt.datetime, lo: int | None = None, hi: int | None = None) -> tuple[tuple[str, list], tuple[str, list]]:
    """The two queries the PostgreSQL aggregate runs: customers, then orders, as arrays per bucket.

    Each order is two array elements (an array_agg per order costs more than its expression): its
    time, and one int8 packing its cents (as -1 - cents when refunded) times the bucket size plus
    the customer's place in the bucket (customer id mod bucket size)."""
    customer_range, customer_params = _range_sql("c.id", lo, hi)
    order_range, order_params = _range_sql("o.customer_id", lo, hi)
    customers = (
        f"SELECT c.id / %s, array_send(array_agg(c.id)), array_send(array_agg(COALESCE(c.channel_id, 0)))"
        f" FROM {Customer._meta.db_table} c WHERE TRUE{customer_range} GROUP BY 1",
        [BUCKET_CUSTOMERS, *customer_params],
    )
    orders = (
        f"SELECT o.customer_id / %s, array_send(array_agg(o.ordered_at)),"
        f" array_send(array_agg(CASE WHEN o.status = 'paid' THEN (o.amount * 100)::int8 ELSE -1 - (o.amount * 100)::int8 END"
        f" * %s + o.customer_id %% %s))"
        f" FROM {Order._meta.db_table} o WHERE o.ordered_at < %s AND o.status IN ('paid', 'refunded'){order_range} GROUP BY 1",
        [BUCKET_CUSTOMERS, BUCKET_CUSTOMERS, BUCKET_CUSTOMERS, cutoff, *order_params],
    )
    return customers, orders


def postgresql_settings(cursor) -> None:
    """For the transaction of the aggregate queries. The planner cannot know that id / bucket size
    leaves few groups and would plan to spill the arrays to disk, though each bucket's arrays are a
    few MB; JIT compiling costs more than it saves here."""
    cursor.execute("SET LOCAL work_mem = '512MB'")
    jit_off(cursor)


def _postgresql_buckets(cursor, *, cutoff: dt.datetime, lo: int | None, hi: int | None) -> Iterator[tuple]:
    """(customer ids, channel ids, order customer ids, order times in UTC seconds, signed cents) per
    bucket of customers, the buckets in no particular order."""
    customer_query, order_query = postgresql_queries(cutoff=cutoff, lo=lo, hi=hi)
    postgresql_settings(cursor)
    cursor.execute(*customer_query)
    customers = {bucket: (ids, channels) for bucket, ids, channels in cursor.fetchall()}
    # A server-side cursor hands over a few buckets at a time, so memory holds one bucket, not all.
    with connection.chunked_cursor() as orders:
        orders.execute(*order_query)
        for rows in iter(lambda: orders.fetchmany(4), []):
            for bucket, times, packed in rows:
                ids, channels = customers.pop(bucket, (None, None))
                seconds = _pg_array(times, ">i8") // 1_000_000 + PG_EPOCH_SECONDS
                cents, place = np.divmod(_pg_array(packed, ">i8"), BUCKET_CUSTOMERS)
                yield _pg_array(ids, ">i8"), _pg_array(channels, ">i8"), bucket * BUCKET_CUSTOMERS + place, seconds, cents
    for ids, channels in customers.values():  # buckets without orders
        yield _pg_array(ids, ">i8"), _pg_array(channels, ">i8"), *_no_orders()


def _sqlite_buckets(cursor, *, cutoff: dt.datetime, lo: int | None, hi: int | None) -> Iterator[tuple]:
    """The same as _postgresql_buckets, in one bucket: SQLite databases are the small ones."""
    customer_range, customer_params = _range_sql("id", lo, hi)
    order_range, order_params = _range_sql("customer_id", lo, hi)
    cursor.execute(
        f"SELECT id, COALESCE(channel_id, 0) FROM {Customer._meta.db_table} WHERE 1{customer_range}", customer_params
    )
    customers = np.array(cursor.fetchall(), dtype=np.int64).reshape(-1, 2)
    cursor.execute(
        f"SELECT customer_id, ordered_at, CAST(ROUND(amount * 100) AS INTEGER), status FROM {Order._meta.db_table}"
        f" WHERE ordered_at < %s AND status IN ('paid', 'refunded'){order_range}",
        [connection.ops.adapt_datetimefield_value(cutoff), *order_params],
    )
    rows = cursor.fetchall()
    order_customer = np.array([row[0] for row in rows], dtype=np.int64)
    # SQLite holds naive UTC text (which Django's converter may already have parsed).
    moments = (row[1] if isinstance(row[1], dt.datetime) else dt.datetime.fromisoformat(row[1]) for row in rows)
    seconds = np.array([int(moment.replace(tzinfo=dt.UTC).timestamp()) for moment in moments], dtype=np.int64)
    cents = np.array([row[2] if row[3] == Order.Status.PAID else -1 - row[2] for row in rows], dtype=np.int64)
    yield customers[:, 0], customers[:, 1], order_customer, seconds, cents


def order_stats(*, as_of: dt.date, lo: int | None = None, hi: int | None = None) -> OrderStats:
    """The figures of every customer, or of those with lo <= id < hi, from orders up to `as_of`."""
    if connection.vendor == "postgresql":
        buckets = _postgresql_buckets
    elif connection.vendor == "sqlite":
        buckets = _sqlite_buckets
    else:
        # The project supports PostgreSQL (production) and SQLite (the embedded default) only.
        raise ImproperlyConfigured(f"CLV aggregation supports PostgreSQL and SQLite, not {connection.vendor}")
    parts = []
    with transaction.atomic(), connection.cursor() as cursor:
        for ids, channels, order_customer, seconds, cents in buckets(cursor, cutoff=end_of_day(as_of), lo=lo, hi=hi):
            order = np.argsort(ids)
            days = local_days(seconds, shop_zone())
            parts.append(_customer_stats(ids[order], channels[order], order_customer, days, cents))
    parts.sort(key=lambda part: int(part.customer_id[0]) if len(part) else -1)
    return OrderStats.concatenate(parts)


def order_stats_parallel(*, as_of: dt.date, connections: int) -> OrderStats:
    """order_stats over all customers, split into `connections` id ranges read side by side, each
    on its own database connection (PostgreSQL then works on as many cores). Falls back to one
    connection inside a transaction, whose uncommitted rows other connections could not see, and on
    SQLite, whose databases are the small ones and lock against concurrent transactions."""
    if connections < 2 or connection.in_atomic_block or connection.vendor != "postgresql":
        return order_stats(as_of=as_of)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT MIN(id), MAX(id) FROM {Customer._meta.db_table}")
        first, last = cursor.fetchone()
    if first is None:
        return order_stats(as_of=as_of)
    edges = np.linspace(first, last + 1, connections + 1).astype(np.int64)
    ranges = [(int(lo), int(hi)) for lo, hi in itertools.pairwise(edges) if hi > lo]

    @on_own_connection
    def one_range(bounds: tuple[int, int]) -> OrderStats:
        return order_stats(as_of=as_of, lo=bounds[0], hi=bounds[1])

    with ThreadPoolExecutor(max_workers=len(ranges), thread_name_prefix="clv-aggregate") as pool:
        return OrderStats.concatenate(list(pool.map(one_range, ranges)))
