"""The order feed: one place to hear of every order created or changed, whichever path wrote it
(the API and the staff form through customers.services.orders, the CSV import's staging, the admin).

Writers add customers.models.OrderChange rows in their own transaction (order_changes_record here,
or set-based SQL in the import), so a change is in the feed exactly when it is in the orders table.
Consumers (loyalty, referrals) call order_changes_consume with a name of their own:

    def award(changes):  # runs inside the transaction that advances "loyalty"'s cursor
        for change in changes:
            if change.new_status == "paid" and change.old_status != "paid": ...

    while order_changes_consume(consumer="loyalty", handle=award):
        pass

A consumer that reads many changes (an import of a million orders) passes `fields=(...)` and gets
named tuples of `id` and those fields instead of model instances: building a model per change cost
about 0.45 s per 10,000 changes, more than the SQL that consumes them.

Each consumer has a cursor row, locked while it reads, so one handler runs at a time per consumer and
its writes commit with the cursor's advance, or neither does (a handler that raises consumes nothing).

Why not just "id > last": ids are taken when a row is inserted but become visible when its
transaction commits, so a writer that started earlier can commit a lower id after a higher one was
read, and a plain cursor would skip it for ever (the outbox gap). So every feed writer holds a shared
advisory lock (FEED_LOCK, order_feed_writer_lock) for its whole transaction, taken before it writes
anything, and the consumer takes the same lock exclusively for a moment: once it has it, every
writer that had taken an id has ended, so every id up to the highest one now in the table is final
(committed or rolled back), and ids taken later are higher. It reads up to that id only. A change
waits at most for the feed writers already running (an import's chunk, an API request), never for
other work on the server. Writers queue behind a waiting consumer only for that moment.
On SQLite (one writing transaction at a time) ids commit in order and no lock is needed."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from django.db import connection, transaction

from customers.models import Order, OrderChange, OrderFeedCursor

DEFAULT_BATCH_SIZE = 1000


def order_changes_record(*, changes: Sequence[tuple[Order | None, Order]], changed_at) -> int:
    """Add a feed row for each (old, new) pair, old None for a new order, with one INSERT. Call it
    in the transaction that wrote the orders (new ones with their pk set), which must have called
    order_feed_writer_lock first."""
    if not changes:
        return 0
    OrderChange.objects.bulk_create(
        [
            OrderChange(
                order_id=new.pk,
                customer_id=new.customer_id,
                old_status=old.status if old is not None else None,
                new_status=new.status,
                old_amount=old.amount if old is not None else None,
                new_amount=new.amount,
                currency=new.currency,
                changed_at=changed_at,
            )
            for old, new in changes
        ]
    )
    return len(changes)


# The columns an INSERT INTO the feed fills (id comes from the database), for set-based writers.
FEED_COLUMNS = "order_id, customer_id, old_status, new_status, old_amount, new_amount, currency, changed_at"
# pg_advisory_lock key of the feed's writers (shared) and consumers (exclusive): "ORDRFEED".
FEED_LOCK = 0x4F52445246454544


def order_feed_table() -> str:
    return connection.ops.quote_name(OrderChange._meta.db_table)


def order_feed_writer_lock(cursor) -> None:
    """Call first in a transaction that will write feed rows, before it locks or writes anything
    (so a consumer waiting for the lock never waits on a writer that waits for it)."""
    if connection.vendor == "postgresql":
        cursor.execute("SELECT pg_advisory_xact_lock_shared(%s)", [FEED_LOCK])


def _final_id(*, wait: bool = True) -> int | None:
    """The highest id below which no feed writer is still running (see the module's docstring);
    with wait=False, None at once when a writer is running (nothing taken, nothing queued)."""
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {order_feed_table()}")
            return cursor.fetchone()[0]
        # Session-level, so it is released at once, not at the end of the consumer's transaction.
        if wait:
            cursor.execute("SELECT pg_advisory_lock(%s)", [FEED_LOCK])
        else:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [FEED_LOCK])
            if not cursor.fetchone()[0]:
                return None
        try:
            cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {order_feed_table()}")
            return cursor.fetchone()[0]
        finally:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [FEED_LOCK])


def order_changes_values(changes: Sequence, *fields: str) -> dict[int, tuple]:
    """Change id -> the values of `fields` of these feed rows (as named tuples or models): for a
    consumer that reads a few columns of every change and more of the few it acts on."""
    ids = sorted(change.id for change in changes)
    values = {}
    for start in range(0, len(ids), 5_000):  # SQLite's limit on a statement's parameters
        for pk, *row in OrderChange.objects.filter(pk__in=ids[start : start + 5_000]).values_list("pk", *fields):
            values[pk] = tuple(row)
    return values


def order_changes_consume(
    *, consumer: str, handle: Callable[[list], None], batch_size: int = DEFAULT_BATCH_SIZE,
    fields: Sequence[str] | None = None, wait_for_writers: bool = True,
) -> int:
    """Hand the next changes `consumer` has not seen (at most batch_size, oldest first) to `handle`,
    and advance its cursor in the same transaction. Returns how many were handed (0: none ready).

    wait_for_writers=False: when a feed writer is running (an import's chunk, an API request), hand
    nothing now (0) instead of waiting for it, and without queueing new writers behind the wait;
    for a periodic consumer that would rather come back later than slow the writers down.

    `handle` gets OrderChange instances, or with `fields` (attribute names such as "order_id",
    "new_status") named tuples of `id` and those fields: no model built per change.

    Call it outside other transactions: a change written by the caller's own open transaction is not
    final yet and waits for the next call."""
    with transaction.atomic():
        OrderFeedCursor.objects.bulk_create([OrderFeedCursor(consumer=consumer)], ignore_conflicts=True)
        cursor = OrderFeedCursor.objects.select_for_update().get(consumer=consumer)
        final_id = _final_id(wait=wait_for_writers)
        if final_id is None:
            return 0
        # A fresh statement (READ COMMITTED): its snapshot sees every change up to final_id committed.
        pending = OrderChange.objects.filter(id__gt=cursor.last_id, id__lte=final_id).order_by("id")
        if fields is not None:
            pending = pending.values_list("id", *(f for f in fields if f != "id"), named=True)
        changes = list(pending[:batch_size])
        if not changes:
            return 0
        handle(changes)
        cursor.last_id = changes[-1].id
        cursor.save(update_fields=["last_id", "updated_at"])
    return len(changes)


def order_changes_drain(
    *, consumer: str, handle: Callable[[list], None], batch_size: int = DEFAULT_BATCH_SIZE,
    fields: Sequence[str] | None = None, progress: Callable[[int], None] | None = None, wait_for_writers: bool = True,
) -> int:
    """Call order_changes_consume until no change is ready; how many were handled. `progress` gets
    the running total after each batch (a command's progress bar)."""
    handled = 0
    while count := order_changes_consume(
        consumer=consumer, handle=handle, batch_size=batch_size, fields=fields, wait_for_writers=wait_for_writers
    ):
        handled += count
        if progress is not None:
            progress(handled)
    return handled
