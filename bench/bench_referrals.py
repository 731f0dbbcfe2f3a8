"""Referral intake benchmark: creating a referral with every fraud signal checked, with 1,000,000
customers and 100,000 referrals in the database (issue 13: p95 under 100 ms).

    createdb -h 127.0.0.1 h_reffraud_bench
    .venv/bin/python bench/bench_referrals.py --database-url postgres://root@127.0.0.1:5432/h_reffraud_bench

Seeds once, set-based in SQL (generate_series): customers (a tenth on gmail.com, so e-mail keys
collide where they should), 300,000 paid orders, a referral code per referrer, 100,000 referrals
from a pool of 20,000 IPs over 60 days, and 5 fingerprints per referee. Then times `referral_intake`
(the service the API calls: code, referee with "already a customer", already referred, the chain of
referrers, fingerprints, IP window, velocity, write of the referral, its event and fingerprints, one
transaction) for fresh referees with ip, user agent, device, phone, payment fingerprint and address,
and in the same run the bare SQL floor: the same look-ups as hand-written SQL on one cursor, no ORM,
no write. Prints `uptime` and one JSON object."""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import time
from pathlib import Path

from django_setup import setup_django  # a sibling module of this script

DEFAULT_DB = "postgres://root@127.0.0.1:5432/h_reffraud_bench"
CUSTOMERS = 1_000_000
REFERRALS = 100_000


