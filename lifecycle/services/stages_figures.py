"""The lifecycle evaluation's per-customer activity figures on PostgreSQL, computed in numpy.

The SQL path (stages._figures_select's aggregates) reads each id range's orders and events
separately; they are scattered over both tables (rows arrive in time order), so every range reads
most of the tables' pages again, and its LAG window, COUNT(DISTINCT ...) and the events' join to
the customers for the sign-up time each need a sort. Here, as in the CLV aggregate (aggregate.py),
PostgreSQL reads each table once per run, filters, and ships its raw columns packed into binary
arrays per bucket of BUCKET customer ids (array_agg + array_send, GROUP BY bucket, and the event name
for events; a server-side cursor with binary results, which spares the hex text of the bytea); numpy
then computes every customer's figures per bucket (counts and maxima without a sort, one sort of the
bucket's orders for the repeat window). Orders and events are read side by side on two connections
(one each) unless the evaluation runs inside a transaction, whose rows other connections could not
see.

The result holds one row per customer with a paid order or an event up to the as-of moment, in id
order, already laid out as PostgreSQL's binary COPY rows: each id range's slice is copied into the
temporary table ACTIVITY_TABLE, which the figures SELECT joins in place of its aggregates. Times are
microseconds since 2000-01-01 UTC (PostgreSQL's own binary timestamptz), so every window compares
exactly as the SQL does; "no time" travels as -infinity (int64 min) and is turned back into NULL.
tests/lifecycle/test_stages_figures.py checks the table equals the SQL path's on boundary cases.

The activity is that of the moment the reads start, while each range's stage, value and feedback
rows are read when the range is evaluated: an order or event committed meanwhile counts at the next
run (as on the SQL path for the ranges already done), and a manual move committed meanwhile is
still seen, so it is never overwritten.
"""

from __future__ import annotations

import datetime as dt
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from django.db import connection, transaction

from core.connections import on_own_connection
from customers.models import ActivityEvent, Customer, Order

from .aggregate import _pg_array, postgresql_settings

ACTIVITY_TABLE = "lifecycle_figures_activity"
# Customers per bucket: a bucket's orders or events travel as one row of arrays.
BUCKET = 20_000
PG_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
NO_TIME = np.iinfo(np.int64).min  # binary -infinity
COUNT, TIME, ID = ">i4", ">i8", ">i8"
# The columns of ACTIVITY_TABLE, in COPY order, with their binary types.
ORDER_COLUMNS = (("paid_orders", COUNT), ("repeated", COUNT), ("window_orders", COUNT), ("last_order_at", TIME))
EVENT_COLUMNS = (
    ("last_event_at", TIME),
    ("early_core", COUNT),
    ("window_events", COUNT),
    ("breadth", COUNT),
    ("service", COUNT),
    ("core_recent", COUNT),
    ("core_previous", COUNT),
    ("last_core_at", TIME),
)
COLUMNS = (("customer_id", ID), *ORDER_COLUMNS, *EVENT_COLUMNS)
TIME_COLUMNS = tuple(name for name, kind in ORDER_COLUMNS + EVENT_COLUMNS if kind == TIME)
# One binary COPY tuple: the field count, then each field's length and value.
ROW = np.dtype([("fields", ">i2")] + [field for name, kind in COLUMNS for field in ((f"{name}_size", ">i4"), (name, kind))])
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8
COPY_TRAILER = b"\xff\xff"


def pg_micros(moment: dt.datetime) -> int:
    """An aware moment as PostgreSQL's binary timestamptz: microseconds since 2000-01-01 UTC."""
    return (moment - PG_EPOCH) // dt.timedelta(microseconds=1)


@dataclass(frozen=True)
class Settings:
    """What the figures depend on: the moments (aware) and the rules' parameters."""

    t: dt.datetime
    window_since: dt.datetime
    decline_since: dt.datetime
    previous_since: dt.datetime
    repeat_orders: int
    repeat_days: int
    activation_days: int
    core: list[str]
    breadth: list[str]
    service: list[str]


def activity_table_create(cursor) -> None:
    cursor.execute(f"DROP TABLE IF EXISTS {ACTIVITY_TABLE}")
    types = {name: "timestamptz" if name in TIME_COLUMNS else "integer" for name, _kind in COLUMNS}
    columns = ", ".join(f"{name} {types[name]}" for name, _kind in COLUMNS).replace("customer_id integer", "customer_id bigint")
    cursor.execute(f"CREATE TEMPORARY TABLE {ACTIVITY_TABLE} ({columns})")


