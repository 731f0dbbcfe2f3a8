"""Outbox benchmark: queue 100,000 messages with one set-based INSERT ... SELECT (consent and the
suppression list applied in SQL), against the bare SQL floor; then one real Celery worker process
delivers to a loopback aiosmtpd server, its memory sampled throughout.

    createdb -h 127.0.0.1 h_outbox_bench
    .venv/bin/python bench/bench_outbox.py [--database-url postgres://root@127.0.0.1:5432/h_outbox_bench]
        [--queue 100000] [--deliver 20000] [--redis-url redis://127.0.0.1:6379/12]

Customers: `--queue` opted in and 2% more who are on the suppression list, plus 5% who never opted
in, so exactly `--queue` messages are queued. The floor is a plain INSERT ... SELECT of the same rows
into the same table (same indexes), no consent, suppression or conflict handling. Delivery: the
first `--deliver` of them, by `celery -A config worker --pool solo` (Redis), to
`python -m aiosmtpd -c aiosmtpd.handlers.Sink` on 127.0.0.1. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

from django_setup import ROOT, setup_django  # a sibling module of this script

DEFAULT_DB = "postgres://root@127.0.0.1:5432/h_outbox_bench"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return -1.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def make_customers(cursor, *, opted_in: int, suppressed: int, no_consent: int) -> None:
    cursor.execute("TRUNCATE messaging_message, messaging_suppression, customers_customer CASCADE")
    total = opted_in + suppressed + no_consent
    cursor.execute(
        """
        INSERT INTO customers_customer
            (created_at, updated_at, external_id, email, first_name, last_name, phone, country,
             email_opt_in, email_opt_in_at, language)
        SELECT now(), now(), 'B' || g, 'bench' || g || '@example.com', 'First' || g, 'Last', '', '',
               g <= %s, CASE WHEN g <= %s THEN now() END, CASE WHEN g %% 3 = 0 THEN 'zh-hans' ELSE 'en' END
        FROM generate_series(1, %s) g
        """,
        [opted_in + suppressed, opted_in + suppressed, total],
    )
    # The suppressed ones: opted in, but on the list (reasons spread over all four).
    cursor.execute(
        """
        INSERT INTO messaging_suppression (address, reason, note, created_at)
        SELECT 'bench' || g || '@example.com',
               (ARRAY['unsubscribed', 'hard_bounce', 'complaint', 'manual'])[1 + g %% 4], '', now() - interval '2 days'
        FROM generate_series(%s, %s) g
        """,
        [opted_in + 1, opted_in + suppressed],
    )
    cursor.execute("ANALYZE customers_customer; ANALYZE messaging_suppression")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", default=DEFAULT_DB)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    parser.add_argument("--queue", type=int, default=100_000)
    parser.add_argument("--deliver", type=int, default=20_000)
    args = parser.parse_args()
    setup_django(args.database_url)
    from django.core.management import call_command
    from django.db import connection, transaction

    from customers.models import Customer
    from messaging.models import Message, MessageTemplate
    from messaging.services import messages_queue_bulk

    call_command("migrate", verbosity=0)
    # This process has no broker (eager tasks): the kick after commit would deliver right here. The
    # worker below delivers; here the queueing is timed alone.
    import messaging.services.sending

    messaging.services.sending._kick_deliverer = lambda: None
    MessageTemplate.objects.update_or_create(
        key="bench",
        defaults={
            "name": "Bench",
            "purpose": "marketing",
            "variables": "offer",
            "subject_en": "Hello {{ customer.first_name }}",
            "text_en": "Dear {{ customer.full_name }}, {{ offer }}.\nUnsubscribe: {{ unsubscribe_url }}\n",
            "html_en": "<p>Dear {{ customer.full_name }}, {{ offer }}.</p><p><a href='{{ unsubscribe_url }}'>Unsubscribe</a></p>",
            "subject_zh_hans": "你好 {{ customer.first_name }}",
            "text_zh_hans": "亲爱的 {{ customer.full_name }}，{{ offer }}。\n退订：{{ unsubscribe_url }}\n",
        },
    )
    suppressed, no_consent = args.queue // 50, args.queue // 20
    with connection.cursor() as cursor:
        make_customers(cursor, opted_in=args.queue, suppressed=suppressed, no_consent=no_consent)
    result: dict = {
        "customers": args.queue + suppressed + no_consent,
        "suppressed": suppressed,
        "no_consent": no_consent,
    }

    def floor() -> float:
        """The same rows, a plain INSERT ... SELECT into the same table (same indexes), then emptied."""
        with connection.cursor() as cursor:
            started = time.perf_counter()
            with transaction.atomic():
                cursor.execute(
                    """
                    INSERT INTO messaging_message
                        (key, purpose, template_id, customer_id, to_email, language, context, state,
                         suppressed_reason, attempts, last_error, provider_message_id, created_at, next_attempt_at)
                    SELECT 'floor:' || c.id, 'marketing', t.id, c.id, lower(c.email), c.language,
                           '{"offer": "10%% off"}', 'queued', '', 0, '', '', now(), now()
                    FROM customers_customer c, messaging_messagetemplate t
                    WHERE t.key = 'bench' AND c.id <= (SELECT min(id) FROM customers_customer) + %s - 1
                    """,
                    [args.queue],
                )
                assert cursor.rowcount == args.queue
            seconds = time.perf_counter() - started
            cursor.execute("TRUNCATE messaging_message")
        return seconds

    def queue() -> tuple[float, int]:
        started = time.perf_counter()
        with transaction.atomic():
            queued = messages_queue_bulk(
                customers=Customer.objects.all(),
                template="bench",
                key="bench:{customer_id}",
                purpose="marketing",
                context={"offer": "10% off"},
            )
        return time.perf_counter() - started, queued

    # Alternate them, twice each, and keep the best of each: the first statement pays for cold caches.
    floors, queues = [floor()], [queue()]
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE messaging_message")
    floors.append(floor())
    queues.append(queue())
    result["floor_seconds"] = [round(x, 3) for x in floors]
    result["queue_seconds"] = [round(x, 3) for x, _n in queues]
    result["queued"] = queues[-1][1]
    result["queue_vs_floor"] = round(min(x for x, _n in queues) / min(floors), 2)
    started = time.perf_counter()
    again = messages_queue_bulk(
        customers=Customer.objects.all(), template="bench", key="bench:{customer_id}", purpose="marketing"
    )
    result["requeue_seconds_all_conflicts"] = round(time.perf_counter() - started, 3)
    result["requeued"] = again

    # Delivery: keep the first --deliver messages due, the rest for later.
    keep = Message.objects.order_by("id").values_list("id", flat=True)[args.deliver - 1]
    Message.objects.filter(id__gt=keep).update(next_attempt_at="2100-01-01T00:00:00Z")
    port = free_port()
    smtp = subprocess.Popen(
        [sys.executable, "-m", "aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Sink", "-l", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    queue = f"bench-{uuid.uuid4().hex}"
    env = {
        **os.environ,
        "DATABASE_URL": args.database_url,
        "REDIS_URL": args.redis_url,
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "EMAIL_URL": f"smtp://127.0.0.1:{port}",
        "DEBUG": "false",
        "SECRET_KEY": "bench-" + uuid.uuid4().hex * 2,
        "LOG_LEVEL": "WARNING",
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queue, "--pool", "solo", "-l", "warning"],
        cwd=ROOT,
        env=env,
    )
    try:
        from celery import Celery

        time.sleep(4)  # the worker's start-up, out of its CPU figure
        worker_cpu, smtp_cpu = cpu_seconds(worker.pid), cpu_seconds(smtp.pid)
        Celery(broker=args.redis_url, set_as_current=False).send_task("messaging.tasks.messages_deliver", queue=queue)
        samples, started = [], time.perf_counter()
        while True:
            time.sleep(0.5)
            samples.append(round(rss_mb(worker.pid), 1))
            left = Message.objects.filter(id__lte=keep, state__in=["queued", "sending"]).count()
            if left == 0 or time.perf_counter() - started > 900:
                break
        wall = time.perf_counter() - started
        worker_cpu, smtp_cpu = cpu_seconds(worker.pid) - worker_cpu, cpu_seconds(smtp.pid) - smtp_cpu
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        smtp.terminate()
    done = Message.objects.filter(id__lte=keep)
    from django.db.models import Count, Max, Min

    figures = done.aggregate(first=Min("sent_at"), last=Max("sent_at"), sent=Count("id", filter=~not_sent_q()))
    span = (figures["last"] - figures["first"]).total_seconds()
    result.update(
        {
            "delivered": done.filter(state="sent").count(),
            "not_sent": dict(done.exclude(state="sent").values_list("state").annotate(n=Count("id"))),
            "deliver_wall_seconds_incl_worker_start": round(wall, 1),
            "messages_per_second_first_to_last_send": round((figures["sent"] - 1) / span, 1) if span else None,
            "worker_rss_mb": {
                "after_2s": samples[min(3, len(samples) - 1)],
                "middle": samples[len(samples) // 2],
                "end": samples[-1],
                "max": max(samples),
            },
            "worker_cpu_seconds": round(worker_cpu, 2),
            "smtp_server_cpu_seconds": round(smtp_cpu, 2),
            # What one worker would do with a core of its own (the machine is shared and loaded).
            "messages_per_worker_cpu_second": round(args.deliver / worker_cpu, 1) if worker_cpu else None,
            "load_average": os.getloadavg(),
        }
    )
    print(json.dumps(result, indent=2, default=str))


def not_sent_q():
    from django.db.models import Q

    return Q(state="failed") | Q(state="suppressed") | Q(sent_at__isnull=True)


if __name__ == "__main__":
    main()
