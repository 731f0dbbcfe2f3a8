"""Lifecycle evaluation benchmark on PostgreSQL: 1,000,000 customers, 10,000,000 orders and
10,000,000 activity events.

    createdb -h 127.0.0.1 h_stages_bench
    .venv/bin/python bench/bench_lifecycle.py                  # seed, then measure
    .venv/bin/python bench/bench_lifecycle.py --no-seed        # measure the data already there
    .venv/bin/python bench/bench_lifecycle.py --sizes 100000:1000000:1000000

Seeds customers and orders with bench_clv's set-based generate_series load, then the events the
same way (indexes and the natural-key constraint dropped during the load, rebuilt after), and
measures in a fresh child process:
- the floor: the bare aggregate queries the evaluation needs (paid orders per customer with the
  repeat window, events per customer with the core actions after sign-up), over every customer,
  run to completion on the server (SELECT count(*) over them);
- end to end (`evaluate_lifecycle`'s path): a first run (every customer gets a stage row and a
  transition), a second run on the same data (must write no row: checked with the tables' insert
  and update counters), and a run a week later (only the customers whose stage moves are written);
- a second floor: the bare reads of the numpy figures path (customers, paid orders and events as
  binary arrays per bucket: lifecycle.services.stages_figures.queries), run to completion on the
  server one after the other;
- the ratio of the first and second runs to each floor, and the process's peak resident memory;
- each run's CPU seconds: PostgreSQL's (the run's own backend plus the figures' two reader
  backends, also shown apart) and this process's (Python and numpy, all threads);
- each run's seconds per phase (LifecycleRun.timings: figures_read = the array reads and numpy,
  figures = per range the COPY of its rows and the figures INSERT (on SQLite: the aggregates),
  stage_changes / health_changes = what changes, stage_writes / health_writes = the rows written)
  and the load;
- with --repeat N, the backfill and its re-run N times (tables truncated in between), for the spread.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import time

from bench_clv import AS_OF, backend_cpu, seed  # sibling modules of this script
from django_setup import setup_django

DEFAULT_DB = "postgres://root@127.0.0.1:5432/h_stages_bench"
LIFECYCLE_TABLES = (
    "lifecycle_stagetransition, lifecycle_customerstage, lifecycle_healthhistory, lifecycle_customerhealth, lifecycle_lifecyclerun"
)
WRITTEN_TABLES = ("lifecycle_customerstage", "lifecycle_stagetransition", "lifecycle_customerhealth", "lifecycle_healthhistory")
EVENT_NAMES = "ARRAY['signup','login','page_view','cart_add','email_open','support_ticket']"


def seed_events(n_events: int) -> float:
    """Replace all events with `n_events` synthetic ones between each customer's sign-up and the
    as-of day, skewed like the orders (low ids are busier)."""
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute("SET synchronous_commit = off")
        cur.execute("SET maintenance_work_mem = '512MB'")
        cur.execute(f"TRUNCATE customers_activityevent, {LIFECYCLE_TABLES}")
        cur.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'customers_activityevent'"
            " AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE conrelid = 'customers_activityevent'::regclass)"
        )
        indexes = cur.fetchall()
        cur.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid = 'customers_activityevent'::regclass AND contype IN ('u', 'f')"
        )
        constraints = cur.fetchall()
        for name, _ in indexes:
            cur.execute(f'DROP INDEX "{name}"')
        for name, _ in constraints:
            cur.execute(f'ALTER TABLE customers_activityevent DROP CONSTRAINT "{name}"')
        cur.execute("SELECT max(id) FROM customers_customer")
        n_customers = cur.fetchone()[0]
        cur.execute(
            "INSERT INTO customers_activityevent (customer_id, name, occurred_at, properties, created_at)"
            f" SELECT c.id, ({EVENT_NAMES})[1 + floor(random() * 6)::int],"
            " c.signed_up_at + random() * (%s::timestamptz - c.signed_up_at), '{}'::jsonb, now()"
            " FROM (SELECT 1 + floor(%s * power(random(), 1.5))::bigint AS cid FROM generate_series(1, %s) g) e"
            " JOIN customers_customer c ON c.id = e.cid",
            [f"{AS_OF.isoformat()} 23:00+00", n_customers, n_events],
        )
        # Random times can collide on (customer, name, time) in rare cases: keep one of each.
        cur.execute(
            "DELETE FROM customers_activityevent a USING customers_activityevent b"
            " WHERE a.customer_id = b.customer_id AND a.name = b.name AND a.occurred_at = b.occurred_at AND a.id > b.id"
        )
        for _, definition in indexes:
            cur.execute(definition)
        for name, definition in constraints:
            cur.execute(f'ALTER TABLE customers_activityevent ADD CONSTRAINT "{name}" {definition}')
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE customers_activityevent")
    return time.perf_counter() - started


def floor_queries(as_of: dt.datetime) -> list[tuple[str, dict]]:
    """The bare aggregates the evaluation needs, over every customer, without any stage logic."""
    from lifecycle.services.stages import stage_rules_get

    rules = stage_rules_get()
    names = ", ".join(f"'{n}'" for n in rules.activation_event_list)
    params = {"t": as_of, "lag": rules.repeat_orders - 1, "days": rules.repeat_days, "adays": rules.activation_days}
    orders = (
        "SELECT count(*), sum(n), sum(r) FROM (SELECT customer_id, count(*) n, max(ordered_at) last,"
        " max(CASE WHEN ordered_at - earlier <= make_interval(days => %(days)s) THEN 1 ELSE 0 END) r"
        " FROM (SELECT customer_id, ordered_at, lag(ordered_at, %(lag)s) OVER (PARTITION BY customer_id ORDER BY ordered_at) earlier"
        " FROM customers_order WHERE status = 'paid' AND ordered_at <= %(t)s) p GROUP BY customer_id) q"
    )
    events = (
        "SELECT count(*), sum(k) FROM (SELECT ev.customer_id, max(ev.occurred_at) last,"
        f" sum(CASE WHEN ev.name IN ({names}) AND ev.occurred_at <= COALESCE(c.signed_up_at, c.created_at)"
        " + make_interval(days => %(adays)s) THEN 1 ELSE 0 END) k"
        " FROM customers_activityevent ev JOIN customers_customer c ON c.id = ev.customer_id"
        " WHERE ev.occurred_at <= %(t)s GROUP BY ev.customer_id) q"
    )
    return [(orders, params), (events, params)]


def floor_array_reads(as_of: dt.datetime) -> list[tuple[str, list]]:
    """The bare reads of the numpy figures path (stages_figures): customers, paid orders and events
    as binary arrays per bucket, run to completion on the server, one after the other."""
    from lifecycle.services.stages import _Dialect, _prepare
    from lifecycle.services.stages_figures import queries

    settings = _prepare(as_of, _Dialect("postgresql"), fast=True)[2]
    return [(f"SELECT count(*), sum(octet_length(q.a) + octet_length(q.b)) FROM ({sql}) q", params) for sql, params in queries(settings).values()]


READER_CPU = [0.0]


def count_reader_cpu() -> None:
    """The figures' reader threads (stages_figures) work on connections of their own, which
    backend_cpu() does not see: add each one's backend CPU to READER_CPU just before it closes."""
    from django.db import connections

    import core.connections

    close = core.connections.close_thread_connections

    def close_counting() -> None:
        if connections["default"].connection is not None:
            READER_CPU[0] += backend_cpu()
        close()

    core.connections.close_thread_connections = close_counting


