"""seed_demo benchmark: 100,000 customers on PostgreSQL, and the `make run` default (2,000 customers)
on a fresh SQLite file.

    createdb -h 127.0.0.1 h_seed
    .venv/bin/python bench/bench_seed.py
    .venv/bin/python bench/bench_seed.py --customers 100000 --database-url postgres://root@127.0.0.1:5432/h_seed

PostgreSQL, in this process: migrate, delete any earlier demo data (`seed_demo --reset`'s service,
timed too), then `demo_seed` end to end (generation, staff, channels, COPY of every table, index and
foreign-key rebuild, commit). SQLite, as a user runs it: `manage.py seed_demo` in a child process on
a new database file, wall clock including Django's start-up. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from django_setup import ROOT, setup_django  # a sibling module of this script

DEFAULT_DB = "postgres://root@127.0.0.1:5432/h_seed"


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def server_cpu_seconds(pid: int) -> float:
    """CPU time of the PostgreSQL backend serving us, when it runs on this machine (else -1)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return -1.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres(database_url: str, customers: int, seed: int) -> dict:
    setup_django(database_url)
    from django.core.management import call_command
    from django.db import connection

    from customers.services.demo import demo_reset, demo_seed

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    deleted = demo_reset()
    reset_seconds = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    client_before, server_before = cpu_seconds(), server_cpu_seconds(backend)
    result = demo_seed(customers=customers, seed=seed)
    client_cpu, server_cpu = cpu_seconds() - client_before, server_cpu_seconds(backend) - server_before
    rows = sum(result.counts.values())
    return {
        # CPU time does not depend on what else the machine runs; wall time does (see load_average).
        "cpu_seconds_client": round(client_cpu, 2),
        "cpu_seconds_server": round(server_cpu, 2) if server_before >= 0 else None,
        "customers": customers,
        "seconds": round(result.seconds, 2),
        "rows": dict(result.counts),
        "rows_total": rows,
        "rows_per_second": round(rows / result.seconds),
        "reset_deleted_customers": deleted,
        "reset_seconds": round(reset_seconds, 2),
    }


def sqlite(customers: int, seed: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "DEBUG": "true", "DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite3", "LOG_LEVEL": "WARNING"}
        manage = [sys.executable, str(ROOT / "manage.py")]
        subprocess.run([*manage, "migrate", "-v0"], env=env, check=True)
        started = time.perf_counter()
        out = subprocess.run(
            [*manage, "seed_demo", "--customers", str(customers), "--seed", str(seed), "--no-progress"],
            env=env, check=True, capture_output=True, text=True,
        ).stdout
        wall = time.perf_counter() - started
    return {"customers": customers, "wall_seconds_with_startup": round(wall, 2), "output": out.splitlines()[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=DEFAULT_DB)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--sqlite-customers", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    report = {"load_average_before": os.getloadavg()}
    if not args.skip_sqlite:
        report["sqlite"] = sqlite(args.sqlite_customers, args.seed)
    report["postgresql"] = postgres(args.database_url, args.customers, args.seed)
    report["load_average_after"] = os.getloadavg()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
