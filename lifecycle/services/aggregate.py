"""The one aggregate query over orders that feeds the CLV job, returned as numpy arrays.

Conventions (as in Fader, Hardie & Lee and the reference libraries):
- only orders with status "paid" are purchases; "refunded" orders count as revenue that was
  refunded; "cancelled" orders are ignored; orders after the end of the as-of day (in the shop's
  time zone, settings.TIME_ZONE) are ignored;
- purchases are counted per calendar day in the shop's time zone: several paid orders on one day
  are one transaction whose value is their sum;
- money is summed in integer cents, so the historic figures are exact.

The query first groups orders by (customer, local day), then by customer; customers without any
order are included (LEFT JOIN) with zeros. Days are integers (days since 1970-01-01, local).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction

from customers.models import Customer, Order

EPOCH = dt.date(1970, 1, 1)
# The first purchase day's value is found without a sort: MIN(day * SHIFT + cents) picks the first
# day and carries its cents along (a day's paid total must stay below SHIFT cents, 10 billion).
SHIFT = 10**12
FETCH_BATCH = 50_000


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


def day_number(day: dt.date) -> int:
    return (day - EPOCH).days


def end_of_day(day: dt.date) -> dt.datetime:
    """The first instant after `day` in the shop's time zone (aware)."""
    tz = zoneinfo.ZoneInfo(settings.TIME_ZONE)
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, tzinfo=tz)


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


def order_stats(*, as_of: dt.date, lo: int | None = None, hi: int | None = None) -> OrderStats:
    """Run the aggregate (for all customers, or the id range [lo, hi)) and return its arrays."""
    sql, params = aggregate_sql(as_of=as_of, lo=lo, hi=hi)
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Room for the hash aggregate over (customer, day) to stay in memory.
            cursor.execute("SET LOCAL work_mem = '256MB'")
        cursor.execute(sql, params)
        # Converted in batches: a million Python tuples at once would cost far more memory.
        batches = [np.array(rows, dtype=np.int64).reshape(-1, 9) for rows in iter(lambda: cursor.fetchmany(FETCH_BATCH), [])]
    data = np.concatenate(batches) if batches else np.empty((0, 9), dtype=np.int64)
    first_key = data[:, 8]
    first_day_cents = np.where(first_key >= 0, first_key % SHIFT, 0)
    if len(data) and (data[:, 3] >= SHIFT).any():
        raise OverflowError("a customer's paid total exceeds the CLV job's range")
    return OrderStats(
        customer_id=data[:, 0].copy(),
        channel_id=data[:, 1].copy(),
        orders_count=data[:, 2].copy(),
        paid_cents=data[:, 3].copy(),
        refund_cents=data[:, 4].copy(),
        purchase_days=data[:, 5].copy(),
        first_day=data[:, 6].copy(),
        last_day=data[:, 7].copy(),
        first_day_cents=first_day_cents,
    )
