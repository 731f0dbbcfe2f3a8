"""The retention run in a real Celery worker process (Redis broker, this test's PostgreSQL database,
real SMTP on loopback), killed with SIGKILL in the middle of the run and started again: every
intervention e-mail is queued and sent exactly once, every offer made and credited exactly once."""

import signal
import time
import uuid
from collections import Counter

import pytest
from django.db import connection
from django.utils import timezone

from customers.models import Customer
from lifecycle.models_health import CustomerHealth
from lifecycle.models_retention import RetentionAction, RetentionIntervention, RetentionOffer, interventions_ensure
from messaging.models import Message
from tests.conftest import broker_client
from tests.factories import CustomerFactory
from tests.messaging.test_worker import REDIS_URL, _needs_redis, wait_until, worker  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _at_risk(level: int, n: int) -> list[Customer]:
    customers = [CustomerFactory(email_opt_in=True, email_opt_in_at=timezone.now()) for _ in range(n)]
    CustomerHealth.objects.bulk_create(
        CustomerHealth(
            customer=c, score=30, activity_points=0, breadth_points=0, service_points=20, feedback_points=10,
            churn_risk=level, changed_at=timezone.now(),
        )
        for c in customers
    )
    return customers


def _worker_in_level_3() -> bool:
    """The worker's transaction is crediting level 3's bonus points right now (not yet committed)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND xact_start IS NOT NULL AND query ILIKE %s",
            ["%loyalty_%"],
        )
        return cursor.fetchone()[0] > 0


def test_a_worker_killed_mid_run_and_restarted_sends_every_intervention_once(mailbox):
    from loyalty.models import LedgerEntry

    interventions_ensure()  # an earlier transactional test's flush removed the migration's rows
    # Level 3 in points: one ledger post per customer makes its transaction long enough to be killed in.
    RetentionIntervention.objects.filter(level=3).update(offer="points", offer_points=100)
    care, offer = _at_risk(1, 20), _at_risk(3, 150)
    queue = f"retention-test-{uuid.uuid4().hex}"
    app = broker_client(REDIS_URL)
    try:
        with worker(queue, mailbox) as first:
            app.send_task("lifecycle.tasks.retention_daily", queue=queue)
            deadline = time.monotonic() + 120
            while not _worker_in_level_3():
                assert first.poll() is None and time.monotonic() < deadline, "the run never reached level 3"
                time.sleep(0.01)
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        # Level 1 committed before the kill; level 3's transaction died with the worker: none of it stays.
        wait_until(lambda: not _worker_in_level_3(), what="the killed worker's transaction to end")
        assert RetentionAction.objects.filter(level=1).count() == 20
        assert not RetentionAction.objects.filter(level=3).exists()
        assert not RetentionOffer.objects.exists() and not LedgerEntry.objects.exists()
        assert not Message.objects.filter(key__startswith="retention:3:").exists()

        with worker(queue, mailbox):
            # Beat's next tick (or the broker redelivering the task), twice: the rest once, nothing again.
            app.send_task("lifecycle.tasks.retention_daily", queue=queue)
            app.send_task("lifecycle.tasks.retention_daily", queue=queue)
            wait_until(lambda: Message.objects.filter(key__startswith="retention:3:").count() == 150, what="level 3")
            wait_until(
                lambda: not Message.objects.filter(state__in=[Message.State.QUEUED, Message.State.SENDING]).exists()
                and len(mailbox.received) >= 170,
                timeout=120,
            )
            time.sleep(1)  # the second task had its turn: nothing more arrives
    finally:
        app.close()

    per_address = Counter(address for mail in mailbox.received for address in mail.rcpt_tos)
    assert per_address == Counter({c.email.lower(): 1 for c in care + offer})
    assert Message.objects.filter(state=Message.State.SENT).count() == 170
    assert RetentionAction.objects.filter(level=3).count() == 150 and RetentionOffer.objects.count() == 150
    assert LedgerEntry.objects.count() == 150
    assert set(LedgerEntry.objects.values_list("points", flat=True)) == {100}
    assert "100 bonus points" in mailbox.to(offer[0].email)[0].text()
