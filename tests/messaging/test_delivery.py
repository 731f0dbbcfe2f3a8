"""The deliverer in this process against the loopback SMTP server: checks at send time, connection
errors, the pause switch, and the races (real threads on PostgreSQL)."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from customers.models import Customer
from messaging.models import Message, OutboxState, Suppression
from messaging.services import message_send, messages_deliver_due, messages_queue_bulk, suppression_add
from messaging.services.delivery import messages_claim, outbox_check_health
from tests.factories import CustomerFactory
from tests.messaging.factories import MessageTemplateFactory, opted_in_customer
from tests.races import race

pytestmark = pytest.mark.django_db


@pytest.fixture
def smtp(mailbox, settings):
    mailbox.settings(settings)
    settings.MESSAGING_RETRY_BASE_SECONDS = 60
    MessageTemplateFactory(key="news")
    return mailbox


def test_a_suppression_added_after_queueing_stops_the_send(smtp):
    customer = opted_in_customer()
    message = message_send(customer=customer, template="news", key="k", purpose="marketing")
    suppression_add(address=customer.email, reason="complaint")
    assert messages_deliver_due()["suppressed"] == 1
    message.refresh_from_db()
    assert (message.state, message.suppressed_reason) == ("suppressed", "complaint")
    assert smtp.received == []


def test_consent_withdrawn_after_queueing_stops_marketing(smtp):
    customer = opted_in_customer()
    message = message_send(customer=customer, template="news", key="k", purpose="marketing")
    Customer.objects.filter(pk=customer.pk).update(email_opt_in=False, email_opt_in_at=None)
    messages_deliver_due()
    message.refresh_from_db()
    assert (message.state, message.suppressed_reason) == ("suppressed", "no_consent")


def test_a_server_that_is_down_is_a_retry_with_backoff(smtp, settings):
    settings.EMAIL_PORT = 1  # nothing listens there
    customers = [opted_in_customer() for _ in range(3)]
    for c in customers:
        message_send(customer=c, template="news", key=f"k{c.pk}", purpose="marketing")
    totals = messages_deliver_due()
    assert totals["connection_lost"] == 1 and totals["sent"] == 0 and totals["batches"] == 1
    # Given back untried (no attempt counted), with the reason, to wait a backoff: not hammered.
    for message in Message.objects.all():
        assert message.state == "queued" and message.attempts == 0 and "Connection refused" in message.last_error
        assert message.next_attempt_at > timezone.now() + timedelta(seconds=50)


def test_one_connection_per_batch(smtp, settings, monkeypatch):
    from django.core.mail.backends.smtp import EmailBackend

    opened = []
    real_open = EmailBackend.open

    def counting_open(self):
        if self.connection is None:
            opened.append(1)
        return real_open(self)

    monkeypatch.setattr(EmailBackend, "open", counting_open)
    settings.MESSAGING_BATCH_SIZE = 5
    for _ in range(10):
        opted_in_customer()
    messages_queue_bulk(customers=Customer.objects.all(), template="news", key="c:{customer_id}", purpose="marketing")
    assert messages_deliver_due()["sent"] == 10
    assert len(opened) == 2


def test_messages_go_out_in_batches_over_one_connection_each(smtp, settings):
    settings.MESSAGING_BATCH_SIZE = 4
    for _ in range(10):
        opted_in_customer()
    messages_queue_bulk(customers=Customer.objects.all(), template="news", key="b:{customer_id}", purpose="marketing")
    totals = messages_deliver_due()
    assert totals["sent"] == 10 and totals["batches"] == 3
    assert len(smtp.received) == 10


def test_a_lease_that_ends_lets_another_worker_take_the_message(smtp):
    customer = opted_in_customer()
    message_send(customer=customer, template="news", key="k", purpose="marketing")
    ids, _lease = messages_claim(limit=10)
    assert messages_claim(limit=10)[0] == []  # claimed: nobody else gets it
    Message.objects.filter(pk__in=ids).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert messages_claim(limit=10)[0] == ids


def test_a_late_worker_cannot_overwrite_the_new_claim(smtp):
    from messaging.services.delivery import _mark_sent

    message_send(customer=opted_in_customer(), template="news", key="k", purpose="marketing")
    ids, old_lease = messages_claim(limit=10)
    Message.objects.filter(pk__in=ids).update(lease_until=timezone.now() - timedelta(seconds=1))
    _new_ids, new_lease = messages_claim(limit=10)
    _mark_sent(ids[0], old_lease, "late")
    message = Message.objects.get()
    assert message.state == "sending" and message.lease_until == new_lease and message.attempts == 2


def test_permanent_failures_past_the_share_pause_marketing_and_alert_once(smtp, settings, mailoutbox):
    settings.MESSAGING_PAUSE_MIN_MESSAGES = 10
    settings.MESSAGING_PAUSE_FAILURE_RATE = 0.2
    settings.ADMINS = [("ops", "ops@example.com")]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"  # to read the alert
    template = Message.template.field.related_model.objects.get(key="news")
    now = timezone.now()
    customer = CustomerFactory()
    Message.objects.bulk_create(
        Message(
            key=f"h{i}",
            purpose="marketing",
            template=template,
            customer=customer,
            to_email="x@example.com",
            language="en",
            created_at=now,
            state="failed" if i < 3 else "sent",
            failed_at=now if i < 3 else None,
            sent_at=None if i < 3 else now,
        )
        for i in range(10)
    )
    assert "3 of 10" in outbox_check_health()
    assert outbox_check_health()  # still paused, no second alert
    assert [m.to for m in mailoutbox] == [["ops@example.com"]]
    # Paused: marketing waits, transactional still goes.
    marketing = message_send(customer=opted_in_customer(), template="news", key="m", purpose="marketing")
    transactional = message_send(customer=opted_in_customer(), template="news", key="t", purpose="transactional")
    messages_deliver_due()
    marketing.refresh_from_db()
    transactional.refresh_from_db()
    assert (marketing.state, transactional.state) == ("queued", "sent")


def test_unsubscribes_past_the_share_pause_and_a_resume_starts_counting_again(smtp, settings):
    from messaging.services import outbox_resume

    settings.MESSAGING_PAUSE_MIN_MESSAGES = 5
    settings.MESSAGING_PAUSE_UNSUBSCRIBE_RATE = 0.1
    for _ in range(5):
        opted_in_customer()
    messages_queue_bulk(customers=Customer.objects.all(), template="news", key="u:{customer_id}", purpose="marketing")
    messages_deliver_due()
    Suppression.objects.create(address="gone@example.com", reason="unsubscribed")
    assert outbox_check_health().startswith("1 unsubscribes")
    assert OutboxState.objects.get().paused
    outbox_resume()
    assert outbox_check_health() == ""  # nothing sent since the resume


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_requests_for_the_same_key_write_one_message():
    MessageTemplateFactory(key="news")
    customer = opted_in_customer()

    def send():
        with transaction.atomic():
            message = message_send(customer=customer, template="news", key="same", purpose="marketing")
            return message.pk

    for _round in range(5):
        Message.objects.all().delete()
        results, errors = race(send, send, send)
        assert errors == []
        assert len(set(results)) == 1 and Message.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_deliverers_at_once_send_each_message_once(mailbox, settings, monkeypatch):
    monkeypatch.setattr("messaging.services.sending._kick_deliverer", lambda: None)  # the race delivers
    mailbox.settings(settings)
    settings.MESSAGING_BATCH_SIZE = 3
    MessageTemplateFactory(key="news")
    for _ in range(30):
        opted_in_customer()
    messages_queue_bulk(customers=Customer.objects.all(), template="news", key="r:{customer_id}", purpose="marketing")
    results, errors = race(messages_deliver_due, messages_deliver_due)
    assert errors == []
    assert sum(r["sent"] for r in results) == 30
    assert all(r["sent"] for r in results)  # both took a share
    assert sorted(a for m in mailbox.received for a in m.rcpt_tos) == sorted(
        Customer.objects.values_list("email", flat=True)
    )
