"""The unsubscribe link (RFC 8058 one-click POST, the confirm page, resubscribe), the staff outbox
page and the pause switch, the customer-page panel and the home banner."""

import time

import pytest
from django.core import signing
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from messaging.models import Message, OutboxState, Suppression
from messaging.services import message_send
from messaging.services.suppression import unsubscribe_token
from tests.factories import CustomerFactory
from tests.messaging.factories import MessageTemplateFactory, opted_in_customer

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def frozen_signing_clock(monkeypatch):
    """The token carries its signing second (signing.dumps is timestamped): a mailed or rendered link
    and the one a test signs a moment later differ when the run crosses a second boundary. One frozen
    second makes every token for a message the same, so the tests can compare exact URLs."""
    second = signing.b62_encode(int(time.time()))
    monkeypatch.setattr(signing.TimestampSigner, "timestamp", lambda self: second)


@pytest.fixture
def send(django_capture_on_commit_callbacks):
    """message_send, then the delivery run its commit kicks off (eager in tests)."""

    def send(**kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return message_send(**kwargs)

    return send


@pytest.fixture
def message(mailoutbox, send):
    MessageTemplateFactory(key="news")
    customer = opted_in_customer(email="Private.Person@example.com")
    return send(customer=customer, template="news", context={"offer": "x"}, key="n1", purpose="marketing")


def _url(name, message):
    return reverse(f"messaging:{name}", args=[unsubscribe_token(message_id=message.pk)])


def test_the_mailed_link_is_the_signed_unsubscribe_url(message, mailoutbox):
    [email] = mailoutbox
    assert email.extra_headers["List-Unsubscribe"] == f"<http://127.0.0.1:8000{_url('unsubscribe', message)}>"
    assert "mailto:" not in email.extra_headers["List-Unsubscribe"]


def test_a_mailto_only_when_a_processed_address_is_set(settings, mailoutbox, send):
    settings.MESSAGING_UNSUBSCRIBE_MAILTO = "unsubscribe@shop.example"
    MessageTemplateFactory(key="news")
    send(customer=opted_in_customer(), template="news", key="m", purpose="marketing")
    assert "<mailto:unsubscribe@shop.example?subject=unsubscribe%20" in mailoutbox[0].extra_headers["List-Unsubscribe"]


def test_transactional_mail_has_no_unsubscribe_header(mailoutbox, send):
    MessageTemplateFactory(key="login", purpose="transactional")
    send(customer=CustomerFactory(), template="login", key="t", purpose="transactional")
    assert "List-Unsubscribe" not in mailoutbox[0].extra_headers


def test_one_click_post_unsubscribes_without_csrf_or_login(message):
    client = Client(enforce_csrf_checks=True)
    response = client.post(_url("unsubscribe", message), {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert b"private" not in response.content.lower()
    assert Suppression.objects.get(address="private.person@example.com").reason == "unsubscribed"
    message.customer.refresh_from_db()
    assert message.customer.email_opt_in is False
    # Again: still one entry, still 200.
    assert client.post(_url("unsubscribe", message), {"List-Unsubscribe": "One-Click"}).status_code == 200
    assert Suppression.objects.count() == 1


def test_get_shows_a_confirm_button_and_changes_nothing(message):
    response = Client().get(_url("unsubscribe", message))
    assert response.status_code == 200
    assert b'<form method="post"' in response.content
    assert b"private.person" not in response.content.lower()  # the page never names the address
    assert response["Referrer-Policy"] == "no-referrer"
    assert not Suppression.objects.exists()


def test_the_page_confirms_then_offers_to_resubscribe(message):
    client = Client(enforce_csrf_checks=True)
    page = client.post(_url("unsubscribe", message))
    assert page.status_code == 200 and _url("resubscribe", message).encode() in page.content
    assert b"private.person" not in page.content.lower()
    assert Suppression.objects.filter(reason="unsubscribed").exists()
    # Resubscribing needs the form's CSRF token.
    assert client.post(_url("resubscribe", message)).status_code == 403
    token = client.cookies["csrftoken"].value
    response = client.post(_url("resubscribe", message), {"csrfmiddlewaretoken": token})
    assert response.status_code == 200
    assert not Suppression.objects.exists()
    message.customer.refresh_from_db()
    assert message.customer.email_opt_in is True and message.customer.email_opt_in_at


def test_resubscribe_never_lifts_a_bounce(message):
    Suppression.objects.create(address="private.person@example.com", reason="hard_bounce")
    client = Client()
    client.get(_url("unsubscribe", message))
    client.post(_url("resubscribe", message))
    assert Suppression.objects.get().reason == "hard_bounce"


@pytest.mark.parametrize("token", ["nonsense", "MQ:1abc:forged"])
def test_a_token_we_did_not_sign_is_a_404(message, token):
    client = Client()
    assert client.get(reverse("messaging:unsubscribe", args=[token])).status_code == 404
    assert client.post(reverse("messaging:unsubscribe", args=[token])).status_code == 404
    assert not Suppression.objects.exists()


def test_outbox_page_counts_by_day_state_and_purpose(client, agent, message):
    Message.objects.create(
        key="f",
        purpose="transactional",
        template=message.template,
        customer=message.customer,
        to_email="x@example.com",
        language="en",
        state="failed",
        last_error="550 5.1.1 No such user",
        created_at=timezone.now(),
        failed_at=timezone.now(),
    )
    client.force_login(agent)
    response = client.get(reverse("messaging:outbox"))
    assert response.status_code == 200
    rows = {(row["purpose_label"], tuple(row["counts"])) for row in response.context["daily"]}
    assert ("Marketing", (0, 0, 1, 0, 0)) in rows and ("Transactional", (0, 0, 0, 1, 0)) in rows
    assert b"550 5.1.1 No such user" in response.content
    assert response.context["may_resume"] is False


def test_only_a_manager_resumes(client, agent, manager):
    OutboxState.objects.update_or_create(pk=1, defaults={"paused": True, "paused_reason": "too many failures"})
    client.force_login(agent)
    assert client.post(reverse("messaging:resume")).status_code == 403
    client.force_login(manager)
    page = client.get(reverse("messaging:outbox"))
    assert b"too many failures" in page.content and page.context["may_resume"]
    assert client.post(reverse("messaging:resume")).status_code == 302
    state = OutboxState.objects.get()
    assert not state.paused and state.resumed_at


def test_the_customer_page_shows_the_send_log(client, agent, message):
    client.force_login(agent)
    response = client.get(reverse("customers:detail", args=[message.customer_id]))
    assert response.status_code == 200
    assert b"messages-heading" in response.content and message.template.name.encode() in response.content


def test_the_home_page_warns_while_paused(client, agent):
    client.force_login(agent)
    assert b"Marketing e-mail is paused" not in client.get(reverse("home")).content
    OutboxState.objects.update_or_create(pk=1, defaults={"paused": True, "paused_reason": "12 of 100 failed"})
    content = client.get(reverse("home")).content
    assert b"Marketing e-mail is paused" in content and b"12 of 100 failed" in content


def test_the_outbox_page_runs_a_fixed_number_of_queries(client, agent, message, django_assert_num_queries):
    for i in range(5):
        Message.objects.create(
            key=f"f{i}",
            purpose="marketing",
            template=message.template,
            customer=CustomerFactory(),
            to_email="x@example.com",
            language="en",
            state="failed",
            last_error="550 nope",
            created_at=timezone.now(),
            failed_at=timezone.now(),
        )
    client.force_login(agent)
    # session, user, groups; daily counts, failures (with template and customer), pause state
    with django_assert_num_queries(6):
        assert client.get(reverse("messaging:outbox")).status_code == 200
