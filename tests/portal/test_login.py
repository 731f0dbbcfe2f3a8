"""Logging in to the portal by e-mailed link: the request page, the link's two steps, expiry,
single use, forged links, enumeration-safe answers, rate limits and logging out."""

import re
import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from portal.models import LoginToken
from portal.services import login_link_request, login_token_is_valid, login_token_spend, token_hash
from tests.portal.conftest import make_token

pytestmark = pytest.mark.django_db

LOGIN_URL = "/portal/login/"
LINK_RE = re.compile(r"https?://[^\s]+/portal/link/([\w-]+)/")
CSRF_RE = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')


def _link_from_mail(message) -> str:
    match = LINK_RE.search(message.body)
    assert match, message.body
    return match.group(1)


def test_the_urls_are_under_portal():
    assert reverse("portal:login") == LOGIN_URL
    assert reverse("portal:home") == "/portal/"


def test_login_page_has_a_csrf_protected_form(client):
    response = client.get(LOGIN_URL)
    assert response.status_code == 200
    assert 'name="csrfmiddlewaretoken"' in response.content.decode()


def test_the_login_form_refuses_a_post_without_csrf_token(customer_a):
    from django.test import Client

    response = Client(enforce_csrf_checks=True).post(LOGIN_URL, {"email": customer_a.email})
    assert response.status_code == 403
    assert not LoginToken.objects.exists()


def test_a_bad_address_is_a_400_with_the_field_error(client):
    response = client.post(LOGIN_URL, {"email": "not an address"})
    assert response.status_code == 400
    assert "Enter a valid email address." in response.content.decode()


def test_a_customer_gets_a_link_that_logs_in_once(client, customer_a, mailoutbox, django_capture_on_commit_callbacks):
    # The task after the answer, then the outbox's delivery after its commit.
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(LOGIN_URL, {"email": "  ALICE@example.com "})
    assert response.status_code == 302 and response["Location"] == reverse("portal:login_sent")
    assert len(mailoutbox) == 1 and mailoutbox[0].to == [customer_a.email]
    token = _link_from_mail(mailoutbox[0])

    # Only the hash is stored, with a 10-minute life.
    stored = LoginToken.objects.get()
    assert stored.token_hash == token_hash(token) and token not in stored.token_hash
    assert timedelta(minutes=9, seconds=59) < stored.expires_at - stored.created_at <= timedelta(minutes=10)

    # Opening the link (what a mail scanner does) spends nothing, however often.
    for _ in range(3):
        page = client.get(reverse("portal:login_link", args=[token]))
        assert page.status_code == 200
        assert "<form method=\"post\"" in page.content.decode()
    assert LoginToken.objects.get().used_at is None

    response = client.post(reverse("portal:login_link", args=[token]))
    assert response.status_code == 302 and response["Location"] == reverse("portal:home")
    home = client.get(reverse("portal:home"))
    assert home.status_code == 200 and "Alice" in home.content.decode()
    assert LoginToken.objects.get().used_at is not None

    # Used: the GET and the POST both say so, and log no one in.
    other = type(client)()
    assert other.get(reverse("portal:login_link", args=[token])).status_code == 410
    assert other.post(reverse("portal:login_link", args=[token])).status_code == 410
    assert other.get(reverse("portal:home")).status_code == 302


def test_an_expired_link_does_not_log_in(client, customer_a):
    token = make_token(customer_a, minutes=0)
    assert client.get(reverse("portal:login_link", args=[token])).status_code == 410
    assert client.post(reverse("portal:login_link", args=[token])).status_code == 410
    assert client.get(reverse("portal:home"))["Location"] == LOGIN_URL
    assert LoginToken.objects.get().used_at is None


@pytest.mark.parametrize("token", ["forged", "A" * 43, "x" * 500])
def test_a_forged_link_does_not_log_in(client, customer_a, token):
    make_token(customer_a)  # a real link exists, and is not the forged one
    assert client.get(reverse("portal:login_link", args=[token])).status_code == 410
    assert client.post(reverse("portal:login_link", args=[token])).status_code == 410
    assert client.get(reverse("portal:home")).status_code == 302


