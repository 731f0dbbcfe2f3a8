"""Benchmark of the CSV order import: 1,000,000 orders over 200,000 customers, fresh and re-run.

Run against a PostgreSQL database of its own (it writes to it):

    createdb -h 127.0.0.1 crm_bench
    DATABASE_URL=postgres://root@127.0.0.1:5432/crm_bench .venv/bin/python manage.py migrate
    DATABASE_URL=postgres://root@127.0.0.1:5432/crm_bench .venv/bin/python bench/bench_import.py

Options: --orders N --customers N --file PATH --keep (keep existing orders instead of starting empty),
--writers N (connections writing at once, default as the import), --chunk-size N.
The first run imports into an empty orders table (all created, customers created from customer_id),
the second imports the same file again (every row found, nothing written) and the third a copy of
the file with every amount changed (every row updated).

--loyalty: instead, the fresh import twice in the same run, first with nothing reading the order
feed, then with loyalty's feed consumer running beside it in a second process (earning for the paid
orders as their changes become final, as the every-minute task does when it finds work), and the
second's rows/s against the first's; then how long loyalty takes to catch up after the import."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import random
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Production settings (DEBUG off) are what we measure; they need a key, and this one signs nothing.
os.environ.setdefault("SECRET_KEY", "bench-only-key-that-signs-nothing")

import django

django.setup()

from django.db import connection, transaction  # noqa: E402

from customers.models import Customer, Order  # noqa: E402
from customers.services.imports import DEFAULT_CHUNK_SIZE, import_csv  # noqa: E402
from customers.services.imports.service import DEFAULT_WRITERS  # noqa: E402

STATUSES = ["paid"] * 18 + ["refunded", "cancelled"]


def write_orders(path: Path, *, orders: int, customers: int, seed: int, amount_delta: int = 0) -> None:
    rng = random.Random(seed)
    start = dt.datetime(2023, 1, 1, tzinfo=dt.UTC)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["customer_id", "order_id", "ordered_at", "amount", "currency", "status"])
        for n in range(orders):
            ordered_at = start + dt.timedelta(seconds=rng.randrange(2 * 365 * 86400))
            writer.writerow(
                [
                    f"C{rng.randrange(customers):07d}",
                    f"O{n:08d}",
                    ordered_at.isoformat(timespec="seconds"),
                    f"{(rng.randrange(100, 50000) + amount_delta) / 100:.2f}",
                    "EUR" if n % 10 == 0 else "USD",
                    rng.choice(STATUSES),
                ]
            )


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (every process: this one and PostgreSQL's).

    Wall-clock rows/s depend on the machine and what else runs on it; the CPU the import costs is
    the steadier figure to compare changes by. Linux only (/proc/stat)."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
    except OSError:
        return float("nan")
    user, nice, system, _idle, _iowait, irq, softirq = fields[:7]
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def timed_import(label: str, path: Path, *, writers: int, chunk_size: int) -> float:
    """Import the file, print the figures; the rows per second."""
    load_before = os.getloadavg()[0]
    busy_before = machine_busy_seconds()
    started = time.perf_counter()
    result = import_csv(kind="orders", file=path, writers=writers, chunk_size=chunk_size)
    seconds = time.perf_counter() - started
    busy = machine_busy_seconds() - busy_before
    summary = result.summary()
    print(
        f"{label}: {summary['rows']:,} rows in {seconds:.1f} s = {summary['rows'] / seconds:,.0f} rows/s "
        f"[{writers} writer(s), chunks of {chunk_size:,}; load average {load_before:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after, on {os.cpu_count()} CPUs; machine busy {busy:.1f} CPU-s] "
        f"(created {summary['created']:,}, updated {summary['updated']:,}, unchanged {summary['unchanged']:,}, "
        f"rejected {summary['rejected']:,}, customers created {summary['customers_created']:,})",
        flush=True,
    )
    return summary["rows"] / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--file", type=Path, default=Path("/tmp/bench_orders.csv"))
    parser.add_argument("--keep", action="store_true", help="do not empty the orders and customers tables first")
    parser.add_argument("--writers", type=int, default=DEFAULT_WRITERS)
    parser.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE)
    parser.add_argument("--loyalty", action="store_true", help="the fresh import without and with loyalty's consumer")
    parser.add_argument("--consume-loyalty", action="store_true", help=argparse.SUPPRESS)  # the consumer process
    parser.add_argument(
        "--ceiling",
        action="store_true",
        help="also time one INSERT ... SELECT of as many generated orders into the same table (rolled back): "
        "what this database and schema manage without any import work",
    )
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("The benchmark measures PostgreSQL: set DATABASE_URL=postgres://... (a database of its own).")
    if args.consume_loyalty:
        consume_loyalty_until_stopped()
        return

    changed = args.file.with_name(args.file.stem + "_changed.csv")
    started = time.perf_counter()
    write_orders(args.file, orders=args.orders, customers=args.customers, seed=args.seed)
    if not args.loyalty:  # same orders, every amount one cent more: all rows are updates
        write_orders(changed, orders=args.orders, customers=args.customers, seed=args.seed, amount_delta=1)
    size = args.file.stat().st_size / 1e6
    print(f"wrote {args.orders:,} orders over {args.customers:,} customers to {args.file} ({size:.0f} MB) "
          f"in {time.perf_counter() - started:.1f} s", flush=True)

    options = {"writers": args.writers, "chunk_size": args.chunk_size}
    if args.loyalty:
        import_with_and_without_loyalty(args.file, options)
        return
    if not args.keep:
        empty_orders()
    timed_import("fresh import (all new)", args.file, **options)
    timed_import("re-run, same file (all unchanged)", args.file, **options)
    timed_import("re-run, changed amounts (all updated)", changed, **options)
    print(f"orders in the database: {Order.objects.count():,}; customers: {Customer.objects.count():,}")
    if args.ceiling:
        insert_ceiling(args.orders)


def empty_orders() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {Order._meta.db_table}, {Customer._meta.db_table} CASCADE")
        if "customers_orderchange" in connection.introspection.table_names(cursor):  # the order feed
            cursor.execute("TRUNCATE customers_orderchange, customers_orderfeedcursor")
        if "loyalty_pointlot" in connection.introspection.table_names(cursor):
            # Lots and allocations keep plain ids (no foreign key): a CASCADE does not reach them.
            cursor.execute("TRUNCATE loyalty_lotallocation, loyalty_voucher, loyalty_pointlot, loyalty_ledgerentry, "
                           "loyalty_tierchange, loyalty_loyaltyaccount")


def import_with_and_without_loyalty(path: Path, options: dict) -> None:
    from customers.models import OrderChange, OrderFeedCursor
    from loyalty.models import EarningRule

    for currency in ("USD", "EUR"):
        EarningRule.objects.update_or_create(currency=currency, defaults={"points_per_unit": 1, "active": True})
    empty_orders()
    alone = timed_import("fresh import, nothing reading the feed", path, **options)
    empty_orders()
    consumer = subprocess.Popen([sys.executable, __file__, "--consume-loyalty"])
    try:
        time.sleep(3)  # its Django start-up, before the import begins
        beside = timed_import("fresh import, loyalty's feed consumer running beside it", path, **options)
        ended = time.perf_counter()
        last = OrderChange.objects.order_by("-id").values_list("id", flat=True).first()
        while OrderFeedCursor.objects.filter(consumer="loyalty", last_id__gte=last).count() == 0:
            time.sleep(0.2)
        caught_up = time.perf_counter() - ended
    finally:
        consumer.terminate()
        consumer.wait(timeout=30)
    print(f"with loyalty: {beside / alone:.1%} of the rows/s without ({beside:,.0f} / {alone:,.0f}); "
          f"loyalty caught up {caught_up:.1f} s after the import ended; load {os.getloadavg()}", flush=True)


def consume_loyalty_until_stopped() -> None:
    from loyalty.services.feed import loyalty_feed_consume

    while True:
        # As the every-minute task calls it (loyalty.tasks.loyalty_feed), only more often.
        if not loyalty_feed_consume(yield_to_writers=True):
            time.sleep(0.2)


def insert_ceiling(orders: int) -> None:
    """One set-based INSERT of generated orders for the existing customers, then a rollback."""
    with transaction.atomic(), connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute(
            f"INSERT INTO {Order._meta.db_table} (external_id, customer_id, ordered_at, amount, currency, status,"
            f" created_at, updated_at)"
            f" SELECT 'X' || g, ids.a[1 + g %% cardinality(ids.a)], now() - random() * interval '700 days',"
            f" round((random() * 500)::numeric, 2), 'USD', 'paid', now(), now()"
            f" FROM generate_series(1, %s) g, (SELECT array_agg(id) AS a FROM {Customer._meta.db_table}) ids",
            [orders],
        )
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the deferred foreign-key checks, as a commit would
        seconds = time.perf_counter() - started
        transaction.set_rollback(True)
    print(f"ceiling, plain INSERT ... SELECT of {orders:,} generated orders: {seconds:.1f} s = "
          f"{orders / seconds:,.0f} rows/s (rolled back)")


if __name__ == "__main__":
    main()
