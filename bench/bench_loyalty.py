"""Benchmarks of the loyalty programme on PostgreSQL (a database of its own: it writes to it).

    createdb -h 127.0.0.1 h_loyalty_bench
    DATABASE_URL=postgres://root@127.0.0.1:5432/h_loyalty_bench .venv/bin/python manage.py migrate
    DATABASE_URL=postgres://root@127.0.0.1:5432/h_loyalty_bench .venv/bin/python bench/bench_loyalty.py earn
    ... bench_loyalty.py expire      (after earn: the lots it made, all past their expiry)
    ... bench_loyalty.py redeem      (gunicorn + 50 concurrent clients on 1M accounts / 10M entries;
                                      needs wrk: apt-get install wrk)

earn: N newly imported paid orders (default 1,000,000 over 200,000 customers) with their order-feed
rows, as the import writes them. First the bare-SQL floor: the same writes (accounts, entries,
lots, balances) as single statements over the whole set, no feed, no batches, no locks, no
idempotency check, with the foreign-key checks a commit would run (SET CONSTRAINTS ALL IMMEDIATE),
rolled back (--floor-only stops there). Then loyalty's feed consumer earns for all of them (the
measured figure), then the earning service alone (orders_earn over the same ids, ledger emptied).
--tiers: with three tiers (thresholds 500, 1,500 and 5,000 points, multiplier 1, so the same points),
so every batch also moves its members up a tier as they qualify; without it, no tiers.

expire: every lot made by `earn` (or, without one, by the floor's statements, committed) is set past
its expiry; the floor (the same writes as bare statements, constraints checked, rolled back), then
lots_expire() --repeat times, each committed; between runs the expiry is undone (allocations and
expire entries deleted, lots refilled, balances restored, VACUUM ANALYZE), so each run expires the
same 1,000,000 lots.

Every figure is printed with the machine's load average (it is shared)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-key-that-signs-nothing")

import django

django.setup()

from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from customers.models import Customer  # noqa: E402

LOYALTY_TABLES = (
    "loyalty_lotallocation, loyalty_voucher, loyalty_pointlot, loyalty_ledgerentry, loyalty_tierchange, "
    "loyalty_loyaltyaccount"
)


def sql(statement: str, params=None) -> int:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.rowcount


def load() -> str:
    return "load " + " ".join(f"{value:.1f}" for value in os.getloadavg())


def cpu_seconds() -> float:
    """CPU used so far by this process and its database backend (the server is on this machine):
    steadier than the wall clock when other work shares the cores."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        backend = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        backend = float("nan")
    return time.process_time() + backend


def checkpoint() -> None:
    """A checkpoint first, so each figure starts with the same WAL state: a checkpoint falling inside
    a run (page images written again after it) made the same run up to a half slower."""
    try:
        with transaction.atomic():
            sql("CHECKPOINT")
    except Exception as error:  # needs a superuser or pg_checkpoint: measure without it
        print(f"  (no CHECKPOINT before the run: {error})".strip(), flush=True)


def timed(label: str, work) -> float:
    checkpoint()
    before, cpu_before = load(), cpu_seconds()
    start = time.perf_counter()
    result = work()
    elapsed = time.perf_counter() - start
    print(f"{label}: {elapsed:.2f} s, {cpu_seconds() - cpu_before:.1f} CPU-s ({result}) "
          f"[{before} before, {load()} after]", flush=True)
    return elapsed


def seed_orders(*, orders: int, customers: int) -> None:
    """Customers, paid orders and their feed rows, generated in SQL (the import's own speed is
    bench_import.py's subject); the feed cursor of loyalty set to before them."""
    with transaction.atomic():
        sql(f"TRUNCATE {LOYALTY_TABLES}, customers_orderchange, customers_orderfeedcursor, customers_order, "
            "customers_customer CASCADE")
        # Customer.language comes with the outbox: filled when the column is there.
        language = any(f.name == "language" for f in Customer._meta.fields)
        sql(f"""INSERT INTO customers_customer (external_id, first_name, last_name, phone, country, created_at,
                    updated_at, email_opt_in{", language" if language else ""})
                SELECT 'BC' || g, '', '', '', '', now(), now(), false{", ''" if language else ""}
                FROM generate_series(1, %s) g""",
            [customers])
    with transaction.atomic():
        sql("""INSERT INTO customers_order (external_id, customer_id, ordered_at, amount, currency, status,
                   created_at, updated_at)
               SELECT 'BO' || g, c.min_id + (g %% %s), now() - (g %% 700) * interval '1 day',
                      ((g::bigint * 7919) %% 49900 + 100) / 100.0, 'USD', 'paid', now(), now()
               FROM generate_series(1, %s) g, (SELECT MIN(id) AS min_id FROM customers_customer) c""",
            [customers, orders])
        sql("""INSERT INTO customers_orderchange (order_id, customer_id, old_status, new_status, old_amount,
                   new_amount, currency, changed_at)
               SELECT id, customer_id, NULL, status, NULL, amount, currency, now() FROM customers_order""")
    sql("ANALYZE")


