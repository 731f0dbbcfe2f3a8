"""The login link end to end through the outbox and a real SMTP server on loopback (aiosmtpd):
asked for on the page, delivered in the customer's language, read out of the mailbox, spent."""

import re

import pytest
from django.urls import reverse

from messaging.models import Message, Suppression
from messaging.services import suppression_add
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

LINK = re.compile(r"https?://\S+?(/portal/link/[\w-]+/)")


@pytest.fixture
def smtp(mailbox, settings):
    mailbox.settings(settings)
    return mailbox


def _ask(client, email, capture):
    with capture(execute=True):
        response = client.post(reverse("portal:login"), {"email": email})
    assert response.status_code == 302
    return response


def test_the_link_arrives_by_smtp_and_logs_in(client, smtp, django_capture_on_commit_callbacks):
    customer = CustomerFactory(email="Ada@Example.com", first_name="Ada")
    _ask(client, "ada@example.com", django_capture_on_commit_callbacks)
    [mail] = smtp.wait_for(1)
    assert mail.rcpt_tos == ["ada@example.com"]
    assert mail.subject == "Your login link" and "Hello Ada" in mail.text()
    path = LINK.search(mail.text()).group(1)
    assert path in mail.html()
    message = Message.objects.get()
    assert (message.state, message.purpose, message.customer_id) == ("sent", "transactional", customer.pk)
    assert message.context == {}  # the sign-in link is erased from the outbox once sent
    # No List-Unsubscribe on a transactional message.
    assert mail.header("List-Unsubscribe") is None

    assert client.post(path)["Location"] == reverse("portal:home")
    assert "Ada" in client.get(reverse("portal:home")).content.decode()


def test_the_link_is_written_in_the_customers_language(client, smtp, django_capture_on_commit_callbacks):
    CustomerFactory(email="li@example.com", first_name="Li", language="zh-hans")
    _ask(client, "li@example.com", django_capture_on_commit_callbacks)
    [mail] = smtp.wait_for(1)
    assert mail.subject == "您的登录链接" and "Li好" in mail.text()


def test_the_link_ignores_marketing_consent_but_not_a_hard_bounce(client, smtp, django_capture_on_commit_callbacks):
    CustomerFactory(email="no-news@example.com", email_opt_in=False)
    bounced = CustomerFactory(email="bounced@example.com")
    suppression_add(address=bounced.email, reason=Suppression.Reason.HARD_BOUNCE)
    _ask(client, "no-news@example.com", django_capture_on_commit_callbacks)
    _ask(client, "bounced@example.com", django_capture_on_commit_callbacks)
    assert [m.rcpt_tos for m in smtp.wait_for(1)] == [["no-news@example.com"]]
    suppressed = Message.objects.get(customer=bounced)
    assert suppressed.state == Message.State.SUPPRESSED and suppressed.context == {}  # no link kept


def test_an_unknown_address_sends_nothing(client, smtp, django_capture_on_commit_callbacks):
    _ask(client, "nobody@example.com", django_capture_on_commit_callbacks)
    assert smtp.received == [] and not Message.objects.exists()