def seed(cursor, customers: int, referrals: int) -> dict:
    cursor.execute("SELECT COUNT(*) FROM customers_customer")
    have = cursor.fetchone()[0]
    started = time.perf_counter()
    if have < customers:
        cursor.execute(
            "INSERT INTO customers_customer (external_id, email, first_name, last_name, phone, country, email_opt_in,"
            " created_at, updated_at)"
            " SELECT 'B' || i, CASE WHEN i %% 10 = 0 THEN 'first.last' || i || '@gmail.com'"
            "  ELSE 'user' || i || '@example' || (i %% 97) || '.com' END,"
            " 'First' || (i %% 5000), 'Last' || (i %% 7919), '+4930' || (1000000 + i), 'DE', false,"
            " now() - (i %% 1000) * interval '1 day', now()"
            " FROM generate_series(%s, %s) i",
            [have + 1, customers],
        )
        cursor.execute(
            "INSERT INTO customers_order (external_id, customer_id, ordered_at, amount, currency, status, created_at,"
            " updated_at)"
            " SELECT 'BO' || c.id, c.id, now() - interval '3 days', 42.00, 'EUR', 'paid', now(), now()"
            " FROM customers_customer c WHERE c.id % 3 = 0 ON CONFLICT DO NOTHING"
        )
    cursor.execute("SELECT COUNT(*) FROM referrals_referral")
    if cursor.fetchone()[0] < referrals:
        # Referees: the customers with the lowest ids not divisible by 3 (no paid order); referrers
        # from the top half, 5 referrals each on average.
        cursor.execute(
            "INSERT INTO referrals_referralcode (customer_id, code, created_at, suspended_reason)"
            " SELECT c.id, 'BENCH' || c.id, now(), '' FROM customers_customer c"
            " WHERE c.id > (SELECT MAX(id) FROM customers_customer) - %s ON CONFLICT DO NOTHING",
            [referrals // 5],
        )
        cursor.execute(
            "WITH referees AS (SELECT id, row_number() OVER (ORDER BY id) n FROM customers_customer"
            "  WHERE id %% 3 <> 0 ORDER BY id LIMIT %s),"
            " codes AS (SELECT id, customer_id, row_number() OVER (ORDER BY id) n FROM referrals_referralcode)"
            " INSERT INTO referrals_referral (referrer_id, referee_id, code_id, state, source, ip, user_agent,"
            "  device_id, risk_score, verdict, signals, created_at, updated_at)"
            " SELECT k.customer_id, r.id, k.id, 'pending', 'api',"
            "  ('10.' || (r.n %% 20000 / 250) || '.' || (r.n %% 250) || '.1')::inet, 'UA ' || (r.n %% 50), 'dev' || r.n,"
            "  0, 'ok', '[]', now() - (r.n %% 86400) * interval '1 minute', now()"
            " FROM referees r JOIN codes k ON k.n = 1 + (r.n %% %s)",
            [referrals, referrals // 5],
        )
        for kind in ("ip", "ip_agent", "device", "phone", "address"):
            cursor.execute(
                "INSERT INTO referrals_fingerprint (customer_id, kind, value, first_seen_at, last_seen_at)"
                " SELECT referee_id, %s, md5(%s || referee_id) || md5(referee_id::text), now(), now()"
                " FROM referrals_referral ON CONFLICT DO NOTHING",
                [kind, kind],
            )
    cursor.execute("ANALYZE")
    cursor.execute("SELECT (SELECT COUNT(*) FROM customers_customer), (SELECT COUNT(*) FROM referrals_referral),"
                   " (SELECT COUNT(*) FROM referrals_fingerprint), (SELECT COUNT(*) FROM customers_order)")
    counts = dict(zip(("customers", "referrals", "fingerprints", "orders"), cursor.fetchone()))
    return {**counts, "seed_seconds": round(time.perf_counter() - started, 1)}


FLOOR_SQL = [
    "SELECT c.id, c.customer_id, c.suspended_at FROM referrals_referralcode c WHERE c.code = %(code)s",
    "SELECT c.id, c.email_key, EXISTS (SELECT 1 FROM customers_customer o WHERE o.email_key = c.email_key"
    " AND o.created_at < c.created_at AND o.id <> c.id),"
    " EXISTS (SELECT 1 FROM customers_order o WHERE o.customer_id = c.id AND o.status = 'paid')"
    " FROM customers_customer c WHERE c.id = %(referee)s",
    "SELECT id FROM referrals_referral WHERE referee_id = %(referee)s AND state <> 'rejected' LIMIT 1",
    "WITH RECURSIVE up(customer_id, depth) AS (SELECT referrer_id, 1 FROM referrals_referral WHERE referee_id ="
    " %(referrer)s AND state <> 'rejected' UNION SELECT r.referrer_id, up.depth + 1 FROM referrals_referral r"
    " JOIN up ON r.referee_id = up.customer_id WHERE r.state <> 'rejected' AND up.depth < 20)"
    " SELECT 1 FROM up WHERE customer_id = %(referee)s LIMIT 1",
    "SELECT kind FROM referrals_fingerprint WHERE customer_id = %(referrer)s AND ((kind = 'ip' AND value = %(h1)s)"
    " OR (kind = 'ip_agent' AND value = %(h2)s) OR (kind = 'device' AND value = %(h3)s)"
    " OR (kind = 'phone' AND value = %(h4)s))",
    "SELECT COUNT(*) FROM referrals_referral WHERE ip = %(ip)s AND created_at >= now() - interval '60 minutes'",
    "SELECT COUNT(*) FILTER (WHERE created_at >= now() - interval '1 hour'), COUNT(*) FROM referrals_referral"
    " WHERE referrer_id = %(referrer)s AND created_at >= now() - interval '1 day'",
]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def server_cpu_seconds(pid: int) -> float:
    """CPU time of the PostgreSQL backend serving us (it runs on this machine)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", default=DEFAULT_DB)
    parser.add_argument("--attempts", type=int, default=300)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    setup_django(args.database_url)
    from django.core.management import call_command
    from django.db import connection

    from referrals.services.intake import ReferralRefused, referral_intake

    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        seeded = seed(cursor, CUSTOMERS, REFERRALS)
        # Fresh referees: customers with no referral and no paid order, high ids (not referrers).
        cursor.execute(
            "SELECT c.id FROM customers_customer c WHERE c.id %% 3 <> 0 AND c.id > 400000 AND c.id < 700000"
            " AND NOT EXISTS (SELECT 1 FROM referrals_referral r WHERE r.referee_id = c.id) ORDER BY random() LIMIT %s",
            [args.attempts * 2],
        )
        referees = [row[0] for row in cursor.fetchall()]
        cursor.execute("SELECT code, customer_id FROM referrals_referralcode ORDER BY random() LIMIT %s", [args.attempts * 2])
        codes = cursor.fetchall()
    rng = random.Random(args.seed)
    service_ms, floor_ms, verdicts = [], [], {}
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    cpu_client = cpu_server = 0.0
    for i in range(args.attempts):
        code, _referrer = codes[i]
        referee = referees[i]
        ip = f"10.{rng.randrange(80)}.{rng.randrange(250)}.1"
        client_before, server_before = cpu_seconds(), server_cpu_seconds(backend)
        started = time.perf_counter()
        try:
            result = referral_intake(
                code=code, referee_id=referee, source="api", actor="api", ip=ip, user_agent=f"UA {i % 50}",
                device_id=f"bench-{i}", phone=f"+4930{2000000 + i}", payment_fingerprint=f"card-{i}",
                address=f"{i} Bench Street",
            )
            verdict = result.assessment.verdict
        except ReferralRefused as refused:
            verdict = refused.assessment.verdict
        service_ms.append((time.perf_counter() - started) * 1000)
        cpu_client += cpu_seconds() - client_before
        cpu_server += server_cpu_seconds(backend) - server_before
        verdicts[verdict] = verdicts.get(verdict, 0) + 1
        # The floor: the same look-ups for another fresh pair, hand-written SQL, one cursor.
        code2, referrer2 = codes[args.attempts + i]
        params = {"code": code2, "referee": referees[args.attempts + i], "referrer": referrer2, "ip": ip,
                  "h1": "x" * 64, "h2": "y" * 64, "h3": "z" * 64, "h4": "w" * 64}
        started = time.perf_counter()
        with connection.cursor() as cursor:
            for sql in FLOOR_SQL:
                cursor.execute(sql, params)
                cursor.fetchall()
        floor_ms.append((time.perf_counter() - started) * 1000)
    uptime = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    print(uptime)
    p95, floor_p95 = percentile(service_ms, 0.95), percentile(floor_ms, 0.95)
    print(json.dumps({
        "seeded": seeded,
        "attempts": args.attempts,
        "verdicts": verdicts,
        "intake_ms": {"p50": round(statistics.median(service_ms), 1), "p95": round(p95, 1),
                      "max": round(max(service_ms), 1)},
        "floor_sql_ms": {"p50": round(statistics.median(floor_ms), 1), "p95": round(floor_p95, 1)},
        "ratio_p95": round(p95 / floor_p95, 1) if floor_p95 else None,
        # CPU per referral (this process + its PostgreSQL backend): the cost without the wait for a core.
        "cpu_ms_per_intake": {"client": round(1000 * cpu_client / args.attempts, 1),
                              "server": round(1000 * cpu_server / args.attempts, 1)},
        "uptime": uptime,
    }, indent=2))


if __name__ == "__main__":
    main()