def table_writes() -> int:
    """Rows inserted, updated or deleted so far in the stage and health tables (PostgreSQL's own counters)."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT pg_stat_force_next_flush()")
        cur.execute("SELECT pg_stat_clear_snapshot()")
        cur.execute(
            "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables"
            " WHERE relname = ANY(%s)",
            [list(WRITTEN_TABLES)],
        )
        return int(cur.fetchone()[0])


def measure(n_customers: int, n_orders: int, n_events: int, *, reseed: bool, repeat: int = 1) -> dict:
    from django.db import connection
    from django.db.models import Count

    from lifecycle.models_stages import CustomerStage, LifecycleRun, StageTransition
    from lifecycle.services.aggregate import end_of_day
    from lifecycle.services.stages import lifecycle_evaluate

    result: dict = {"cpus": os.cpu_count()}
    if reseed:
        result["seed_orders_s"] = round(seed(n_customers, n_orders), 1)
        result["seed_events_s"] = round(seed_events(n_events), 1)
    else:
        with connection.cursor() as cur:
            cur.execute(f"TRUNCATE {LIFECYCLE_TABLES}")
    with connection.cursor() as cur:
        for table in ("customers_customer", "customers_order", "customers_activityevent"):
            cur.execute(f"SELECT count(*) FROM {table}")
            result[table.split("_", 1)[1]] = cur.fetchone()[0]
    result["load_avg_before"] = os.getloadavg()
    as_of = end_of_day(AS_OF) - dt.timedelta(microseconds=1)

    from lifecycle.services.stages import WORK_MEM

    started, cpu_before = time.perf_counter(), backend_cpu()
    with connection.cursor() as cur:
        cur.execute(f"SET work_mem = '{WORK_MEM}'")  # the evaluation's own setting, for a fair floor
        for sql, params in floor_queries(as_of):
            cur.execute(sql, params)
            cur.fetchone()
    result["floor_aggregates_s"] = round(time.perf_counter() - started, 2)
    result["floor_aggregates_cpu_s"] = round(backend_cpu() - cpu_before, 2)
    from django.db import transaction

    from lifecycle.services.aggregate import postgresql_settings

    started, cpu_before = time.perf_counter(), backend_cpu()
    with transaction.atomic(), connection.cursor() as cur:
        postgresql_settings(cur)  # the reads' own settings
        for sql, params in floor_array_reads(as_of):
            cur.execute(sql, params)
            cur.fetchone()
    result["floor_array_reads_s"] = round(time.perf_counter() - started, 2)
    result["floor_array_reads_cpu_s"] = round(backend_cpu() - cpu_before, 2)

    count_reader_cpu()
    runs = [("first_run", AS_OF), ("second_run_same_data", AS_OF), ("week_later", AS_OF + dt.timedelta(days=7))]
    for i in range(1, repeat):
        # Another backfill from empty tables and its re-run, for the spread of the figures.
        runs += [(f"first_run_again_{i}", AS_OF), (f"second_run_again_{i}", AS_OF)]
    for label, day in runs:
        if label.startswith("first_run_again"):
            with connection.cursor() as cur:
                cur.execute(f"TRUNCATE {LIFECYCLE_TABLES}")
        writes_before = table_writes()
        started, cpu_before, readers_before = time.perf_counter(), backend_cpu(), READER_CPU[0]
        process_before = time.process_time()
        run = lifecycle_evaluate(as_of=day)
        result[label] = {
            "end_to_end_s": round(time.perf_counter() - started, 2),
            # Every backend of the run: its own connection's and the figures' readers'.
            "postgres_cpu_s": round(backend_cpu() - cpu_before + READER_CPU[0] - readers_before, 2),
            "postgres_cpu_readers_s": round(READER_CPU[0] - readers_before, 2),
            "process_cpu_s": round(time.process_time() - process_before, 2),
            "transitions": run.n_transitions,
            "counts": run.counts,
            "rows_written": table_writes() - writes_before,
            "phases_s": run.timings,
            "load_avg": os.getloadavg(),
        }
    result["stages"] = dict(CustomerStage.objects.values_list("stage").annotate(n=Count("pk")).order_by())
    result["transitions_total"] = StageTransition.objects.count()
    result["runs"] = LifecycleRun.objects.count()
    result["ratio_second_run_to_floor"] = round(result["second_run_same_data"]["end_to_end_s"] / result["floor_aggregates_s"], 2)
    result["ratio_first_run_to_floor"] = round(result["first_run"]["end_to_end_s"] / result["floor_aggregates_s"], 2)
    for label in ("first_run", "second_run_same_data"):
        result[f"ratio_{label}_to_array_floor"] = round(result[label]["end_to_end_s"] / result["floor_array_reads_s"], 2)
        phases = result[label]["phases_s"]
        result[f"{label}_figures_s"] = round(phases.get("figures_read", 0) + phases.get("figures", 0), 2)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    result["load_avg_after"] = os.getloadavg()
    result["uptime"] = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB))
    parser.add_argument("--sizes", default="1000000:10000000:10000000", help="customers:orders:events")
    parser.add_argument("--no-seed", action="store_true", help="measure the data already there")
    parser.add_argument("--repeat", type=int, default=1, help="backfill (and re-run) this many times, for the spread")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()

    setup_django(args.database_url)
    if args.child:
        customers, orders, events = (int(x) for x in args.child.split(":"))
        print(json.dumps(measure(customers, orders, events, reseed=not args.no_seed, repeat=args.repeat), default=str))
        return
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    child = [sys.executable, __file__, "--database-url", args.database_url, "--child", args.sizes, "--repeat", str(args.repeat)]
    if args.no_seed:
        child.append("--no-seed")
    output = subprocess.run(child, check=True, stdout=subprocess.PIPE, text=True).stdout
    print(json.dumps(json.loads(output.strip().splitlines()[-1]), indent=2), flush=True)


if __name__ == "__main__":
    main()
