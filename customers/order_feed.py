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

Each consumer has a cursor row, locked while it reads, so one handler runs at a time per consumer and
its writes commit with the cursor's advance, or neither does (a handler that raises consumes nothing).

Why (xid, id) and not just id: ids are taken when a row is inserted but become visible when its
transaction commits, so a writer that started earlier can commit a lower id after a higher one was
read; a cursor "id > last" would skip it for ever. Every row stores its writer's transaction id
(xid, set by the database), and the consumer reads only rows of transactions older than the oldest
one still running (pg_snapshot_xmin): no such row can appear later. It reads them in (xid, id)
order, which is therefore final. A change waits for the oldest running writer to end, never longer.
On SQLite (one writer at a time) xid is 0 and the order is the id's."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from django.db import connection, transaction

from customers.models import Order, OrderChange, OrderFeedCursor

DEFAULT_BATCH_SIZE = 1000


def order_changes_record(*, changes: Sequence[tuple[Order | None, Order]], changed_at) -> int:
    """Add a feed row for each (old, new) pair, old None for a new order, with one INSERT. Call it
    in the transaction that wrote the orders (new ones with their pk set)."""
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


# The columns an INSERT INTO the feed fills (xid and id come from the database), for set-based writers.
FEED_COLUMNS = "order_id, customer_id, old_status, new_status, old_amount, new_amount, currency, changed_at"


def order_feed_table() -> str:
    return connection.ops.quote_name(OrderChange._meta.db_table)


def _finished_below() -> str:
    """SQL: rows of transactions that have all ended (PostgreSQL); SQLite has one writer at a time."""
    if connection.vendor == "postgresql":
        return " AND xid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
    return ""


def order_changes_consume(
    *, consumer: str, handle: Callable[[list[OrderChange]], None], batch_size: int = DEFAULT_BATCH_SIZE
) -> int:
    """Hand the next changes `consumer` has not seen (at most batch_size, oldest first) to `handle`,
    and advance its cursor in the same transaction. Returns how many were handed (0: none ready)."""
    with transaction.atomic():
        OrderFeedCursor.objects.bulk_create([OrderFeedCursor(consumer=consumer)], ignore_conflicts=True)
        cursor = OrderFeedCursor.objects.select_for_update().get(consumer=consumer)
        changes = list(
            OrderChange.objects.raw(
                f"SELECT * FROM {order_feed_table()} WHERE (xid, id) > (%s, %s){_finished_below()}"
                f" ORDER BY xid, id LIMIT %s",
                [cursor.last_xid, cursor.last_id, batch_size],
            )
        )
        if not changes:
            return 0
        handle(changes)
        cursor.last_xid, cursor.last_id = changes[-1].xid, changes[-1].id
        cursor.save(update_fields=["last_xid", "last_id", "updated_at"])
    return len(changes)