def activity_select() -> str:
    """ACTIVITY_TABLE's rows with NULL for "no time" (the figures SELECT joins it as `a`)."""
    columns = [f"NULLIF({name}, '-infinity') AS {name}" if name in TIME_COLUMNS else name for name, _kind in COLUMNS]
    return f"SELECT {', '.join(columns)} FROM {ACTIVITY_TABLE}"


# --- Queries -------------------------------------------------------------------------------------


def queries(settings: Settings) -> dict[str, tuple[str, list]]:
    """The three reads, each one row of two binary arrays (`a`, `b`) per bucket: customers (place
    in the bucket, sign-up time), paid orders up to T (place, time) and, per bucket and event name,
    events up to T (time, place). Grouping by the name costs PostgreSQL less than coding each event's
    name (a CASE or array_position per row) and leaves numpy one group per name to add up."""
    return {
        "customers": (
            f"SELECT c.id / %s, array_send(array_agg((c.id %% %s)::int4)) AS a,"
            f" array_send(array_agg(COALESCE(c.signed_up_at, c.created_at))) AS b FROM {Customer._meta.db_table} c GROUP BY 1",
            [BUCKET, BUCKET],
        ),
        "orders": (
            f"SELECT o.customer_id / %s, array_send(array_agg((o.customer_id %% %s)::int4)) AS a, array_send(array_agg(o.ordered_at)) AS b"
            f" FROM {Order._meta.db_table} o WHERE o.status = 'paid' AND o.ordered_at <= %s GROUP BY 1",
            [BUCKET, BUCKET, settings.t],
        ),
        "events": (
            f"SELECT ev.customer_id / %s, ev.name, array_send(array_agg((ev.customer_id %% %s)::int4)) AS a,"
            f" array_send(array_agg(ev.occurred_at)) AS b"
            f" FROM {ActivityEvent._meta.db_table} ev WHERE ev.occurred_at <= %s GROUP BY 1, 2",
            [BUCKET, BUCKET, settings.t],
        ),
    }


@contextmanager
def _logged(sql: str):
    """A statement run on psycopg's own cursor, logged as Django logs its own (connection.queries:
    the debug tools and the tests' query counts see it)."""
    started = time.monotonic()
    try:
        yield
    finally:
        if connection.queries_logged:
            connection.queries_log.append({"sql": sql, "time": f"{time.monotonic() - started:.3f}"})


def _read(name: str, settings: Settings):
    """(bucket, arrays...) per bucket of one query, a few buckets in memory at a time."""
    sql, params = queries(settings)[name]
    with connection.cursor() as cursor:
        postgresql_settings(cursor)
    connection.ensure_connection()
    # psycopg's own server-side cursor with binary results: the arrays arrive as their bytes, not
    # as hex text twice their size (Django's cursors bind client-side, which allows text only).
    with connection.connection.cursor(name=f"lifecycle_{name}", binary=True) as rows:
        with _logged(sql):
            rows.execute(sql, params)
        for batch in iter(lambda: rows.fetchmany(4), []):
            yield from batch


# --- Per bucket ----------------------------------------------------------------------------------


