"""CustomerValue write-back benchmark on PostgreSQL: publishing a generation vs upserting in place.

    .venv/bin/python bench/bench_clv_writeback.py --database postgres://root@127.0.0.1:5432/h_wb_bench
    .venv/bin/python bench/bench_clv_writeback.py --upsert     # the old upsert too (slow: every row updated)

Needs a database with customers 1..N already there (bench/bench_clv.py seeds one). The score columns
are synthetic (tests.lifecycle.test_writeback.columns_for: two thirds buyers, NaN = NULL), N rows in
chunks of --chunk: the columns scoring.score_customers hands over. First the live table is filled if it is empty. Then, timed:
prepare + every chunk's write + publish (with publish's own steps from its log line), while a reader
thread looks customers up by primary key and records the longest wait and any empty answer; then,
with --upsert, customer_values_upsert of the same chunks over the live table. The load average
(/proc/loadavg) is printed with each figure: the machine is shared.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB = "postgres://root@127.0.0.1:5432/h_wb_bench"


def setup_django(database_url: str) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DEBUG", "true")
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    import django

    django.setup()


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


class Reader(threading.Thread):
    """Looks up random customers' values by primary key until stopped; records the slowest answer."""

    def __init__(self, n: int):
        super().__init__(daemon=True)
        self.n, self.stop, self.longest, self.queries, self.missing = n, threading.Event(), 0.0, 0, 0

    def run(self) -> None:
        from django.db import connection

        rng = np.random.default_rng(1)
        with connection.cursor() as cursor:
            while not self.stop.is_set():
                started = time.perf_counter()
                cursor.execute("SELECT count(*) FROM lifecycle_customervalue WHERE customer_id = %s", [int(rng.integers(1, self.n))])
                self.missing += cursor.fetchone()[0] == 0
                self.longest = max(self.longest, time.perf_counter() - started)
                self.queries += 1
                time.sleep(0.005)
        connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default=DEFAULT_DB)
    parser.add_argument("--chunk", type=int, default=100_000)
    parser.add_argument("--index-builders", type=int, help="connections building indexes side by side (default: the module's)")
    parser.add_argument("--upsert", action="store_true", help="also time customer_values_upsert of the same chunks")
    args = parser.parse_args()
    setup_django(args.database)

    from bench_clv import backend_cpu
    from django.db import connection
    from django.utils import timezone

    from lifecycle.models import ClvRun, CustomerValue
    from lifecycle.services import values_generation, values_publish, values_upsert
    from tests.lifecycle.test_writeback import columns_for

    if args.index_builders:
        values_publish.INDEX_BUILDERS = args.index_builders
    publish_log: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: publish_log.append(record.getMessage())
    for module in (values_generation, values_publish):
        logging.getLogger(module.__name__).addHandler(handler)
        logging.getLogger(module.__name__).setLevel(logging.INFO)

    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) FROM customers_customer")
        n = cursor.fetchone()[0]
    ids = np.arange(1, n + 1)
    bounds = [(lo, min(lo + args.chunk, n)) for lo in range(0, n, args.chunk)]
    chunks = [columns_for(ids[lo:hi], seed=i) for i, (lo, hi) in enumerate(bounds)]
    result: dict = {"customers": n, "chunks": len(chunks)}

    def generation(run_id: int) -> dict:
        timings, started = {}, time.perf_counter()
        values_generation.values_generation_prepare(run_id=run_id)
        timings["prepare_s"] = round(time.perf_counter() - started, 2)
        mark, cpu, server = time.perf_counter(), time.process_time(), backend_cpu()
        for columns in chunks:
            values_generation.values_generation_write(run_id=run_id, columns=columns, computed_at=timezone.now())
        timings["write_s"] = round(time.perf_counter() - mark, 2)
        timings["write_cpu_s"] = {"python": round(time.process_time() - cpu, 2), "server": round(backend_cpu() - server, 2)}
        mark, server = time.perf_counter(), backend_cpu()
        values_publish.values_generation_publish(run_id=run_id)
        timings["publish_s"] = round(time.perf_counter() - mark, 2)
        timings["publish_server_cpu_s"] = round(backend_cpu() - server, 2)  # without parallel index-build workers
        timings["total_s"] = round(time.perf_counter() - started, 2)
        timings["publish_steps"] = publish_log[-1] if publish_log else ""
        return timings

    if not CustomerValue.objects.exists():
        run = ClvRun.objects.create(as_of=dt.date(2026, 6, 30), status=ClvRun.Status.SUCCEEDED)
        result["fill"] = {"load_before": loadavg(), **generation(run.pk), "load_after": loadavg()}

    run = ClvRun.objects.create(as_of=dt.date(2026, 6, 30), status=ClvRun.Status.SUCCEEDED)
    reader = Reader(n)
    reader.start()
    result["generation"] = {"load_before": loadavg(), **generation(run.pk), "load_after": loadavg()}
    reader.stop.set()
    reader.join()
    result["reader"] = {"queries": reader.queries, "longest_wait_s": round(reader.longest, 3), "rows_missing": reader.missing}
    result["live_rows"] = CustomerValue.objects.count()

    if args.upsert:
        run = ClvRun.objects.create(as_of=dt.date(2026, 6, 30), status=ClvRun.Status.SUCCEEDED)
        load, started, server = loadavg(), time.perf_counter(), backend_cpu()
        for columns in chunks:
            values_upsert.customer_values_upsert(columns=columns, run_id=run.pk, computed_at=timezone.now())
        result["upsert"] = {
            "load_before": load,
            "total_s": round(time.perf_counter() - started, 2),
            "server_cpu_s": round(backend_cpu() - server, 2),
            "load_after": loadavg(),
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
