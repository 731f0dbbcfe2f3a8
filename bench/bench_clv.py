"""CLV recompute benchmark on PostgreSQL: 100,000 customers / 1,000,000 orders and
1,000,000 customers / 10,000,000 orders.

    createdb -h 127.0.0.1 h_clv_bench
    .venv/bin/python bench/bench_clv.py                      # both sizes
    .venv/bin/python bench/bench_clv.py --sizes 100000:1000000

Per size, in a fresh child process (so peak memory is that size's own): seed the data with
set-based SQL (generate_series; indexes and foreign-key checks off during the load, rebuilt
after), VACUUM ANALYZE, then measure
- the bare aggregate: the job's own aggregate SQL run to completion on the server
  (SELECT count(*) over it), and the same query fetched into numpy (what the job does);
- end to end, in-process (`recompute_clv --sync` path): a first run (inserts every CustomerValue
  row) and a second run (updates them, the nightly case), with the run's own phase timings;
- peak resident memory of the process (resource.getrusage ru_maxrss).
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
from pathlib import Path

from django_setup import setup_django  # a sibling module of this script

DEFAULT_DB = "postgres://root@127.0.0.1:5432/h_clv_bench"
AS_OF = dt.date(2026, 6, 30)


def backend_cpu() -> float:
    """CPU seconds used so far by this connection's PostgreSQL backend (same machine: /proc).

    With other work on the machine, wall-clock times stretch; CPU seconds much less so."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        pid = cur.fetchone()[0]
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def seed(n_customers: int, n_orders: int) -> float:
    """Replace all customers and orders with synthetic ones; returns the seconds it took."""
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute("SET synchronous_commit = off")
        cur.execute("SET maintenance_work_mem = '512MB'")
        cur.execute(
            "TRUNCATE lifecycle_customervalue, lifecycle_clvrunchunk, lifecycle_clvrun, customers_order,"
            " customers_customer_tags, customers_customer, customers_channelspend, customers_acquisitionchannel"
            " RESTART IDENTITY CASCADE"
        )
        cur.execute(
            "INSERT INTO customers_acquisitionchannel (created_at, updated_at, code, name, status, is_active)"
            " SELECT now(), now(), 'bench-' || g, 'Bench ' || g,"
            " (ARRAY['proven','proven','testing','testing','paused'])[g], true FROM generate_series(1, 5) g"
        )
        # Orders' secondary indexes and the unique external id are rebuilt after the load.
        cur.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'customers_order'"
            " AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE conrelid = 'customers_order'::regclass)"
        )
        indexes = cur.fetchall()
        cur.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid = 'customers_order'::regclass AND contype IN ('u', 'f')"
        )
        constraints = cur.fetchall()
        for name, _ in indexes:
            cur.execute(f'DROP INDEX "{name}"')
        for name, _ in constraints:
            cur.execute(f'ALTER TABLE customers_order DROP CONSTRAINT "{name}"')
        cur.execute(
            "INSERT INTO customers_customer (created_at, updated_at, first_name, last_name, phone, country,"
            " signed_up_at, channel_id, email_opt_in)"
            " SELECT now(), now(), '', '', '', 'DE',"
            " %s::timestamptz - make_interval(days => ((g * 7919) %% 1000)::int), 1 + g %% 5, false"
            " FROM generate_series(1::bigint, %s) g",
            [f"{AS_OF.isoformat()} 12:00+00", n_customers],
        )
        # Skewed: low ids buy often, about a fifth of customers never buy. Each order falls between
        # the customer's signup (up to 1000 days back) and the as-of day, at any time of day.
        cur.execute(
            "INSERT INTO customers_order (created_at, updated_at, external_id, customer_id, ordered_at, amount, currency, status)"
            " SELECT now(), now(), 'B' || g, c.id,"
            " c.signed_up_at + random() * (%s::timestamptz - c.signed_up_at),"
            " round((2 + random() * random() * 250)::numeric, 2), 'USD',"
            " CASE WHEN random() < 0.93 THEN 'paid' WHEN random() < 0.7 THEN 'refunded' ELSE 'cancelled' END"
            " FROM (SELECT g, 1 + floor(%s * power(random(), 1.8))::bigint AS cid FROM generate_series(1, %s) g) o"
            " JOIN customers_customer c ON c.id = o.cid",
            [f"{AS_OF.isoformat()} 23:00+00", int(n_customers * 0.8), n_orders],
        )
        for _, definition in indexes:
            cur.execute(definition)
        for name, definition in constraints:
            cur.execute(f'ALTER TABLE customers_order ADD CONSTRAINT "{name}" {definition}')
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE customers_customer")
        cur.execute("VACUUM ANALYZE customers_order")
    return time.perf_counter() - started


