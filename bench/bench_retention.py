"""Retention run benchmark on PostgreSQL: 100,000 customers eligible for a retention e-mail.

    createdb -h 127.0.0.1 h_retention_bench
    .venv/bin/python bench/bench_retention.py
    .venv/bin/python bench/bench_retention.py --eligible 100000 --database-url postgres://...

Seeds (set-based, generate_series) `eligible` customers with an e-mail address and marketing
consent and a health row at churn-risk level 1 (care e-mail) or 3 (time-limited offer: a discount
code of their own), half each, plus a tenth as many at level 2 (a follow-up task for the owner) and
as many not eligible (no consent, or no risk). Then, in a fresh child process, measures:
- `retention_run` end to end (the actions logged, the offers made, every e-mail queued in the
  outbox), the target being under 20 s;
- a second run the same day, which must queue nothing;
- the floor: the bare statements the run needs (INSERT ... SELECT of the same actions, offers and
  outbox rows, with no window check, no consent or suppression check, no Python), rolled back;
- the ratio to the floor, the process's peak memory and the machine's load.
Delivery (SMTP) is not part of it: the outbox sends at its own pace (bench/bench_outbox.py).
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

from django_setup import setup_django  # a sibling module of this script

DEFAULT_DB = "postgres://root@127.0.0.1:5432/h_retention_bench"
DAY = dt.date(2026, 6, 30)


def seed(eligible: int) -> float:
    from django.db import connection

    from lifecycle.models_retention import interventions_ensure

    started = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute("SET synchronous_commit = off")
        cur.execute(
            "TRUNCATE messaging_message, lifecycle_retentionoffer, lifecycle_retentionaction, lifecycle_customerhealth,"
            " customers_task, customers_customer RESTART IDENTITY CASCADE"
        )
        cur.execute("SELECT id FROM auth_user ORDER BY id LIMIT 1")
        row = cur.fetchone()
        if row is None:
            cur.execute(
                "INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, is_staff,"
                " is_active, date_joined) VALUES ('!', false, 'bench-owner', '', '', '', true, true, now()) RETURNING id"
            )
            row = cur.fetchone()
        owner = row[0]
        total = eligible + eligible // 10 + eligible
        cur.execute(
            "INSERT INTO customers_customer (created_at, updated_at, first_name, last_name, phone, country, email,"
            " email_opt_in, email_opt_in_at, signed_up_at, owner_id, language)"
            " SELECT now(), now(), 'Bench', 'C' || g, '', 'DE', 'c' || g || '@bench.example',"
            " g <= %s + %s OR g %% 2 = 0, now(), now() - interval '400 days', %s, CASE WHEN g %% 5 = 0 THEN 'zh-hans' ELSE 'en' END"
            " FROM generate_series(1, %s) g",
            [eligible, eligible // 10, owner, total],
        )
        # 1..eligible: level 1 and 3 alternately (e-mail); then a tenth at level 2 (task); then the
        # ineligible: odd ids without consent at level 1, even ids at level 0.
        cur.execute(
            "INSERT INTO lifecycle_customerhealth (customer_id, score, activity_points, breadth_points, service_points,"
            " feedback_points, churn_risk, changed_at)"
            " SELECT id, 30, 0, 0, 20, 10,"
            " CASE WHEN id <= %s THEN CASE WHEN id %% 2 = 0 THEN 1 ELSE 3 END WHEN id <= %s + %s THEN 2"
            " WHEN id %% 2 = 1 THEN 1 ELSE 0 END, now() FROM customers_customer",
            [eligible, eligible, eligible // 10],
        )
        cur.execute("VACUUM ANALYZE customers_customer")
        cur.execute("VACUUM ANALYZE lifecycle_customerhealth")
    interventions_ensure()
    return time.perf_counter() - started


FLOOR = [
    "INSERT INTO lifecycle_retentionaction (customer_id, level, kind, day, at, message_key)"
    " SELECT h.customer_id, h.churn_risk, CASE WHEN h.churn_risk = 2 THEN 'task' ELSE 'email' END, %(day)s, now(),"
    " 'retention:' || h.churn_risk || ':' || h.customer_id FROM lifecycle_customerhealth h"
    " JOIN customers_customer c ON c.id = h.customer_id WHERE h.churn_risk > 0 AND (h.churn_risk = 2 OR c.email_opt_in)",
    "INSERT INTO lifecycle_retentionoffer (action_id, customer_id, level, day, kind, code, points, expires_on)"
    " SELECT a.id, a.customer_id, 3, a.day, 'code', 'F' || a.customer_id || '-' || upper(substr(md5(random()::text), 1, 8)),"
    " 0, %(day)s FROM lifecycle_retentionaction a WHERE a.level = 3",
    "INSERT INTO customers_task (created_at, updated_at, customer_id, assignee_id, title, due_at)"
    " SELECT now(), now(), c.id, c.owner_id, 'Follow up', now() FROM customers_customer c"
    " JOIN lifecycle_retentionaction a ON a.customer_id = c.id WHERE a.level = 2",
    "INSERT INTO messaging_message (key, purpose, template_id, customer_id, to_email, language, context, state,"
    " suppressed_reason, attempts, last_error, provider_message_id, created_at, next_attempt_at)"
    " SELECT 'floor:' || a.level || ':' || c.id, 'marketing', %(template)s, c.id, lower(trim(c.email)), c.language,"
    " '{}'::jsonb, 'queued', '', 0, '', '', now(), now()"
    " FROM lifecycle_retentionaction a JOIN customers_customer c ON c.id = a.customer_id WHERE a.level IN (1, 3)",
]


def floor_seconds() -> tuple[float, int]:
    """The bare statements, in a transaction rolled back; returns (seconds, rows)."""
    from django.db import connection

    from core.transactions import rolled_back
    from messaging.models import MessageTemplate

    template = MessageTemplate.objects.get(key="retention_care").pk
    rows = 0
    started = time.perf_counter()
    with rolled_back(), connection.cursor() as cur:
        for sql in FLOOR:
            cur.execute(sql, {"day": DAY, "template": template})
            rows += cur.rowcount
        elapsed = time.perf_counter() - started
    return elapsed, rows


def measure(eligible: int) -> dict:
    from django.db import connection

    import messaging.services.sending

    # This process has no broker (eager tasks): the outbox's kick after commit would deliver right
    # here. A worker delivers in production; here the queueing is timed alone (as bench_outbox does).
    messaging.services.sending._kick_deliverer = lambda: None

    from lifecycle.models_retention import RetentionOffer
    from lifecycle.services.retention import retention_run
    from messaging.models import Message

    result: dict = {"cpus": os.cpu_count(), "eligible": eligible, "seed_s": round(seed(eligible), 1)}
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM customers_customer")
        result["customers"] = cur.fetchone()[0]
    # The templates are created on first use: create them now, so the floor and the run start alike.
    for key in ("retention_care", "retention_offer"):
        messaging.services.sending._template(key)
    with connection.cursor() as cur:
        cur.execute("TRUNCATE messaging_message, lifecycle_retentionoffer, lifecycle_retentionaction, customers_task")
    result["load_avg_before"] = os.getloadavg()
    result["floor_s"], result["floor_rows"] = floor_seconds()
    result["floor_s"] = round(result["floor_s"], 2)
    runs = []
    for label in ("first_run", "second_run_same_day"):
        started = time.perf_counter()
        counts = retention_run(as_of=DAY)
        runs.append(label)
        result[label] = {"seconds": round(time.perf_counter() - started, 2), "counts": counts}
    result["messages_queued"] = Message.objects.filter(state=Message.State.QUEUED).count()
    result["offers"] = RetentionOffer.objects.count()
    result["ratio_to_floor"] = round(result["first_run"]["seconds"] / result["floor_s"], 2)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    result["load_avg_after"] = os.getloadavg()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB))
    parser.add_argument("--eligible", type=int, default=100_000)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    setup_django(args.database_url)
    if args.child:
        print(json.dumps(measure(args.eligible), default=str))
        return
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    child = [sys.executable, __file__, "--database-url", args.database_url, "--eligible", str(args.eligible), "--child"]
    output = subprocess.run(child, check=True, stdout=subprocess.PIPE, text=True).stdout
    print(json.dumps(json.loads(output.strip().splitlines()[-1]), indent=2), flush=True)


if __name__ == "__main__":
    main()
