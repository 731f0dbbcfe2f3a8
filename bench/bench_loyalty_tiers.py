"""Benchmark of the loyalty programme's nightly tier downgrades and the admin's change preview at
1M members, on PostgreSQL (a database of its own: it writes to it).

    createdb -h 127.0.0.1 h_loyaltyfeatures_bench
    DATABASE_URL=postgres://root@127.0.0.1:5432/h_loyaltyfeatures_bench .venv/bin/python manage.py migrate
    .venv/bin/python bench/bench_loyalty_tiers.py --database-url postgres://root@127.0.0.1:5432/h_loyaltyfeatures_bench

Seeds (in SQL) N members with a loyalty account each, two paid orders per member in the last ten
months and the earn entries they made, four tiers, and member states that exercise every branch:
members above the tier they qualify for, with a downgrade due in the past, due later or not yet
scheduled, and some on a manual hold. Then, each run in a transaction that is rolled back so the
runs see the same state:
- tiers_downgrade(): the set-based evaluation (measured);
- change_preview() of raising one tier's threshold (measured; reads only);
- the floor: the bare SQL aggregate both are built on (every member's qualifying points in the
  window, GROUP BY account), consumed in the server: no tiers, no writes;
- with --quiet-night: one downgrade run committed, then the next run timed (nothing left to change:
  the cost of a night when few members move, the usual case);
- with --with-old: the in-memory evaluations they replaced (tests/loyalty/reference.py).
The load average (`uptime`) is printed with the figures: the machine is shared (2 cores)."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from django_setup import setup_django

BENCH_DB = "postgres://root@127.0.0.1:5432/h_loyaltyfeatures_bench"
TIERS = [("Bronze", 0, "1.00"), ("Silver", 300, "1.25"), ("Gold", 600, "1.50"), ("Platinum", 900, "2.00")]


def sql(statement: str, params=None) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.rowcount


def seed(members: int) -> None:
    from django.db import transaction

    start = time.perf_counter()
    with transaction.atomic():
        sql("""TRUNCATE loyalty_lotallocation, loyalty_voucher, loyalty_pointlot, loyalty_ledgerentry,
               loyalty_tierchange, loyalty_loyaltyaccount, loyalty_tier, customers_orderchange,
               customers_orderfeedcursor, customers_order, customers_customer CASCADE""")
        sql("""INSERT INTO customers_customer (external_id, first_name, last_name, phone, country, created_at,
                   updated_at, email_opt_in, language)
               SELECT 'LT' || g, '', '', '', '', now(), now(), false, 'en' FROM generate_series(1, %s) g""", [members])
        for name, threshold, multiplier in TIERS:
            sql("INSERT INTO loyalty_tier (name, threshold, multiplier, benefits) VALUES (%s, %s, %s, '')",
                [name, threshold, multiplier])
        # Tiers by member: none, or one of the four, regardless of what they qualify for.
        sql("""INSERT INTO loyalty_loyaltyaccount (customer_id, balance, debt, tier_id, tier_held_until,
                   downgrade_due_at, created_at)
               SELECT c.id, 0, 0,
                      CASE WHEN (c.id * 31) %% 5 > 0 THEN (SELECT t.id FROM loyalty_tier t ORDER BY t.threshold
                                                            OFFSET (c.id * 31) %% 5 - 1 LIMIT 1) END,
                      CASE WHEN c.id %% 20 = 0 THEN CURRENT_DATE + 30 END,
                      CASE c.id %% 3 WHEN 0 THEN now() - interval '1 day' WHEN 1 THEN NULL
                           ELSE now() + interval '10 days' END,
                      now()
               FROM customers_customer c""", [])
        sql("""INSERT INTO customers_order (external_id, customer_id, ordered_at, amount, currency, status,
                   created_at, updated_at)
               SELECT 'LO' || g, c.min_id + (g %% %s), now() - (g %% 300) * interval '1 day',
                      ((g::bigint * 7919) %% 49900 + 100) / 100.0, 'USD', 'paid', now(), now()
               FROM generate_series(1, %s) g, (SELECT MIN(id) AS min_id FROM customers_customer) c""",
            [members, 2 * members])
        sql("""INSERT INTO loyalty_ledgerentry (account_id, kind, points, balance_after, reason, source, order_id,
                   idempotency_key, rate, base_amount, unrecovered, created_at)
               SELECT a.id, 'earn', FLOOR(o.amount), FLOOR(o.amount), '', 'order', o.id, 'order:' || o.id || ':earn',
                      1, o.amount, 0, o.ordered_at
               FROM customers_order o JOIN loyalty_loyaltyaccount a ON a.customer_id = o.customer_id""")
        sql("""UPDATE loyalty_loyaltyaccount a SET balance = s.total
               FROM (SELECT account_id, SUM(points) AS total FROM loyalty_ledgerentry GROUP BY account_id) s
               WHERE a.id = s.account_id""")
        sql("INSERT INTO loyalty_earningrule (currency, points_per_unit, active) VALUES ('USD', 1, true)"
            " ON CONFLICT (currency) DO NOTHING")
    sql("VACUUM ANALYZE loyalty_ledgerentry")
    sql("VACUUM ANALYZE loyalty_loyaltyaccount")
    print(f"seeded {members:,} members, {2 * members:,} orders and entries in {time.perf_counter() - start:.0f} s",
          flush=True)


def timed(label: str, work, *, rollback: bool = False):
    from django.db import transaction

    from core.transactions import rolled_back

    start = time.perf_counter()
    with rolled_back() if rollback else transaction.atomic():
        result = work()
        elapsed = time.perf_counter() - start
    print(f"  {label}: {elapsed:.2f} s  {result}", flush=True)
    return elapsed, result


def floor() -> int:
    from django.utils import timezone

    from loyalty.services.program import _add_months

    since = _add_months(timezone.now(), -12)
    # The aggregate both evaluations start from, in the server, nothing sent back but one row.
    return sql_one(
        """SELECT COUNT(*) FROM (SELECT account_id, SUM(points) FROM loyalty_ledgerentry
           WHERE created_at >= %s AND order_id IS NOT NULL AND kind = 'earn' GROUP BY account_id) s""",
        [since],
    )


def sql_one(statement: str, params=None):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=BENCH_DB)
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-seed", action="store_true")
    parser.add_argument("--with-old", action="store_true", help="also time the in-memory evaluations replaced")
    parser.add_argument(
        "--quiet-night", action="store_true",
        help="commit one downgrade run, then time the next night's (a retry at the same time): nothing left to change",
    )
    args = parser.parse_args()
    setup_django(args.database_url)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

    from loyalty.models import Tier
    from loyalty.services.preview import change_preview
    from loyalty.services.tiers import tiers_downgrade

    if not args.skip_seed:
        seed(args.members)
    gold = Tier.objects.get(name="Gold")
    gold.threshold += 150  # the proposal previewed: Gold harder to reach

    print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(), flush=True)
    best = {}
    for run in range(1, args.runs + 1):
        print(f"run {run}:", flush=True)
        best.setdefault("floor", []).append(timed("floor (bare SQL aggregate)", floor)[0])
        best.setdefault("downgrade", []).append(timed("tiers_downgrade", tiers_downgrade, rollback=True)[0])
        best.setdefault("preview", []).append(
            timed("change_preview", lambda: {k: v for k, v in change_preview(tier=gold).items() if k.startswith("moving")})[0]
        )
    if args.quiet_night:
        timed("tiers_downgrade, committed", tiers_downgrade)
        best["quiet-night downgrade"] = [
            timed("tiers_downgrade, the next run (nothing to change)", tiers_downgrade, rollback=True)[0]
        ]
        best.setdefault("floor", []).append(timed("floor (bare SQL aggregate)", floor)[0])
    if args.with_old:
        from tests.loyalty.reference import reference_change_preview, reference_tiers_downgrade

        best["old downgrade"] = [timed("in-memory tiers_downgrade (before)", reference_tiers_downgrade, rollback=True)[0]]
        best["old preview"] = [
            timed("in-memory change_preview (before)",
                  lambda: {k: v for k, v in reference_change_preview(tier=gold).items() if k.startswith("moving")})[0]
        ]
    print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(), flush=True)
    floor_best = min(best["floor"])
    print(f"best of {args.runs}: floor {floor_best:.2f} s", flush=True)
    for name, times in best.items():
        if name != "floor":
            print(f"  {name}: {min(times):.2f} s = {min(times) / floor_best:.1f}x the floor", flush=True)


if __name__ == "__main__":
    main()