def bench_earn(args) -> None:
    from loyalty.models import EarningRule, Tier
    from loyalty.services.feed import loyalty_feed_consume

    EarningRule.objects.update_or_create(currency="USD", defaults={"points_per_unit": 1, "active": True})
    if args.skip_seed:
        sql(f"TRUNCATE {LOYALTY_TABLES}")
        sql("DELETE FROM customers_orderfeedcursor WHERE consumer = 'loyalty'")
        sql("ANALYZE")
    else:
        print(f"seeding {args.orders:,} paid orders over {args.customers:,} customers ...", flush=True)
        seed_orders(orders=args.orders, customers=args.customers)
    # Tiers (--tiers): every batch then moves its members up as their figures cross the thresholds.
    Tier.objects.all().delete()
    if args.tiers:
        for name, threshold in [("Silver", 500), ("Gold", 1500), ("Platinum", 5000)]:
            Tier.objects.create(name=name, threshold=threshold)
    earn_floor()
    if args.floor_only:
        return
    waited = [0.0]

    def consume_all():
        # The feed hands over a change once every older transaction on the server has ended (see
        # customers/order_feed.py): time spent waiting for other databases' work is reported apart.
        handled = 0
        while handled < args.orders:
            count = loyalty_feed_consume()
            handled += count
            if not count:
                time.sleep(0.5)
                waited[0] += 0.5
        return handled

    elapsed = timed(f"earn through the order feed ({args.orders:,} orders)", consume_all)
    print(f"  of which waiting for other transactions on the server: {waited[0]:.1f} s; "
          f"earning: {elapsed - waited[0]:.1f} s")
    sql("ANALYZE")
    counts = sql_one("SELECT COUNT(*), SUM(points) FROM loyalty_ledgerentry")
    print(f"  entries, points: {counts}")
    timed("balance check (every account against its ledger and lots)", _check)
    # The earning service alone, without the feed's reading of its rows: the same orders again
    # into an empty ledger, in the service's own batches.
    from customers.models import Order
    from loyalty.services.earning import orders_earn

    sql(f"TRUNCATE {LOYALTY_TABLES}")
    order_ids = list(Order.objects.values_list("id", flat=True))
    timed(f"earning service alone, orders_earn() ({len(order_ids):,} orders)", lambda: orders_earn(order_ids=order_ids))


def earn_floor() -> None:
    """The floor: the same writes as bare statements over the whole set into the real tables (their
    indexes, foreign keys and WAL), no feed, no batches, no locks, no idempotency; rolled back."""
    with transaction.atomic():
        sql(f"TRUNCATE {LOYALTY_TABLES}")

        def floor():
            rows = earn_as_bare_statements(now=timezone.now())
            sql("SET CONSTRAINTS ALL IMMEDIATE")  # the deferred foreign-key checks, as a commit would
            return rows

        timed("bare-SQL floor (accounts, entries, lots, balances as 4 statements, FK checks; no feed, locks, "
              "idempotency)", floor)
        transaction.set_rollback(True)


def earn_as_bare_statements(*, now) -> int:
    """Every order's earn, lot and balance as four statements over the whole set (lots spendable at
    once and expiring `now`)."""
    sql("""INSERT INTO loyalty_loyaltyaccount (customer_id, balance, debt, created_at)
           SELECT DISTINCT customer_id, 0, 0, %s FROM customers_order""", [now])
    rows = sql(
        """INSERT INTO loyalty_ledgerentry (account_id, kind, points, balance_after, reason, source, order_id,
               idempotency_key, rate, base_amount, unrecovered, created_at)
           SELECT a.id, 'earn', FLOOR(o.amount), 0, '', 'order', o.id, NULL,
                  1, o.amount, 0, %s
           FROM customers_order o JOIN loyalty_loyaltyaccount a ON a.customer_id = o.customer_id""",
        [now],
    )
    sql("""INSERT INTO loyalty_pointlot (account_id, entry_id, points, remaining, available_at, expires_at)
           SELECT account_id, id, points, points, %s, %s FROM loyalty_ledgerentry""", [now, now])
    sql("""UPDATE loyalty_loyaltyaccount SET balance = s.total
           FROM (SELECT account_id, SUM(points) AS total FROM loyalty_ledgerentry GROUP BY account_id) s
           WHERE loyalty_loyaltyaccount.id = s.account_id""")
    return rows


