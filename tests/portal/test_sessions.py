"""A portal session never reaches a staff page, and a staff session never counts as a customer's;
logging in to one side ends the other; the session key changes at login."""

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from portal.access import SESSION_KEY
from tests.portal.conftest import make_token, portal_login_as

pytestmark = pytest.mark.django_db

STAFF_PAGES = ["/", "/customers/", "/value/", "/outbox/"]


def test_a_customer_session_reaches_no_staff_page(portal_client, customer_a):
    staff_login = reverse(settings.LOGIN_URL)
    for path in STAFF_PAGES:
        response = portal_client.get(path)
        assert response.status_code == 302 and response["Location"].startswith(staff_login), path
    assert portal_client.get(f"/customers/{customer_a.pk}/").status_code == 302
    admin = portal_client.get("/admin/")
    assert admin.status_code == 302 and admin["Location"].startswith("/admin/login/")
    assert portal_client.get("/api/v1/customers/").status_code == 401
    # The portal identity is under its own key; Django's auth knows no one.
    assert "_auth_user_id" not in portal_client.session
    assert portal_client.session[SESSION_KEY] == customer_a.pk


def test_a_staff_session_is_not_a_customer_session(client, manager):
    client.force_login(manager)
    response = client.get(reverse("portal:home"))
    assert response.status_code == 302 and response["Location"] == reverse("portal:login")


def test_a_staff_session_with_a_planted_portal_key_is_still_not_a_customer(client, manager, customer_a):
    client.force_login(manager)
    session = client.session
    session[SESSION_KEY] = customer_a.pk
    session.save()
    assert client.get(reverse("portal:home"))["Location"] == reverse("portal:login")


def test_a_portal_login_ends_a_staff_login_in_the_same_browser(client, manager, customer_a):
    client.force_login(manager)
    assert client.get("/customers/").status_code == 200
    portal_login_as(client, customer_a)
    assert client.get(reverse("portal:home")).status_code == 200
    assert client.get("/customers/").status_code == 302


def test_a_staff_login_ends_a_portal_session_in_the_same_browser(portal_client, manager):
    assert portal_client.get(reverse("portal:home")).status_code == 200
    assert portal_client.post(
        reverse("login"), {"username": manager.username, "password": "correct-horse-battery"}
    ).status_code == 302
    assert portal_client.get("/customers/").status_code == 200
    assert portal_client.get(reverse("portal:home"))["Location"] == reverse("portal:login")
    assert SESSION_KEY not in portal_client.session


def test_the_session_key_changes_at_login(client, customer_a):
    client.get(reverse("portal:login"))
    session = client.session
    session["planted"] = "x"
    session.save()
    before = session.session_key
    client.post(reverse("portal:login_link", args=[make_token(customer_a)]))
    assert client.session.session_key != before
    assert "planted" not in client.session


def test_a_deleted_customer_is_logged_out(portal_client, customer_a):
    customer_a.delete()
    assert portal_client.get(reverse("portal:home"))["Location"] == reverse("portal:login")


def test_a_fresh_client_has_no_portal_session(customer_a):
    assert Client().get(reverse("portal:home")).status_code == 302
