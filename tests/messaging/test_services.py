"""message_send and messages_queue_bulk: idempotent keys, consent, suppression, the kick after commit."""

import pytest

from core.demo import demo_data_loading
from customers.models import Customer
from messaging.models import Message, MessageTemplate
from messaging.services import message_send, messages_queue_bulk, suppression_add
from tests.factories import CustomerFactory
from tests.messaging.factories import MessageTemplateFactory, opted_in_customer

pytestmark = pytest.mark.django_db


@pytest.fixture
def template():
    return MessageTemplateFactory(key="news")


def test_message_send_queues_once_per_key_and_kicks_delivery_after_commit(
    template, django_capture_on_commit_callbacks, mailoutbox
):
    customer = opted_in_customer(first_name="Ada", language="zh-hans")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        first = message_send(
            customer=customer, template="news", context={"offer": "10%"}, key="news:1", purpose="marketing"
        )
        again = message_send(
            customer=customer, template="news", context={"offer": "20%"}, key="news:1", purpose="marketing"
        )
    assert again.pk == first.pk and Message.objects.count() == 1
    assert len(callbacks) == 1  # one delivery run per transaction
    first.refresh_from_db()
    assert first.state == Message.State.SENT and first.language == "zh-hans"
    [email] = mailoutbox
    assert email.subject == "你好 Ada" and "10%" in email.body
    assert email.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert email.extra_headers["List-Unsubscribe"].startswith("<http")


def test_marketing_needs_consent_transactional_does_not(template):
    customer = CustomerFactory(email_opt_in=False)
    marketing = message_send(customer=customer, template="news", context={}, key="m", purpose="marketing")
    transactional = message_send(customer=customer, template="news", context={}, key="t", purpose="transactional")
    assert (marketing.state, marketing.suppressed_reason) == (Message.State.SUPPRESSED, "no_consent")
    assert transactional.state in (Message.State.QUEUED, Message.State.SENT)


@pytest.mark.parametrize(
    ("reason", "marketing_blocked", "transactional_blocked"),
    [("unsubscribed", True, False), ("manual", True, False), ("hard_bounce", True, True), ("complaint", True, True)],
)
def test_suppression_reasons(template, reason, marketing_blocked, transactional_blocked):
    customer = opted_in_customer(email="Someone@Example.com")
    suppression_add(address="  someone@EXAMPLE.com ", reason=reason)
    marketing = message_send(customer=customer, template="news", key="m", purpose="marketing")
    transactional = message_send(customer=customer, template="news", key="t", purpose="transactional")
    assert (marketing.state == Message.State.SUPPRESSED) is marketing_blocked
    assert (transactional.state == Message.State.SUPPRESSED) is transactional_blocked
    if marketing_blocked:
        assert marketing.suppressed_reason == reason


def test_bulk_queue_applies_consent_and_suppression_in_sql(template, django_assert_num_queries):
    opted = [opted_in_customer() for _ in range(5)]
    CustomerFactory(email_opt_in=False)
    CustomerFactory(email=None, email_opt_in=False)
    suppression_add(address=opted[0].email.upper(), reason="unsubscribed")
    with django_assert_num_queries(2):  # the template, the INSERT ... SELECT
        queued = messages_queue_bulk(
            customers=Customer.objects.all(),
            template="news",
            key="spring:{customer_id}",
            purpose="marketing",
            context={"offer": "x"},
        )
    assert queued == 4
    assert set(Message.objects.values_list("customer_id", flat=True)) == {c.pk for c in opted[1:]}
    assert Message.objects.get(customer=opted[1]).key == f"spring:{opted[1].pk}"
    assert Message.objects.get(customer=opted[1]).context == {"offer": "x"}
    # Again: every key exists, nothing is queued twice.
    assert (
        messages_queue_bulk(
            customers=Customer.objects.all(), template="news", key="spring:{customer_id}", purpose="marketing"
        )
        == 0
    )


def test_bulk_transactional_skips_only_bounces(template):
    a, b, c = CustomerFactory(), CustomerFactory(), CustomerFactory()
    suppression_add(address=a.email, reason="unsubscribed")
    suppression_add(address=b.email, reason="hard_bounce")
    queued = messages_queue_bulk(
        customers=Customer.objects.all(), template="news", key="t:{customer_id}", purpose="transactional"
    )
    assert queued == 2
    assert set(Message.objects.values_list("customer_id", flat=True)) == {a.pk, c.pk}


def test_unknown_template_and_bad_key_are_domain_errors(template):
    from core.exceptions import DomainError

    customer = CustomerFactory()
    with pytest.raises(DomainError):
        message_send(customer=customer, template="nope", key="k", purpose="marketing")
    with pytest.raises(DomainError):
        message_send(customer=customer, template="news", key="k", purpose="spam")
    with pytest.raises(DomainError):
        messages_queue_bulk(customers=Customer.objects.all(), template="news", key="no-id", purpose="marketing")


def test_the_portal_login_template_ships():
    template = MessageTemplate.objects.get(key="portal_login")
    assert template.purpose == "transactional" and template.subject_zh_hans
    template.full_clean()


def test_beat_runs_the_deliverer_every_minute():
    from django_celery_beat.models import PeriodicTask

    from config.celery import app

    task = PeriodicTask.objects.get(name="Outbox delivery")
    assert task.enabled and (task.interval.every, task.interval.period) == (1, "minutes")
    assert task.task in app.tasks


def test_a_rolled_back_transaction_leaves_no_message_and_no_kick(template, django_capture_on_commit_callbacks):
    from django.db import transaction

    customer = opted_in_customer()
    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(RuntimeError), transaction.atomic():
        message_send(customer=customer, template="news", key="gone", purpose="marketing")
        raise RuntimeError
    assert callbacks == [] and not Message.objects.filter(key="gone").exists()


def test_while_the_demo_data_loads_messages_are_recorded_as_suppressed_and_never_sent(
    template, django_capture_on_commit_callbacks, mailoutbox
):
    customers = [opted_in_customer() for _ in range(3)]
    with django_capture_on_commit_callbacks(execute=True) as callbacks, demo_data_loading():
        one = message_send(customer=customers[0], template="news", key="demo:1", purpose="transactional")
        bulk = messages_queue_bulk(
            customers=Customer.objects.all(), template="news", key="demo-bulk:{customer_id}", purpose="marketing"
        )
    assert (one.state, one.suppressed_reason, one.next_attempt_at) == (Message.State.SUPPRESSED, "demo", None)
    assert bulk == 3
    rows = Message.objects.filter(key__startswith="demo-bulk:")
    assert set(rows.values_list("state", "suppressed_reason")) == {("suppressed", "demo")}
    assert not rows.filter(next_attempt_at__isnull=False).exists()
    assert callbacks == [] and mailoutbox == []  # no delivery run was even kicked
    # Outside the demo, the same customers get their e-mail as ever.
    with django_capture_on_commit_callbacks(execute=True):
        after = message_send(customer=customers[0], template="news", key="real:1", purpose="transactional")
    after.refresh_from_db()
    assert after.state == Message.State.SENT and len(mailoutbox) == 1
