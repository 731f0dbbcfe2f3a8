"""The outbox end to end: a real Celery worker process (`celery -A config worker`) fed through
Redis, working on this test's PostgreSQL database, delivering to a real SMTP server on loopback
(aiosmtpd, tests/mailbox.py). Delivery, a 4xx retried, a 5xx failed for good, a worker killed
(SIGKILL) mid-batch, and the same task run twice at once."""

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.db import connection, transaction

from customers.models import Customer
from messaging.models import Message, Suppression
from messaging.services import message_send, messages_queue_bulk
from tests.conftest import broker_client, skip_or_fail
from tests.messaging.factories import MessageTemplateFactory, opted_in_customer

ROOT = Path(__file__).resolve().parents[2]
# A database of Redis of its own (and a queue per test), so other sessions' workers never see these tasks.
REDIS_URL = os.environ.get("OUTBOX_TEST_REDIS_URL", "redis://127.0.0.1:6379/11")

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _needs_redis():
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.exceptions.ConnectionError:
        skip_or_fail(f"needs Redis at {REDIS_URL}")


@pytest.fixture
def queue(monkeypatch):
    """A queue of this test's own; the outbox's kick after commit goes to it through Redis."""
    name = f"outbox-test-{uuid.uuid4().hex}"
    app = broker_client(REDIS_URL)

    def kick():
        app.send_task("messaging.tasks.messages_deliver", queue=name)

    monkeypatch.setattr("messaging.services.sending._kick_deliverer", kick)
    yield name
    app.close()


@contextmanager
def worker(queue: str, mailbox, **settings):
    """A worker process on the test database and the mailbox; `settings` become its environment."""
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "true",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "REDIS_URL": REDIS_URL,
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "EMAIL_URL": mailbox.email_url,
        "MESSAGING_RETRY_BASE_SECONDS": "0.5",
        **{name: str(value) for name, value in settings.items()},
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queue, "--pool", "solo", "-l", "warning"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
        output = process.communicate(timeout=30)[0].decode(errors="replace")
        if process.returncode not in (0, -signal.SIGKILL, -signal.SIGTERM):
            print(output)  # shown when the test fails


def wait_until(condition, *, timeout=60.0, what="the outbox"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}: {Counter(Message.objects.values_list('state', flat=True))}")


def _settled() -> bool:
    return not Message.objects.filter(state__in=[Message.State.QUEUED, Message.State.SENDING]).exists()


@pytest.fixture
def news():
    return MessageTemplateFactory(key="news", html_en="<p>{{ customer.full_name }} {{ offer }}</p>")


def test_a_worker_delivers_retries_a_4xx_and_fails_a_5xx(queue, mailbox, news):
    good, flaky, bad = opted_in_customer(first_name="Ada"), opted_in_customer(), opted_in_customer()
    mailbox.refuse(flaky.email, "451 4.3.0 Mailbox busy, try later", times=2)
    mailbox.refuse(bad.email, "550 5.1.1 No such user")
    with worker(queue, mailbox):
        with transaction.atomic():
            for customer in (good, flaky, bad):
                message_send(
                    customer=customer,
                    template="news",
                    context={"offer": "<b>10%</b>"},
                    key=f"n{customer.pk}",
                    purpose="marketing",
                )
        wait_until(_settled)

    sent = Message.objects.get(customer=good)
    assert sent.state == Message.State.SENT and sent.attempts == 1 and sent.sent_at
    [mail] = mailbox.to(good.email)
    assert mail.subject == "Hello Ada"
    assert mail.header("List-Unsubscribe-Post") == "List-Unsubscribe=One-Click"
    assert mail.header("List-Unsubscribe").startswith("<http") and "/email/unsubscribe/" in mail.header(
        "List-Unsubscribe"
    )
    assert "&lt;b&gt;10%&lt;/b&gt;" in mail.html()  # HTML autoescaped
    assert "<b>10%</b>" in mail.text()  # the text part is not
    assert sent.provider_message_id == mail.header("Message-ID")

    retried = Message.objects.get(customer=flaky)
    assert retried.state == Message.State.SENT and retried.attempts == 3
    assert len(mailbox.to(flaky.email)) == 1

    failed = Message.objects.get(customer=bad)
    assert failed.state == Message.State.FAILED and failed.attempts == 1
    assert failed.last_error.startswith("550 5.1.1 No such user")
    assert mailbox.to(bad.email) == []
    assert Suppression.objects.get(address=bad.email.lower()).reason == Suppression.Reason.HARD_BOUNCE


def test_a_4xx_that_never_ends_fails_after_the_cap(queue, mailbox, news):
    customer = opted_in_customer()
    mailbox.refuse(customer.email, "421 4.7.0 Too many connections")
    with worker(queue, mailbox, MESSAGING_MAX_ATTEMPTS=3, MESSAGING_RETRY_BASE_SECONDS=0.2):
        message_send(customer=customer, template="news", key="capped", purpose="marketing")
        wait_until(_settled)
    message = Message.objects.get()
    assert message.state == Message.State.FAILED and message.attempts == 3
    assert "Gave up after 3 attempts" in message.last_error and "421" in message.last_error


def test_a_worker_killed_mid_batch_loses_nothing_and_sends_at_most_one_twice(queue, mailbox, news):
    customers = [opted_in_customer() for _ in range(30)]
    mailbox.delay = 0.1  # 3 s for the batch: time to kill the worker in the middle
    lease = 4
    with worker(queue, mailbox, MESSAGING_LEASE_SECONDS=lease, MESSAGING_BATCH_SIZE=30) as first:
        messages_queue_bulk(
            customers=Customer.objects.all(), template="news", key="kill:{customer_id}", purpose="marketing"
        )
        mailbox.wait_for(8, timeout=60)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    killed_at = time.monotonic()
    states = Counter(Message.objects.values_list("state", flat=True))
    assert states[Message.State.SENDING] >= 10, states  # the rest of the batch was claimed and is stranded
    mailbox.delay = 0
    with worker(queue, mailbox, MESSAGING_LEASE_SECONDS=lease):
        from messaging.services.sending import _kick_deliverer

        _kick_deliverer()  # finds the stranded messages still leased, and comes back when the lease ends
        wait_until(_settled)
    assert time.monotonic() - killed_at >= lease - 1  # nothing was taken before the lease ended

    assert set(Message.objects.values_list("state", flat=True)) == {Message.State.SENT}
    per_address = Counter(address for mail in mailbox.received for address in mail.rcpt_tos)
    assert set(per_address) == {c.email for c in customers}  # nothing lost
    assert sum(1 for n in per_address.values() if n > 1) <= 1  # at most the one in flight went twice
    assert max(per_address.values()) <= 2


def test_the_same_task_run_twice_at_once_sends_each_message_once(queue, mailbox, news):
    customers = [opted_in_customer() for _ in range(40)]
    mailbox.delay = 0.02
    with worker(queue, mailbox, MESSAGING_BATCH_SIZE=5), worker(queue, mailbox, MESSAGING_BATCH_SIZE=5):
        with transaction.atomic():
            messages_queue_bulk(
                customers=Customer.objects.all(), template="news", key="twice:{customer_id}", purpose="marketing"
            )
            from messaging.services.sending import _kick_deliverer

            transaction.on_commit(_kick_deliverer)  # a second run of the task besides the outbox's own kick
        wait_until(_settled)
    per_address = Counter(address for mail in mailbox.received for address in mail.rcpt_tos)
    assert per_address == Counter({c.email: 1 for c in customers})
    assert Message.objects.filter(state=Message.State.SENT, attempts=1).count() == 40
