"""Benchmark of the customer list's value and health sorts (historic value, predicted CLV, last order,
health score), its RFM segment and lifecycle stage filters at a million customers: a page, the next
and back, against the bare SQL floor.

Run against a PostgreSQL database of its own (it replaces the customers and values in it):

    createdb -h 127.0.0.1 crm_search
    DATABASE_URL=postgres://root@127.0.0.1:5432/crm_search DEBUG=true .venv/bin/python manage.py migrate
    .venv/bin/python bench/bench_list_values.py postgres://root@127.0.0.1:5432/crm_search

Unless --keep, it fills --customers customers (bench_search.fill) and one value row each, in one SQL
statement (and one health and one stage row each, set-based too; with --keep those are filled when
there are none): about 30% never bought (no prediction, no last order), the rest with spread-out values,
twelve RFM segments of uneven size. The "floor" is the same page as one hand-written SQL query
(the value index walked, customers joined by primary key), without Django or the tags prefetch.
Times are the best of --repeat, in milliseconds per page."""

from __future__ import annotations

import argparse
import sys
import time

from bench_search import best_of, fill
from django_setup import setup_django

SORTS = ["-historic_value", "historic_value", "-predicted_clv", "predicted_clv", "-last_order", "last_order", "-health", "health", "-created"]
SEGMENTS = ["hibernating", "champions", "cannot_lose"]  # common, middling, rare
STAGES = ["active", "at_risk", "churned"]  # common, middling, rare


def fill_values(customers: int) -> None:
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE lifecycle_customervalue")
        cursor.execute(
            "INSERT INTO lifecycle_clvrun (as_of, time_unit, horizon_months, annual_discount_rate, churn_days, status,"
            " created_at, n_customers, n_purchasers, n_triples, lifespans, rfm_cutpoints, timings, message, error, trigger)"
            " VALUES (current_date, 'week', 12, 0.1, 365, 'succeeded', now(), %s, 0, 0, '{}', '{}', '{}', '', '', 'command')"
            " RETURNING id",
            [customers],
        )
        run_id = cursor.fetchone()[0]
        # h: a hash of the id in [0, 1); buyers are the 70% with h >= 0.3.
        cursor.execute(
            "INSERT INTO lifecycle_customervalue (customer_id, run_id, orders_count, revenue, refunds, historic_value, aov,"
            " purchase_frequency, lifespan_years, formula_clv, frequency, recency, \"T\", monetary_value, p_alive,"
            " expected_purchases, expected_order_value, predicted_clv, r_score, f_score, m_score, rfm_segment, computed_at)"
            " SELECT id, %s, b * (1 + (h * 1000)::int %% 9), b * round((h * 9973)::numeric %% 900, 2), 0,"
            "  b * round((h * 9973)::numeric %% 900, 2), b * round((h * 7919)::numeric %% 120, 2), b * 2.0, b * 1.5,"
            "  b * round((h * 7919)::numeric %% 1500, 2),"
            "  CASE WHEN b = 1 THEN (h * 1000)::int %% 9 END, CASE WHEN b = 1 THEN ((h * 104729)::numeric %% 50)::float END,"
            "  CASE WHEN b = 1 THEN 50 + ((h * 15485863)::numeric %% 50)::float END, NULL, CASE WHEN b = 1 THEN 0.5 END,"
            "  NULL, NULL, CASE WHEN b = 1 THEN round((h * 6151)::numeric %% 2000, 2) END, NULL, NULL, NULL,"
            "  CASE WHEN b = 0 THEN 'no_purchases' ELSE (ARRAY['hibernating', 'hibernating', 'hibernating', 'lost', 'lost',"
            "   'at_risk', 'loyal', 'champions', 'promising', 'new', 'need_attention', 'about_to_sleep', 'potential_loyalists',"
            "   'cannot_lose'])[1 + least(13, floor(((h * 1e6)::bigint %% 1000) / 1000.0 * 13.08))::int] END,"
            "  now()"
            " FROM (SELECT id, (id * 0.6180339887) %% 1 AS h, CASE WHEN (id * 0.6180339887) %% 1 >= 0.3 THEN 1 ELSE 0 END AS b"
            "       FROM customers_customer) c",
            [run_id],
        )
        cursor.execute("VACUUM ANALYZE lifecycle_customervalue")
    print(f"filled {customers:,} value rows in {time.perf_counter() - started:.1f} s", flush=True)