def measure(n_customers: int, n_orders: int, *, reseed: bool) -> dict:
    from django.conf import settings
    from django.db import connection, transaction

    from lifecycle.models import ClvRun
    from lifecycle.services.aggregate import (
        end_of_day,
        order_stats_parallel,
        postgresql_queries,
        postgresql_settings,
    )
    from lifecycle.services.clv_runs import clv_run_create, clv_run_execute

    result: dict = {"customers": n_customers, "orders": n_orders, "cpus": os.cpu_count()}
    if reseed:
        result["seed_s"] = round(seed(n_customers, n_orders), 1)
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM customers_customer")
        result["customers"] = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM customers_order")
        result["orders"] = cur.fetchone()[0]
        cur.execute("SELECT pg_size_pretty(pg_total_relation_size('customers_order'))")
        result["orders_table_size"] = cur.fetchone()[0]
    result["load_avg_before"] = os.getloadavg()

    # The floor: the aggregate's own two queries run to completion on the server, results
    # discarded (every array is measured, so none can be optimised away).
    customer_query, order_query = postgresql_queries(cutoff=end_of_day(AS_OF))
    cpu_before = backend_cpu()
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cur:
        postgresql_settings(cur)
        cur.execute(f"SELECT count(*), sum(length(i) + length(ch)) FROM ({customer_query[0]}) q(b, i, ch)", customer_query[1])
        cur.fetchone()
        cur.execute(f"SELECT count(*), sum(length(t) + length(c)) FROM ({order_query[0]}) q(b, t, c)", order_query[1])
        cur.fetchone()
    result["aggregate_server_s"] = round(time.perf_counter() - started, 2)
    result["aggregate_server_cpu_s"] = round(backend_cpu() - cpu_before, 2)
    started, own_before = time.perf_counter(), time.process_time()
    stats = order_stats_parallel(as_of=AS_OF, connections=settings.CLV_AGGREGATE_CONNECTIONS)
    result["aggregate_numpy_s"] = round(time.perf_counter() - started, 2)
    result["aggregate_numpy_python_cpu_s"] = round(time.process_time() - own_before, 2)
    del stats

    for label in ("first_run", "second_run"):
        ClvRun.objects.filter(status__in=["queued", "running"]).update(status="failed")
        run = clv_run_create(as_of=AS_OF)
        started, cpu_before, own_before = time.perf_counter(), backend_cpu(), time.process_time()
        run = clv_run_execute(run_id=run.pk)
        result[label] = {
            "end_to_end_s": round(time.perf_counter() - started, 2),
            "cpu_s": {"postgres": round(backend_cpu() - cpu_before, 2), "python": round(time.process_time() - own_before, 2)},
            "status": run.status,
            "message": run.message[:200],
            "phases": run.timings,
            "n_triples": run.n_triples,
            "bgnbd": [run.bgnbd_r, run.bgnbd_alpha, run.bgnbd_a, run.bgnbd_b],
            "gamma_gamma": [run.gg_p, run.gg_q, run.gg_v],
        }
    result["ratio_to_server_aggregate"] = round(result["second_run"]["end_to_end_s"] / result["aggregate_server_s"], 1)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    result["load_avg_after"] = os.getloadavg()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB))
    parser.add_argument("--sizes", default="100000:1000000,1000000:10000000", help="customers:orders,...")
    parser.add_argument("--no-seed", action="store_true", help="measure the data already there (one size)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        setup_django(args.database_url)
        customers, orders = (int(x) for x in args.child.split(":"))
        print(json.dumps(measure(customers, orders, reseed=not args.no_seed), default=str))
        return

    setup_django(args.database_url)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    results = []
    for size in args.sizes.split(","):
        child = [sys.executable, __file__, "--database-url", args.database_url, "--child", size]
        if args.no_seed:
            child.append("--no-seed")
        output = subprocess.run(child, check=True, stdout=subprocess.PIPE, text=True).stdout
        results.append(json.loads(output.strip().splitlines()[-1]))
        print(json.dumps(results[-1], indent=2), flush=True)
    if len(results) == 2:
        small, large = results
        growth = large["second_run"]["end_to_end_s"] / small["second_run"]["end_to_end_s"]
        print(f"growth of end-to-end time for {large['orders'] / small['orders']:.0f}x the orders: {growth:.1f}x")


if __name__ == "__main__":
    main()
