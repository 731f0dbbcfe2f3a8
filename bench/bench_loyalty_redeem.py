"""The redemption API under load: gunicorn serving POST /api/v1/loyalty/accounts/{id}/redeem/ to 50
concurrent clients (threads with keep-alive connections), on a database of 1,000,000 accounts and
10,000,000 ledger entries. Run through bench/bench_loyalty.py redeem [--accounts N --entries N
--clients N --requests N --workers N]; it reports p50 / p95 / p99 and the throughput, after the
same figures for one client alone (the per-request time without queueing).

Each request redeems 1 point from a random account with a fresh idempotency key (the accounts hold
plenty: no 409s), so every request locks a row, draws from a lot, appends an entry and an
allocation, and commits."""

from __future__ import annotations

import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import threading
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
    if not args.skip_seed:
        seed(accounts=args.accounts, entries=args.entries)
    token = _token()
    with connection.cursor() as cursor:
        cursor.execute("SELECT MIN(customer_id), MAX(customer_id) FROM loyalty_loyaltyaccount")
        low, high = cursor.fetchone()
    connection.close()
    env = {**os.environ, "DEBUG": "false", "SECRET_KEY": "bench-only-key-that-signs-nothing",
           "ALLOWED_HOSTS": "127.0.0.1", "SECURE_SSL_REDIRECT": "false", "SECURE_COOKIES": "false", "LOG_LEVEL": "WARNING"}
    workers = str(args.workers)
    server = subprocess.Popen(
        [str(ROOT / ".venv/bin/gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{PORT}", "--workers", workers,
         "--log-level", "warning"],
        cwd=ROOT, env=env,
    )
    try:
        _wait_for_server()
        # One client first: the time a request takes when nothing queues (the server's own work,
        # plus the loopback); the concurrent figure adds the wait for a free worker and core.
        alone, _statuses = _load(token=token, low=low, high=high, clients=1, total=300)
        alone.sort()
        a = statistics.quantiles(alone, n=100)
        print(f"  one client alone: p50 {a[49] * 1000:.1f} ms, p95 {a[94] * 1000:.1f} ms")
        latencies, statuses = _load(token=token, low=low, high=high, clients=args.clients, total=args.requests)
    finally:
        server.terminate()
        server.wait(timeout=30)
    latencies.sort()
    q = statistics.quantiles(latencies, n=100)
    print(f"{len(latencies):,} redemptions, {args.clients} clients, {workers} gunicorn workers: "
          f"p50 {q[49] * 1000:.1f} ms, p95 {q[94] * 1000:.1f} ms, p99 {q[98] * 1000:.1f} ms; statuses {statuses}")


def _wait_for_server() -> None:
    for _ in range(100):
        try:
            http.client.HTTPConnection("127.0.0.1", PORT, timeout=1).request("GET", "/api/schema/")
            return
        except OSError:
            time.sleep(0.2)
    sys.exit("gunicorn did not start")


def _load(*, token: str, low: int, high: int, clients: int, total: int):
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    per_client = total // clients
    start = threading.Barrier(clients)

    def client(seed: int) -> None:
        rng = random.Random(seed)
        conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
        headers = {"Authorization": f"Token {token}", "Content-Type": "application/json", "Host": "127.0.0.1"}
        start.wait()
        for _ in range(per_client):
            customer = rng.randint(low, high)
            body = json.dumps({"points": 1, "idempotency_key": str(uuid.uuid4())})
            began = time.perf_counter()
            conn.request("POST", f"/api/v1/loyalty/accounts/{customer}/redeem/", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            elapsed = time.perf_counter() - began
            with lock:
                latencies.append(elapsed)
                statuses[response.status] = statuses.get(response.status, 0) + 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    print(f"  {len(latencies) / wall:.0f} requests/s over {wall:.1f} s")
    return latencies, statuses
