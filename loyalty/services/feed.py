"""Loyalty's reader of the order feed (customers.order_feed): whichever path wrote an order (API,
import, staff form, admin), its change reaches here once, inside the transaction that advances
loyalty's cursor, so points and cursor commit together or not at all.

A batch is handled set-based: every newly paid order of it earns through one orders_earn call (a
handful of statements for thousands of orders), and the customers on their first paid order get
the first-order bonus through one first_order_bonuses_award call. Refunds are rarer and go one by one through
order_refund_reverse, keyed by the change, so a change handled twice reverses once:
- paid -> refunded or cancelled: a full refund;
- paid -> paid with a lower amount: a partial refund of the difference."""

from __future__ import annotations

from customers.models import Order
from customers.order_feed import order_changes_drain, order_changes_values
from loyalty.services.bonus import first_order_bonuses_award
from loyalty.services.earning import orders_earn
from loyalty.services.refunds import order_refund_reverse

CONSUMER = "loyalty"
FEED_BATCH_SIZE = 25_000
PAID = Order.Status.PAID
# What the handler reads of every change (besides its id): fewer columns, less to convert per row.
# The amounts matter only to a paid order whose amount changed, and are read for those alone
# (order_changes_values): two Decimals loaded for each of an import's million new orders were wasted.
CHANGE_FIELDS = ("order_id", "old_status", "new_status")


def order_changes_handle(changes: list) -> None:
    """`changes`: the feed's rows (named tuples of CHANGE_FIELDS: no model built per change)."""
    paid = [c.order_id for c in changes if c.new_status == PAID and c.old_status != PAID]
    if paid:
        orders_earn(order_ids=paid)
        first_order_bonuses_award(order_ids=paid)
    repriced = [c for c in changes if c.old_status == PAID and c.new_status == PAID]
    amounts = order_changes_values(repriced, "old_amount", "new_amount") if repriced else {}
    for change in changes:
        if change.old_status != PAID:
            continue
        if change.new_status != PAID:
            order_refund_reverse(order_id=change.order_id, refund_key=f"change:{change.id}")
            continue
        old_amount, new_amount = amounts[change.id]
        if old_amount is not None and new_amount < old_amount:
            order_refund_reverse(
                order_id=change.order_id, refund_key=f"change:{change.id}", refunded_amount=old_amount - new_amount
            )


def loyalty_feed_consume(*, batch_size: int = FEED_BATCH_SIZE, progress=None, yield_to_writers: bool = False) -> int:
    """Handle every order change ready in the feed; how many were handled. `yield_to_writers`
    (the every-minute task): stop, handling nothing more, whenever a feed writer is running, and
    come back on the next run: an import is not slowed by loyalty's waits or its work beside it
    (its points come after it), where the waiting consumer queued the import's writers behind it
    for every batch."""
    return order_changes_drain(
        consumer=CONSUMER, handle=order_changes_handle, batch_size=batch_size, fields=CHANGE_FIELDS, progress=progress,
        wait_for_writers=not yield_to_writers,
    )
