"""A broker that is down (core.enqueue): the request that starts a job says so plainly, the error
is logged, and nothing is half-written: no job or run is left queued that no worker will see."""

import logging

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from core.enqueue import QueueUnavailable, enqueue
from core.models import Job
from customers.services.imports import import_job_start
from lifecycle.models import ClvRun
from lifecycle.services.clv_runs import clv_run_start
from lifecycle.services.stages_jobs import lifecycle_evaluate_start

pytestmark = pytest.mark.django_db

ORDERS = b"customer_id,order_id,ordered_at,amount\nC1,O1,2024-03-05,10.00\n"


def test_a_send_that_fails_raises_a_domain_error_and_logs(broker_down, caplog):
    with pytest.raises(QueueUnavailable) as raised, caplog.at_level(logging.ERROR, logger="core.enqueue"):
        enqueue("portal.tasks.login_link_send", "a@example.com", "request-1")
    assert "try again in a minute" in raised.value.message
    assert "portal.tasks.login_link_send" in caplog.text and "unreachable" in caplog.text


def test_a_recompute_with_the_broker_down_writes_nothing(broker_down, manager):
    with pytest.raises(QueueUnavailable):
        clv_run_start(created_by=manager)
    assert not ClvRun.objects.exists() and not Job.objects.exists()


def test_an_evaluation_with_the_broker_down_writes_nothing(broker_down, manager):
    with pytest.raises(QueueUnavailable):
        lifecycle_evaluate_start(created_by=manager, enqueue=True)
    assert not Job.objects.exists()


def test_an_import_with_the_broker_down_writes_nothing_and_keeps_no_file(broker_down, manager, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    upload = SimpleUploadedFile("orders.csv", ORDERS, content_type="text/csv")
    with pytest.raises(QueueUnavailable):
        import_job_start(kind="orders", uploaded_file=upload, user=manager)
    assert not Job.objects.exists()
    assert not any(tmp_path.rglob("*.csv"))


def test_the_recompute_page_says_to_try_again(broker_down, client, manager):
    client.force_login(manager)
    page = client.post(reverse("lifecycle:recompute"), follow=True)
    assert page.status_code == 200
    assert "The job could not be started now. Please try again in a minute." in page.text
    assert not ClvRun.objects.exists()


def test_the_outbox_keeps_the_message_when_the_broker_is_down(broker_down, django_capture_on_commit_callbacks, caplog):
    """The one path that does not refuse: the message is stored, and beat's run every minute sends it."""
    from messaging.models import Message
    from messaging.services import message_send
    from tests.messaging.factories import MessageTemplateFactory, opted_in_customer

    MessageTemplateFactory(key="news")
    with django_capture_on_commit_callbacks(execute=True):
        message = message_send(customer=opted_in_customer(), template="news", key="k1", purpose="marketing")
    assert Message.objects.get(pk=message.pk).state == Message.State.QUEUED
    assert "could not queue messaging.tasks.messages_deliver" in caplog.text


def test_a_survey_answer_is_not_refused_when_the_survey_bonus_cannot_be_queued(broker_down, caplog):
    """Loyalty's listener runs after the answer committed: it logs the broker, it does not raise."""
    from types import SimpleNamespace

    from loyalty.receivers import survey_bonus_on_response

    survey_bonus_on_response(sender=None, response=SimpleNamespace(pk=1))
    assert "could not queue loyalty.tasks.loyalty_survey_bonus" in caplog.text
