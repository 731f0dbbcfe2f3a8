"""Referrals' reader of the order feed over an import's worth of changes: 1,000,000 newly paid
orders (200,000 customers) with their feed rows, as `bench_loyalty.py earn` seeds them, and
--pending referrals (default 2,000) waiting for their referee's first paid order.

    createdb -h 127.0.0.1 h_loyalty_bench   (the same database as bench_loyalty.py: it writes to it)
    DATABASE_URL=postgres://root@127.0.0.1:5432/h_loyalty_bench .venv/bin/python bench/bench_referrals_feed.py [--skip-seed]

First the bare-SQL floor: the same reads as one statement (every change's columns that the reader
reads, and the pending referrals of the referees paid in them), no writes. Then
referrals_feed_consume() over all the changes from the start of the feed (the measured figure): the
referrals it moves are written (qualified, then held or flagged). Each run makes its referrals
afresh, so a second run finds the same work."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from django.db import connection, transaction

from bench.bench_loyalty import seed_orders, sql, sql_one, timed  # first: its import sets Django up
from referrals.models import Referral
from referrals.services.codes import referral_code_for
from referrals.services.qualification import CONSUMER, referrals_feed_consume


def referrals_seed(pending: int) -> None:
    """One referrer and `pending` referrals of customers spread over the customer ids."""
    with transaction.atomic():
        sql("TRUNCATE referrals_referralevent, referrals_referral CASCADE")
        low, high = sql_one("SELECT MIN(id), MAX(id) FROM customers_customer")
        step = max(1, (high - low) // (pending + 1))
        code = referral_code_for(customer_id=low)
        Referral.objects.bulk_create(
            [Referral(referrer_id=low, referee_id=low + step * (n + 1), code=code, state=Referral.State.PENDING)
             for n in range(pending)]
        )


def floor() -> int:
    return sql_one(
        """SELECT (SELECT COUNT(*) FROM (SELECT id, order_id, customer_id, old_status, new_status
                                          FROM customers_orderchange) c),
                  (SELECT COUNT(*) FROM referrals_referral r WHERE r.state = 'pending' AND r.referee_id IN (
                       SELECT customer_id FROM customers_orderchange
                       WHERE new_status = 'paid' AND old_status IS DISTINCT FROM 'paid'))"""
    )


def consume_all() -> str:
    handled = 0
    while count := referrals_feed_consume():
        handled += count
    moved = Referral.objects.exclude(state=Referral.State.PENDING).count()
    return f"{handled:,} changes, {moved:,} referrals moved"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--pending", type=int, default=2_000)
    parser.add_argument("--skip-seed", action="store_true", help="use the orders already there")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("needs PostgreSQL (DATABASE_URL=postgres://...)")
    if not args.skip_seed:
        print(f"seeding {args.orders:,} paid orders over {args.customers:,} customers ...", flush=True)
        seed_orders(orders=args.orders, customers=args.customers)
    referrals_seed(args.pending)
    sql("DELETE FROM customers_orderfeedcursor WHERE consumer = %s", [CONSUMER])
    sql("ANALYZE")
    timed("bare-SQL floor (the changes' columns read, the pending referrals of paid referees found; "
          "no writes)", floor)
    timed(f"referrals_feed_consume() over the feed, {args.pending:,} pending referrals", consume_all)


if __name__ == "__main__":
    main()
