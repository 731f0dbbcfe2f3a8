"""The earning, statement by statement: orders_earn over the orders already in the database (seeded by
`bench_loyalty.py earn`), every statement and commit timed, with the database backend's CPU from /proc.
It empties loyalty's tables first (a database of its own, as bench_loyalty.py). Tiers as they are:
`bench_loyalty.py earn --tiers` leaves three.

    DATABASE_URL=postgres://root@127.0.0.1:5432/h_loyalty_bench .venv/bin/python bench/bench_loyalty_earn_profile.py [N]

N: the first N orders only (default: all). To compare two versions of the code on the same data, run
it from each checkout in turn, alternating: this machine's speed drifts between runs."""

from __future__ import annotations

import collections
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from django.db import connection

from bench.bench_loyalty import LOYALTY_TABLES  # first: its import sets Django up
from customers.models import Order
from loyalty.models import Tier
from loyalty.services.earning import orders_earn


def backend_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    if connection.vendor != "postgresql":
        sys.exit("needs PostgreSQL (DATABASE_URL=postgres://...)")
    limit = int(sys.argv[1]) if len(sys.argv) > 1 else None
    stats = collections.defaultdict(lambda: [0, 0.0, 0.0])  # statement -> count, seconds, backend CPU-s
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
        cursor.execute(f"TRUNCATE {LOYALTY_TABLES}")
        cursor.execute("ANALYZE")
        cursor.execute("CHECKPOINT")

    def record(key: str, work):
        cpu, started = backend_cpu(pid), time.perf_counter()
        try:
            return work()
        finally:
            entry = stats[key]
            entry[0] += 1
            entry[1] += time.perf_counter() - started
            entry[2] += backend_cpu(pid) - cpu

    def wrapper(execute, sql, params, many, context):
        return record(" ".join(sql.split())[:70], lambda: execute(sql, params, many, context))

    commit = connection._commit
    connection._commit = lambda: record("COMMIT", commit)
    ids = list(Order.objects.order_by("id").values_list("id", flat=True)[:limit])
    print(f"{Tier.objects.count()} tiers, {len(ids):,} orders", flush=True)
    started, python = time.perf_counter(), time.process_time()
    with connection.execute_wrapper(wrapper):
        orders_earn(order_ids=ids)
    print(f"total {time.perf_counter() - started:.1f} s, Python {time.process_time() - python:.1f} CPU-s "
          f"[load {' '.join(f'{v:.1f}' for v in os.getloadavg())}]")
    for key, (count, seconds, cpu) in sorted(stats.items(), key=lambda item: -item[1][1]):
        print(f"{seconds:7.2f} s {cpu:6.1f} CPU-s {count:5d}x  {key}")


if __name__ == "__main__":
    main()