def _last(place: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Each place's latest time, NO_TIME without a row."""
    last = np.full(BUCKET, NO_TIME, np.int64)
    np.maximum.at(last, place, times)
    return last


def _count(place: np.ndarray) -> np.ndarray:
    return np.bincount(place, minlength=BUCKET)


def order_figures(place: np.ndarray, times: np.ndarray, s: Settings) -> dict[str, np.ndarray]:
    """A bucket's paid orders up to T -> ORDER_COLUMNS per place. Repeated: some paid order's
    (repeat_orders - 1)-th previous one is at most repeat_days earlier (LAG in the SQL path)."""
    figures = {
        "paid_orders": _count(place),
        "window_orders": _count(place[times > pg_micros(s.window_since)]),
        "last_order_at": _last(place, times),
    }
    # Sorted by place, then time: by time first, then stably by place (a radix sort of small ints).
    order = np.argsort(times)
    order = order[np.argsort(place[order].astype(np.int16 if BUCKET <= 2**15 else np.int32), kind="stable")]
    place, times = place[order], times[order]
    lag = s.repeat_orders - 1
    repeated = np.zeros(BUCKET, np.int64)
    if lag == 0:
        repeated[place] = 1
    elif len(place) > lag:
        within = (place[lag:] == place[:-lag]) & (times[lag:] - times[:-lag] <= s.repeat_days * 86_400_000_000)
        repeated[place[lag:][within]] = 1
    figures["repeated"] = repeated
    return figures


def event_figures() -> dict[str, np.ndarray]:
    """A bucket's EVENT_COLUMNS before its first event."""
    return {name: np.full(BUCKET, NO_TIME if kind == TIME else 0, np.int64) for name, kind in EVENT_COLUMNS}


def event_figures_add(figures: dict[str, np.ndarray], name: str, place: np.ndarray, times: np.ndarray, deadline: np.ndarray, s: Settings) -> None:
    """Add a bucket's events named `name` (up to T) to its figures; `deadline` is each place's
    sign-up plus activation_days (NO_TIME for a customer not read). No sort needed."""
    np.maximum.at(figures["last_event_at"], place, times)
    in_window = _count(place[times > pg_micros(s.window_since)])
    figures["window_events"] += in_window
    if name in s.breadth:  # distinct breadth names used in the window: one per name group
        figures["breadth"] += in_window > 0
    if name in s.service:
        figures["service"] += in_window
    if name in s.core:
        figures["early_core"] += _count(place[times <= deadline[place]])
        recent = times > pg_micros(s.decline_since)
        figures["core_recent"] += _count(place[recent])
        figures["core_previous"] += _count(place[(times > pg_micros(s.previous_since)) & ~recent])
        np.maximum.at(figures["last_core_at"], place, times)


def _orders(settings: Settings) -> dict[int, dict[str, np.ndarray]]:
    result = {}
    with transaction.atomic():
        for bucket, places, times in _read("orders", settings):
            result[bucket] = order_figures(_pg_array(places, ">i4"), _pg_array(times, ">i8"), settings)
    return result


def _events(settings: Settings) -> dict[int, dict[str, np.ndarray]]:
    activation = settings.activation_days * 86_400_000_000
    result = {}
    with transaction.atomic():
        deadlines = {}
        for bucket, places, signups in _read("customers", settings):
            deadline = np.full(BUCKET, NO_TIME, np.int64)
            deadline[_pg_array(places, ">i4")] = _pg_array(signups, ">i8") + activation
            deadlines[bucket] = deadline
        for bucket, name, places, times in _read("events", settings):
            deadline = deadlines.get(bucket, np.full(BUCKET, NO_TIME, np.int64))
            figures = result.setdefault(bucket, event_figures())
            event_figures_add(figures, name, _pg_array(places, ">i4"), _pg_array(times, ">i8"), deadline, settings)
    return result


# --- The whole run -------------------------------------------------------------------------------


class Activity:
    """Every active customer's figures as binary COPY rows in id order (see the module docstring)."""

    def __init__(self, settings: Settings, *, parallel: bool):
        if parallel and not connection.in_atomic_block:
            with ThreadPoolExecutor(max_workers=2, thread_name_prefix="lifecycle-figures") as pool:
                orders, events = pool.submit(on_own_connection(_orders), settings), pool.submit(on_own_connection(_events), settings)
                orders, events = orders.result(), events.result()
        else:
            orders, events = _orders(settings), _events(settings)
        parts = [self._bucket(bucket, orders.get(bucket), events.get(bucket)) for bucket in sorted({*orders, *events})]
        # dtype: concatenating would otherwise turn the fields to the machine's byte order.
        self.rows = np.concatenate(parts, dtype=ROW) if parts else np.zeros(0, ROW)

    @staticmethod
    def _bucket(bucket: int, orders: dict | None, events: dict | None) -> np.ndarray:
        figures = {}
        for columns, part in ((ORDER_COLUMNS, orders), (EVENT_COLUMNS, events)):
            for name, kind in columns:
                figures[name] = part[name] if part else np.full(BUCKET, NO_TIME if kind == TIME else 0, np.int64)
        active = np.flatnonzero((figures["last_order_at"] != NO_TIME) | (figures["last_event_at"] != NO_TIME))
        rows = np.zeros(len(active), ROW)
        rows["fields"] = len(COLUMNS)
        rows["customer_id"] = bucket * BUCKET + active
        for name, kind in COLUMNS:
            rows[f"{name}_size"] = np.dtype(kind).itemsize
            if name != "customer_id":
                rows[name] = figures[name][active]
        return rows

    def copy(self, cursor, lo: int, hi: int) -> int:
        """COPY the customers lo <= id < hi into ACTIVITY_TABLE; returns how many."""
        start, stop = np.searchsorted(self.rows["customer_id"], [lo, hi], side="left")
        payload = self.rows[start:stop].tobytes()
        statement = f"COPY {ACTIVITY_TABLE} FROM STDIN (FORMAT BINARY)"
        with _logged(statement), cursor.cursor.copy(statement) as copy:
            copy.write(COPY_HEADER)
            copy.write(payload)
            copy.write(COPY_TRAILER)
        return int(stop - start)