def test_spending_is_single_use_in_the_service(customer_a):
    token = make_token(customer_a)
    assert login_token_is_valid(token=token)
    assert login_token_spend(token=token) == customer_a
    assert login_token_spend(token=token) is None
    assert not login_token_is_valid(token=token)


def test_a_request_answered_twice_mails_once(customer_a, mailoutbox, django_capture_on_commit_callbacks):
    request_id = uuid.uuid4()
    with django_capture_on_commit_callbacks(execute=True):
        assert login_link_request(email=customer_a.email, request_id=request_id) is not None
    with django_capture_on_commit_callbacks(execute=True):
        assert login_link_request(email=customer_a.email, request_id=request_id) is None
    assert LoginToken.objects.count() == 1
    assert len(mailoutbox) == 1


def _answer(client, email, capture):
    with capture(execute=True):
        response = client.post(LOGIN_URL, {"email": email}, follow=True)
    return response.status_code, [r for r in response.redirect_chain], CSRF_RE.sub("", response.content.decode())


def test_the_answer_is_the_same_whether_the_address_is_a_customers_or_not(
    client, customer_a, mailoutbox, django_capture_on_commit_callbacks
):
    known = _answer(client, customer_a.email, django_capture_on_commit_callbacks)
    unknown = _answer(client, "nobody@example.com", django_capture_on_commit_callbacks)
    assert known == unknown
    assert known[0] == 200 and "If the address belongs to an account" in known[2]
    assert [m.to for m in mailoutbox] == [[customer_a.email]]


def test_the_lookup_runs_after_the_answer(client, customer_a):
    """The page itself does the same work for every address: it only enqueues the task (the lookup,
    the token and the message happen in the worker), so its timing tells nothing either."""
    from unittest import mock

    with mock.patch("portal.views.enqueue_on_commit") as enqueue:
        client.post(LOGIN_URL, {"email": customer_a.email})
        client.post(LOGIN_URL, {"email": "nobody@example.com"})
    assert [c.args[:2] for c in enqueue.call_args_list] == [
        ("portal.tasks.login_link_send", customer_a.email),
        ("portal.tasks.login_link_send", "nobody@example.com"),
    ]
    assert not LoginToken.objects.exists()


def test_requests_are_limited_per_address(client, customer_a, settings, mailoutbox, django_capture_on_commit_callbacks):
    settings.PORTAL_LOGIN_RATE_PER_EMAIL = "2/h"
    with django_capture_on_commit_callbacks(execute=True):
        statuses = [
            client.post(LOGIN_URL, {"email": customer_a.email}, REMOTE_ADDR=f"10.0.0.{i}").status_code for i in range(3)
        ]
    assert statuses == [302, 302, 429]
    assert len(mailoutbox) == 2
    # The limit is per address, whether it is a customer's or not: an unknown one is limited alike.
    unknown = [client.post(LOGIN_URL, {"email": "x@example.com"}).status_code for _ in range(3)]
    assert unknown == [302, 302, 429]


def test_requests_are_limited_per_client_address(client, settings):
    settings.PORTAL_LOGIN_RATE_PER_IP = "3/h"
    statuses = [client.post(LOGIN_URL, {"email": f"p{i}@example.com"}).status_code for i in range(4)]
    assert statuses == [302, 302, 302, 429]
    response = client.post(LOGIN_URL, {"email": "p9@example.com"})
    assert response.status_code == 429 and int(response["Retry-After"]) > 0
    assert "Too many login requests" in response.content.decode()
    # Another client is not affected.
    assert client.post(LOGIN_URL, {"email": "p9@example.com"}, REMOTE_ADDR="192.0.2.7").status_code == 302


def test_a_forged_forwarded_for_header_does_not_dodge_the_limit(client, settings):
    settings.PORTAL_LOGIN_RATE_PER_IP = "2/h"
    statuses = [
        client.post(LOGIN_URL, {"email": f"q{i}@example.com"}, HTTP_X_FORWARDED_FOR=f"10.1.0.{i}").status_code
        for i in range(3)
    ]
    assert statuses == [302, 302, 429]


