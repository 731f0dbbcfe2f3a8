"""Fixtures of the portal tests: customers, and a client logged in to the portal the real way (a
login link spent through its page)."""

import secrets
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from portal.models import LoginToken
from portal.services import token_hash
from tests.factories import CustomerFactory


def make_token(customer, *, minutes: int = 10, used: bool = False) -> str:
    """A login link's token for `customer`, stored as the service stores it (hashed)."""
    token = secrets.token_urlsafe(32)
    now = timezone.now()
    LoginToken.objects.create(
        token_hash=token_hash(token),
        request_id=secrets.token_hex(16),
        customer=customer,
        created_at=now - timedelta(minutes=1),
        expires_at=now + timedelta(minutes=minutes) if minutes > 0 else now - timedelta(seconds=1),
        used_at=now if used else None,
    )
    return token


def portal_login_as(client: Client, customer) -> Client:
    response = client.post(reverse("portal:login_link", args=[make_token(customer)]))
    assert response.status_code == 302 and response["Location"] == reverse("portal:home"), response
    return client


@pytest.fixture
def customer_a(db):
    return CustomerFactory(email="alice@example.com", first_name="Alice")


@pytest.fixture
def customer_b(db):
    return CustomerFactory(email="bob@example.com", first_name="Bob")


@pytest.fixture
def portal_client(customer_a):
    return portal_login_as(Client(), customer_a)
