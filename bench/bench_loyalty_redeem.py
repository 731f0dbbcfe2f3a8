"""The redemption API under load: gunicorn serving POST /api/v1/loyalty/accounts/{id}/redeem/ to 50
concurrent keep-alive clients, on a database of 1,000,000 accounts and 10,000,000 ledger entries.
Run through bench/bench_loyalty.py redeem [--accounts N --entries N --clients N --seconds N
--workers N --worker-class sync|gthread --threads N]; it reports p50 / p95 / p99 and the throughput,
after the same figures for one client alone (the per-request time without queueing), and the CPU
each request cost: gunicorn's processes and the database's backends, measured from /proc, divided
by the requests served. The clients are wrk (the Debian package `wrk`; a C event loop, with the
Lua script beside this file), so the load generator takes little of the 2 cores: its own CPU is
printed too.

Each request redeems 1 point from a random account with a fresh idempotency key (the accounts hold
plenty: no 409s), so every request locks a row, draws from a lot, appends an entry and an
allocation, and commits.

Then the bare-SQL floor in the same run: pgbench (PostgreSQL's own C client; the Debian package
postgresql-contrib, or the server's) runs the same statements a redemption sends, token lookup
included (bench_loyalty_redeem_floor.sql), with one client and then as many as wrk had, for as long:
what the database alone serves with no HTTP, Django or DRF, and the API's figures as ratios of it."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from django.db import connection, transaction

ROOT = Path(__file__).resolve().parent.parent
PORT = 8765


def _sql(statement: str, params=None) -> int:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.rowcount


def seed(*, accounts: int, entries: int) -> None:
    """Customers with an account each, `entries` earn entries spread over them, one lot each
    holding the balance (available, expiring in a year)."""
    from customers.models import Customer

    per_account = max(1, entries // accounts)
    language = any(f.name == "language" for f in Customer._meta.fields)
    started = time.perf_counter()
    with transaction.atomic():
        _sql("TRUNCATE loyalty_lotallocation, loyalty_voucher, loyalty_pointlot, loyalty_ledgerentry, "
             "loyalty_tierchange, loyalty_loyaltyaccount, customers_orderchange, customers_order, "
             "customers_customer CASCADE")
        _sql(f"""INSERT INTO customers_customer (external_id, first_name, last_name, phone, country, created_at,
                     updated_at, email_opt_in{", language" if language else ""})
                 SELECT 'RC' || g, '', '', '', '', now(), now(), false{", ''" if language else ""}
                 FROM generate_series(1, %s) g""", [accounts])
        _sql("""INSERT INTO loyalty_loyaltyaccount (customer_id, balance, debt, created_at)
                SELECT id, %s, 0, now() FROM customers_customer""", [per_account * 1000])
        _sql("""INSERT INTO loyalty_ledgerentry (account_id, kind, points, balance_after, reason, source,
                    idempotency_key, unrecovered, created_at)
                SELECT a.id, 'earn', 1000, 1000 * n, '', 'campaign', 'seed:' || n, 0, now() - interval '30 days'
                FROM loyalty_loyaltyaccount a, generate_series(1, %s) n""", [per_account])
        _sql("""INSERT INTO loyalty_pointlot (account_id, entry_id, points, remaining, available_at, expires_at)
                SELECT e.account_id, e.id, a.balance, a.balance, now() - interval '1 day', now() + interval '1 year'
                FROM loyalty_ledgerentry e JOIN loyalty_loyaltyaccount a ON a.id = e.account_id
                WHERE e.idempotency_key = 'seed:1'""")
    _sql("VACUUM ANALYZE")
    print(f"seeded {accounts:,} accounts, {accounts * per_account:,} entries in {time.perf_counter() - started:.0f} s")


def _token() -> str:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from rest_framework.authtoken.models import Token

    user, _created = get_user_model().objects.get_or_create(username="bench-agent")
    user.groups.add(Group.objects.get(name="Agent"))
    return Token.objects.get_or_create(user=user)[0].key


def run(args) -> None:
    wrk = shutil.which("wrk")
    if wrk is None:
        sys.exit("the redeem benchmark needs wrk: apt-get install wrk")
    if not args.skip_seed:
        seed(accounts=args.accounts, entries=args.entries)
    token = _token()
    with connection.cursor() as cursor:
        cursor.execute("SELECT MIN(customer_id), MAX(customer_id) FROM loyalty_loyaltyaccount")
        low, high = cursor.fetchone()
    connection.close()
    env = {**os.environ, "DEBUG": "false", "SECRET_KEY": "bench-only-key-that-signs-nothing",
           "ALLOWED_HOSTS": "127.0.0.1", "SECURE_SSL_REDIRECT": "false", "SECURE_COOKIES": "false", "LOG_LEVEL": "WARNING"}
    server = subprocess.Popen(
        [str(ROOT / ".venv/bin/gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{PORT}", "--workers", str(args.workers),
         "--worker-class", args.worker_class, "--threads", str(args.threads), "--log-level", "warning"],
        cwd=ROOT, env=env,
    )
    setup = f"{args.workers} {args.worker_class} worker(s)" + (f" x {args.threads} threads" if args.threads > 1 else "")
    wrk_env = {**os.environ, "TOKEN": token, "LOW": str(low), "HIGH": str(high)}
    try:
        _wait_for_server()
        # Warm-up until the workers answer steadily: each starts by importing every app (seconds on
        # a busy machine) and opens its database connection on its first request.
        for _ in range(12):
            if _wrk(wrk, wrk_env, clients=2 * args.workers * args.threads, seconds=5)["requests"] >= 20 * args.workers:
                break
        # One client first: the time a request takes when nothing queues (the server's own work,
        # plus the loopback); the concurrent figure adds the wait for a free worker and core.
        _report("one client alone", _measured(wrk, wrk_env, server, clients=1, seconds=args.seconds), setup)
        api = _measured(wrk, wrk_env, server, clients=args.clients, seconds=args.seconds)
        _report(f"{args.clients} clients", api, setup)
    finally:
        server.terminate()
        server.wait(timeout=30)
    pgbench = shutil.which("pgbench")
    if pgbench is None:
        print("  (no pgbench: the bare-SQL floor is not measured)")
        return
    floor_env = {"low": low, "high": high, "token": f"'{token}'"}
    _report_floor("one client alone", _pgbench(pgbench, floor_env, clients=1, seconds=args.seconds), None)
    _report_floor(f"{args.clients} clients", _pgbench(pgbench, floor_env, clients=args.clients, seconds=args.seconds), api)


def _pgbench(pgbench: str, variables: dict, *, clients: int, seconds: int) -> dict:
    """pgbench running bench_loyalty_redeem_floor.sql: its throughput and latency percentiles
    (microseconds, from its log of every transaction)."""
    settings = connection.settings_dict
    with tempfile.TemporaryDirectory() as folder:
        command = [
            pgbench, "-n", "-M", "simple", "-c", str(clients), "-j", str(min(clients, 2)), "-T", str(seconds),
            "-f", str(Path(__file__).with_name("bench_loyalty_redeem_floor.sql")), "--log",
            "--log-prefix", f"{folder}/log", "-h", settings["HOST"] or "127.0.0.1", "-p", str(settings["PORT"] or 5432),
            "-U", settings["USER"], *[arg for name, value in variables.items() for arg in ("-D", f"{name}={value}")],
            settings["NAME"],
        ]
        env = {**os.environ, "PGPASSWORD": settings["PASSWORD"] or ""}
        started = time.perf_counter()
        finished = subprocess.run(command, env=env, capture_output=True, text=True)
        elapsed = time.perf_counter() - started
        if finished.returncode:
            sys.exit(f"pgbench failed:\n{finished.stdout}{finished.stderr}")
        # Each log line: client, transaction number, latency (us), script, epoch, us.
        latencies = sorted(int(line.split()[2]) for log in Path(folder).glob("log*") for line in log.open())
    rate = next(float(line.split("=")[1].split()[0]) for line in finished.stdout.splitlines() if line.startswith("tps"))
    return {"transactions": len(latencies), "rate": rate, "seconds": elapsed,
            **{f"p{q}": latencies[min(len(latencies) - 1, len(latencies) * q // 100)] for q in (50, 95, 99)}}


def _report_floor(label: str, floor: dict, api: dict | None) -> None:
    ratios = ""
    if api:
        ratios = (f"; the API's p95 is {api['p95'] / floor['p95']:.1f}x this, its throughput "
                  f"{api['requests'] / api['seconds'] / floor['rate']:.0%} of it")
    print(f"  bare-SQL floor (pgbench, the same statements), {label}: {floor['transactions']:,} redemptions = "
          f"{floor['rate']:.0f}/s; p50 {floor['p50'] / 1000:.1f} ms, p95 {floor['p95'] / 1000:.1f} ms, "
          f"p99 {floor['p99'] / 1000:.1f} ms{ratios}; load {' '.join(f'{v:.1f}' for v in os.getloadavg())}", flush=True)


def _report(label: str, result: dict, setup: str) -> None:
    served = result["requests"]
    print(f"  {label}, {setup}: {served:,} redemptions in {result['seconds']:.1f} s = "
          f"{served / result['seconds']:.0f}/s; p50 {result['p50'] / 1000:.1f} ms, p95 {result['p95'] / 1000:.1f} ms, "
          f"p99 {result['p99'] / 1000:.1f} ms; statuses {result['statuses']}, socket errors {result['errors']}; "
          f"CPU per request: gunicorn {result['gunicorn_cpu'] / served * 1000:.2f} ms + PostgreSQL "
          f"{result['postgres_cpu'] / served * 1000:.2f} ms; the client (wrk) {result['client_cpu']:.1f} CPU-s "
          f"= {result['client_cpu'] / result['seconds']:.0%} of a core; "
          f"load {' '.join(f'{v:.1f}' for v in os.getloadavg())}", flush=True)


def _measured(wrk: str, env: dict, server: subprocess.Popen, *, clients: int, seconds: int) -> dict:
    gunicorn = [server.pid, *_children(server.pid)]
    postgres = _backends()
    before = _cpu_seconds(gunicorn), _cpu_seconds(postgres)
    result = _wrk(wrk, env, clients=clients, seconds=seconds)
    # Backends opened during the run (a worker's first connection) count from zero.
    postgres = sorted(set(postgres) | set(_backends()))
    result["gunicorn_cpu"] = _cpu_seconds(gunicorn) - before[0]
    result["postgres_cpu"] = _cpu_seconds(postgres) - before[1]
    return result


def _wrk(wrk: str, env: dict, *, clients: int, seconds: int) -> dict:
    threads = min(clients, 2)
    process = subprocess.Popen(
        [wrk, f"-t{threads}", f"-c{clients}", f"-d{seconds}s", "--timeout", "30s", "-s",
         str(Path(__file__).with_suffix(".lua")), f"http://127.0.0.1:{PORT}"],
        env={**env, "RUN": uuid.uuid4().hex[:12]}, stdout=subprocess.PIPE, text=True,
    )
    output = process.stdout.read()
    _pid, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    lines = [line for line in output.splitlines() if line.startswith("RESULT ")]
    if process.returncode or not lines:
        sys.exit(f"wrk failed:\n{output}")
    result = json.loads(lines[0].removeprefix("RESULT "))
    result["client_cpu"] = usage.ru_utime + usage.ru_stime
    return result


def _children(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    children.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return children


def _backends() -> list[int]:
    """The PostgreSQL backends connected to this database (the server runs on this machine)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
        pids = [row[0] for row in cursor.fetchall()]
    connection.close()
    return pids


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes (those that have ended count as nothing)."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _wait_for_server() -> None:
    # A TCP connection only: a request (e.g. the API schema, seconds of CPU to build) would keep a
    # worker busy long after a client that gave up on it.
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", PORT), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    sys.exit("gunicorn did not start")