def test_logout_is_a_post_and_ends_the_portal_session(portal_client):
    assert portal_client.get(reverse("portal:logout")).status_code == 405
    assert portal_client.get(reverse("portal:home")).status_code == 200
    response = portal_client.post(reverse("portal:logout"))
    assert response.status_code == 302 and response["Location"] == LOGIN_URL
    assert portal_client.get(reverse("portal:home"))["Location"] == LOGIN_URL


def test_a_logged_in_customer_visiting_the_login_page_goes_home(portal_client):
    assert portal_client.get(LOGIN_URL)["Location"] == reverse("portal:home")


def test_an_anonymous_visitor_is_sent_to_the_portal_login(client):
    response = client.get(reverse("portal:home"))
    assert response.status_code == 302 and response["Location"] == LOGIN_URL


def test_the_portal_speaks_chinese(client, customer_a):
    response = client.get(LOGIN_URL, HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert 'lang="zh-hans"' in response.content.decode()


def test_behind_a_proxy_the_limit_counts_the_address_it_reports(client, settings):
    settings.CLIENT_IP_PROXY_COUNT = 1
    settings.PORTAL_LOGIN_RATE_PER_IP = "1/h"
    # The client may put anything in front; our proxy appends the address it saw, the last entry.
    first = client.post(LOGIN_URL, {"email": "r1@example.com"}, HTTP_X_FORWARDED_FOR="1.1.1.1, 198.51.100.1")
    second = client.post(LOGIN_URL, {"email": "r2@example.com"}, HTTP_X_FORWARDED_FOR="2.2.2.2, 198.51.100.1")
    other = client.post(LOGIN_URL, {"email": "r3@example.com"}, HTTP_X_FORWARDED_FOR="198.51.100.2")
    assert (first.status_code, second.status_code, other.status_code) == (302, 429, 302)


def test_a_new_request_removes_the_customers_links_dead_for_a_day(customer_a, customer_b):
    old = make_token(customer_a, minutes=0)
    others = make_token(customer_b, minutes=0)
    recent = make_token(customer_a, minutes=0)
    LoginToken.objects.filter(token_hash__in=[token_hash(old), token_hash(others)]).update(
        created_at=timezone.now() - timedelta(days=2), expires_at=timezone.now() - timedelta(days=2) + timedelta(minutes=10)
    )
    login_link_request(email=customer_a.email, request_id=uuid.uuid4())
    remaining = set(LoginToken.objects.values_list("token_hash", flat=True))
    assert token_hash(old) not in remaining
    assert {token_hash(others), token_hash(recent)} <= remaining and len(remaining) == 3


def test_every_portal_form_that_posts_carries_a_csrf_token():
    from pathlib import Path

    from django.conf import settings

    posting = 0
    for template in (Path(settings.BASE_DIR) / "templates" / "portal").glob("*.html"):
        for form in re.findall(r"<form\b.*?</form>", template.read_text(), flags=re.S):
            if 'method="post"' in form:
                posting += 1
                assert "{% csrf_token %}" in form, template.name
    assert posting >= 5  # login, link button, preferences, language switch, logout


def test_with_the_broker_down_the_customer_is_told_to_try_again(client, customer_a, broker_down, caplog, mailoutbox):
    response = client.post(LOGIN_URL, {"email": customer_a.email})
    assert response.status_code == 503 and response["Retry-After"] == "60"
    assert "We could not send the link now. Please try again in a minute." in response.text
    assert 'name="email"' in response.text  # the form, to ask again
    assert "portal login link not queued" in caplog.text
    assert not LoginToken.objects.exists() and not mailoutbox
    chinese = client.post(LOGIN_URL, {"email": customer_a.email}, HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert chinese.status_code == 503 and "We could not send the link now" not in chinese.text


def test_with_the_redis_of_the_counters_down_the_customer_is_told_to_try_again(client, customer_a, broker_down, settings):
    """The limiter's counters usually live in the broker's Redis: down together, the answer is the same."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}}
    response = client.post(LOGIN_URL, {"email": customer_a.email})
    assert response.status_code == 503
    assert "We could not send the link now. Please try again in a minute." in response.text