def fill_health(customers: int) -> None:
    """One health row (score spread over 0-100, a quarter at some churn risk) and one stage row per
    customer, in set-based statements (no parameters: a bare % is the modulo)."""
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE lifecycle_customerhealth, lifecycle_customerstage")
        cursor.execute(
            "INSERT INTO lifecycle_customerhealth (customer_id, score, activity_points, breadth_points, service_points,"
            " feedback_points, churn_risk, changed_at)"
            " SELECT id, s, s, 0, 0, 0, CASE WHEN h < 0.75 THEN 0 ELSE 1 + ((h * 1000)::int % 3) END, now()"
            " FROM (SELECT id, (id * 0.6180339887) % 1 AS h, ((id * 0.7548776662) % 1 * 101)::int % 101 AS s"
            "       FROM customers_customer) c"
        )
        cursor.execute(
            "INSERT INTO lifecycle_customerstage (customer_id, stage, changed_at, manual)"
            " SELECT id, (ARRAY['lead', 'new', 'active', 'active', 'active', 'loyal', 'at_risk', 'churned', 'churned',"
            "  'churned'])[1 + least(9, floor(((id * 0.6180339887) % 1) * 10))::int], now(), false"
            " FROM customers_customer WHERE (id * 0.3819660113) % 1 >= 0.01"  # 1% without a stage row
        )
        cursor.execute("UPDATE lifecycle_customerstage SET stage = 'at_risk' WHERE stage = 'churned' AND (customer_id % 9) <> 0")
        cursor.execute("VACUUM ANALYZE lifecycle_customerhealth")
        cursor.execute("VACUUM ANALYZE lifecycle_customerstage")
    print(f"filled {customers:,} health and stage rows in {time.perf_counter() - started:.1f} s", flush=True)


def three_pages(sort: str, segment: str = "", stage: str = "") -> list[int]:
    from customers.selectors import customer_filter, customer_page

    qs = customer_filter(segment=segment, stage=stage)
    first = customer_page(qs=qs, sort=sort)
    list(first.customers)
    ids = [c.pk for c in first.customers]
    if first.next_cursor:
        second = customer_page(qs=qs, sort=sort, cursor=first.next_cursor)
        ids += [c.pk for c in second.customers]
        back = customer_page(qs=qs, sort=sort, cursor=second.previous_cursor)
        assert [c.pk for c in back.customers] == ids[:50]
    return ids


FLOOR = {
    "-historic_value": "ORDER BY v.historic_value DESC, v.customer_id DESC",
    "-predicted_clv": "ORDER BY COALESCE(v.predicted_clv, -1) DESC, v.customer_id DESC",
    "-last_order": "ORDER BY COALESCE(v.recency - v.\"T\", -1e9) DESC, v.customer_id DESC",
    "-health": "ORDER BY v.score DESC, v.customer_id DESC",
}


def floor(sort: str, segment: str = "") -> list[int]:
    """The first page as bare SQL: the value index walked, 51 customers joined by primary key."""
    from django.db import connection

    where = "WHERE v.rfm_segment = %s" if segment else ""
    table = "lifecycle_customerhealth" if sort.lstrip("-") == "health" else "lifecycle_customervalue"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT c.id, c.first_name, c.last_name, c.email FROM {table} v"
            f" JOIN customers_customer c ON c.id = v.customer_id {where} {FLOOR[sort]} LIMIT 51",
            [segment] if segment else [],
        )
        return [row[0] for row in cursor.fetchall()]


def explain(sort: str, segment: str = "", stage: str = "") -> str:
    from django.db import connection

    from customers.selectors import customer_filter, customer_ordering, customer_sorted

    qs = customer_sorted(customer_filter(segment=segment, stage=stage), sort).order_by(*customer_ordering(sort))[:51]
    sql, params = qs.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        return " / ".join(row[0].strip() for row in cursor.fetchall() if "Index" in row[0] or "Sort" in row[0] or "Seq" in row[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("database_url")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the customers and values already there")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--explain", action="store_true", help="print the plan's index and sort nodes")
    args = parser.parse_args()
    setup_django(args.database_url)
    from django.db import connection

    if connection.vendor != "postgresql":
        sys.exit("The benchmark measures PostgreSQL's plans: give a postgres:// URL (a database of its own).")
    if not args.keep:
        fill(args.customers)
        fill_values(args.customers)
    with connection.cursor() as cursor:
        cursor.execute("SELECT EXISTS (SELECT 1 FROM lifecycle_customerhealth)")
        has_health = cursor.fetchone()[0]
    if not args.keep or not has_health:
        fill_health(args.customers)
    print(f"{'sort':<17}{'filter':<20}{'list':>8}{'floor':>8}   (ms per page: first, next, back; floor: first page as bare SQL)")
    cases = (
        [(sort, "", "") for sort in SORTS]
        + [(sort, seg, "") for seg in SEGMENTS for sort in ("-predicted_clv", "-created")]
        + [(sort, "", stage) for stage in STAGES for sort in ("-health", "-created")]
    )
    for sort, segment, stage in cases:
        took, ids = best_of(args.repeat, lambda sort=sort, segment=segment, stage=stage: three_pages(sort, segment, stage))
        pages = 3 if len(ids) > 50 else 1
        bare = ""
        if sort in FLOOR and not stage:
            floor_s, _ids = best_of(args.repeat, lambda sort=sort, segment=segment: floor(sort, segment))
            bare = f"{floor_s * 1000:>8.1f}"
        label = f"stage={stage}" if stage else segment or "-"
        print(f"{sort:<17}{label:<20}{took * 1000 / pages:>8.1f}{bare:>8}", flush=True)
        if args.explain:
            print("    " + explain(sort, segment, stage), flush=True)


if __name__ == "__main__":
    main()