def _check():
    from loyalty.services.expiry import ledger_balance_check

    return f"{len(ledger_balance_check().mismatches)} differences"


def sql_one(statement: str):
    with connection.cursor() as cursor:
        cursor.execute(statement)
        return cursor.fetchone()


def bench_expire(args) -> None:
    from loyalty.services.expiry import lots_expire

    if not sql_one("SELECT EXISTS (SELECT 1 FROM loyalty_pointlot)")[0]:
        # No earn run before: the same state by the floor's statements, committed.
        earn_as_bare_statements(now=timezone.now())
        sql("VACUUM ANALYZE")
    lots = sql("UPDATE loyalty_pointlot SET expires_at = now() - interval '1 day' WHERE remaining > 0")
    sql("ANALYZE loyalty_pointlot")
    print(f"{lots:,} lots past their expiry", flush=True)
    with transaction.atomic():
        # The floor first, rolled back: the same writes as bare statements.
        def floor():
            at = timezone.now()
            sql("""INSERT INTO loyalty_ledgerentry (account_id, kind, points, balance_after, reason, source,
                       idempotency_key, unrecovered, created_at)
                   SELECT account_id, 'expire', -SUM(remaining), 0, '', 'system', 'floor', 0, %s
                   FROM loyalty_pointlot WHERE remaining > 0 AND expires_at <= %s GROUP BY account_id""", [at, at])
            sql("""UPDATE loyalty_loyaltyaccount a SET balance = a.balance - s.total
                   FROM (SELECT account_id, SUM(remaining) AS total FROM loyalty_pointlot
                         WHERE remaining > 0 AND expires_at <= %s GROUP BY account_id) s
                   WHERE a.id = s.account_id""", [at])
            emptied = sql("UPDATE loyalty_pointlot SET remaining = 0 WHERE remaining > 0 AND expires_at <= %s", [at])
            sql("SET CONSTRAINTS ALL IMMEDIATE")
            return emptied

        timed("bare-SQL floor (entries, balances, lots; no allocations, no locks)", floor)
        transaction.set_rollback(True)
    figures = []
    for run in range(args.repeat):
        if run:
            _expiry_undo()
        figures.append(timed(f"lots_expire ({lots:,} lots), run {run + 1}", lots_expire))
        print(f"  check: {_check()}")
    print(f"lots_expire: {min(figures):.1f}-{max(figures):.1f} s over {len(figures)} runs")


def _expiry_undo() -> None:
    """Back to the state before the expiry: the bench's lots were never spent, so full again."""
    with transaction.atomic():
        sql("DELETE FROM loyalty_lotallocation")
        sql("DELETE FROM loyalty_ledgerentry WHERE kind = 'expire'")
        sql("UPDATE loyalty_pointlot SET remaining = points WHERE remaining <> points")
        sql("""UPDATE loyalty_loyaltyaccount a SET balance = s.total
               FROM (SELECT account_id, SUM(points) AS total FROM loyalty_pointlot GROUP BY account_id) s
               WHERE a.id = s.account_id""")
    sql("VACUUM ANALYZE loyalty_lotallocation, loyalty_ledgerentry, loyalty_pointlot, loyalty_loyaltyaccount")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["earn", "expire", "redeem"])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--entries", type=int, default=10_000_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=20, help="length of each load (redeem)")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers (redeem)")
    parser.add_argument("--worker-class", default="sync", help="gunicorn worker class (redeem): sync, gthread")
    parser.add_argument("--threads", type=int, default=1, help="threads per gunicorn worker (redeem, gthread)")
    parser.add_argument("--floor-only", action="store_true", help="earn: only the bare-SQL floor")
    parser.add_argument("--tiers", action="store_true", help="earn: with three tiers (multiplier 1), upgrades per batch")
    parser.add_argument("--repeat", type=int, default=1, help="runs of lots_expire (expire)")
    parser.add_argument("--skip-seed", action="store_true", help="use the orders (earn) or accounts (redeem) already there")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("the loyalty benchmarks need PostgreSQL (DATABASE_URL=postgres://...)")
    {"earn": bench_earn, "expire": bench_expire, "redeem": bench_redeem}[args.what](args)


def bench_redeem(args) -> None:
    from bench.bench_loyalty_redeem import run

    run(args)


if __name__ == "__main__":
    main()
