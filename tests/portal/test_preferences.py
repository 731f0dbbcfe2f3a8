"""The customer's own e-mail preferences in the portal: marketing consent (an opt-out is an
unsubscribe, an opt-in lifts only an unsubscribe) and the language of our e-mails; the home page
and the e-mail list with bounded queries."""

import re
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from messaging.models import Message, Suppression
from messaging.services import suppression_add
from portal.registry import _home_sections, register_portal_home_section
from tests.portal.test_access_matrix import _sent_message

pytestmark = pytest.mark.django_db

URL = "/portal/preferences/"


def test_the_page_shows_the_current_choice_with_a_csrf_token(portal_client):
    page = portal_client.get(URL).content.decode()
    assert 'name="csrfmiddlewaretoken"' in page
    assert 'name="marketing_opt_in"' in page and "checked" not in page


def test_opting_in_records_consent_and_lifts_an_unsubscribe(portal_client, customer_a):
    suppression_add(address=customer_a.email, reason=Suppression.Reason.UNSUBSCRIBED)
    response = portal_client.post(URL, {"marketing_opt_in": "on", "language": "zh-hans"})
    assert response.status_code == 302 and response["Location"] == URL
    customer_a.refresh_from_db()
    assert customer_a.email_opt_in and customer_a.email_opt_in_at is not None
    assert customer_a.language == "zh-hans"
    assert not Suppression.objects.exists()


def test_opting_in_never_lifts_a_hard_bounce(portal_client, customer_a):
    suppression_add(address=customer_a.email, reason=Suppression.Reason.HARD_BOUNCE)
    portal_client.post(URL, {"marketing_opt_in": "on", "language": "en"})
    assert Suppression.objects.get().reason == Suppression.Reason.HARD_BOUNCE


def test_opting_out_withdraws_consent_and_suppresses_marketing(portal_client, customer_a):
    customer_a.email_opt_in, customer_a.email_opt_in_at = True, timezone.now()
    customer_a.save()
    portal_client.post(URL, {"language": "en"})
    customer_a.refresh_from_db()
    assert not customer_a.email_opt_in and customer_a.email_opt_in_at is None
    assert Suppression.objects.get().reason == Suppression.Reason.UNSUBSCRIBED


def test_a_bad_language_is_a_400_with_the_field_error(portal_client, customer_a):
    response = portal_client.post(URL, {"language": "xx"})
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    customer_a.refresh_from_db()
    assert customer_a.language == "en"


def test_the_email_list_shows_only_sent_messages_in_bounded_queries(
    portal_client, customer_a, customer_b, django_assert_max_num_queries
):
    for _ in range(5):
        _sent_message(customer_a)
    _sent_message(customer_b)
    queued = _sent_message(customer_a)
    Message.objects.filter(pk=queued.pk).update(state=Message.State.QUEUED, sent_at=None)
    with django_assert_max_num_queries(6):
        page = portal_client.get(reverse("portal:message_list"))
    assert page.status_code == 200
    assert len(re.findall(r'href="/portal/messages/\d+/"', page.content.decode())) == 5


def test_the_home_page_shows_registered_sections_in_bounded_queries(
    portal_client, django_assert_max_num_queries, settings
):
    settings.TEMPLATES = [
        {**settings.TEMPLATES[0], "DIRS": [*settings.TEMPLATES[0]["DIRS"], Path(__file__).parent / "templates"]}
    ]
    register_portal_home_section(
        key="test-points", template="portal_tests/_section.html", load=lambda *, customer: {"points": 42}, order=5
    )
    try:
        with django_assert_max_num_queries(5):
            page = portal_client.get(reverse("portal:home"))
    finally:
        _home_sections.pop("test-points")
    assert "42 points" in page.content.decode()
