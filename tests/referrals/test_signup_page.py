"""The public sign-up page of a share link: visits counted, a lead customer and a referral made
through the intake service, CSRF, rate limit, unknown and suspended codes, the device cookie."""

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from customers.models import Customer
from referrals.models import Fingerprint, Referral, ReferralCode, ShareVisit
from referrals.services.codes import referral_code_for
from referrals.services.visits import share_visit_count
from referrals.views_signup import DEVICE_COOKIE
from tests.conftest import skip_or_fail
from tests.factories import CustomerFactory
from tests.races import race

pytestmark = pytest.mark.django_db
FORM = {"first_name": "Zed", "last_name": "Quinn", "email": "Zed.Quinn@Mailbox.net"}


@pytest.fixture
def code():
    referrer = CustomerFactory(first_name="Ann", last_name="Archer", email="ann@example.org")
    return referral_code_for(customer_id=referrer.pk)


def test_a_visit_counts_and_shows_the_form_with_consent_unticked(client, code):
    response = client.get(f"/r/{code.code}/")
    client.get(f"/r/{code.code.lower()}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="marketing_opt_in"' in html and "checked" not in html and "csrfmiddlewaretoken" in html
    assert ShareVisit.objects.get(code=code, day=timezone.localdate()).visits == 2
    assert DEVICE_COOKIE in response.cookies


def test_signing_up_creates_a_lead_and_the_referral(client, code):
    client.get(f"/r/{code.code}/")
    response = client.post(f"/r/{code.code}/", FORM, HTTP_USER_AGENT="TestBrowser/1", REMOTE_ADDR="203.0.113.9")
    assert response.status_code == 200 and "Zed" in response.content.decode()
    referee = Customer.objects.get(email="zed.quinn@mailbox.net")
    assert referee.email_opt_in is False and not referee.orders.exists()
    referral = Referral.objects.get(referee=referee)
    assert (referral.referrer_id, referral.source, referral.state) == (code.customer_id, "signup", "pending")
    assert (referral.ip, referral.user_agent, referral.device_id) == ("203.0.113.9", "TestBrowser/1", client.cookies[DEVICE_COOKIE].value)
    assert set(Fingerprint.objects.filter(customer=referee).values_list("kind", flat=True)) == {"ip", "ip_agent", "device"}
    assert ShareVisit.objects.get(code=code).visits == 1  # the POST is not a visit


def test_consent_is_recorded_only_when_ticked(client, code):
    client.post(f"/r/{code.code}/", {**FORM, "marketing_opt_in": "on"})
    assert Customer.objects.get(email="zed.quinn@mailbox.net").email_opt_in is True


def test_a_known_address_gets_the_same_answer_but_is_rejected_as_an_existing_customer(client, code):
    known = CustomerFactory(email="zed.quinn@mailbox.net", first_name="Zora", email_opt_in=False)
    response = client.post(f"/r/{code.code}/", {**FORM, "marketing_opt_in": "on"})
    assert response.status_code == 200 and "Zed" in response.content.decode()
    referral = Referral.objects.get(referee=known)
    assert referral.state == "rejected" and referral.signals[0]["code"] == "existing_customer"
    known.refresh_from_db()
    assert (known.first_name, known.email_opt_in) == ("Zora", False)  # a stranger changes nothing


def test_bad_form_is_400(client, code):
    response = client.post(f"/r/{code.code}/", {"first_name": "", "email": "nope"})
    assert response.status_code == 400 and not Referral.objects.exists()


def test_post_without_csrf_token_is_refused(code):
    response = Client(enforce_csrf_checks=True).post(f"/r/{code.code}/", FORM)
    assert response.status_code == 403 and not Customer.objects.filter(email="zed.quinn@mailbox.net").exists()


def test_unknown_and_suspended_codes_show_a_clear_page(client, code):
    assert client.get("/r/NOSUCHCODE00/").status_code == 404
    ReferralCode.objects.filter(pk=code.pk).update(suspended_at=timezone.now())
    response = client.get(f"/r/{code.code}/")
    assert response.status_code == 404 and "not valid" in response.content.decode()
    assert not ShareVisit.objects.exists()


def test_signups_are_rate_limited_per_client_ip(client, code, settings):
    settings.REFERRAL_SIGNUP_RATE_PER_IP = "2/h"
    for i in range(2):
        assert client.post(f"/r/{code.code}/", {**FORM, "email": f"p{i}@x{i}.example"}).status_code == 200
    response = client.post(f"/r/{code.code}/", {**FORM, "email": "late@x.example"})
    assert response.status_code == 429 and "Retry-After" in response


@pytest.mark.django_db(transaction=True)
def test_parallel_visits_lose_no_count():
    if connection.vendor != "postgresql":
        skip_or_fail("the visit counter race needs PostgreSQL")
    referrer = CustomerFactory()
    code = referral_code_for(customer_id=referrer.pk)
    _results, errors = race(*[lambda: share_visit_count(code_id=code.pk) for _ in range(8)])
    assert not errors and ShareVisit.objects.get(code=code).visits == 8
