"""A login link is spent once even when requests race: real threads on their own PostgreSQL
connections, through the service and through the page."""

import pytest
from django.test import Client
from django.urls import reverse

from portal.models import LoginToken
from portal.services import login_token_spend
from tests.factories import CustomerFactory
from tests.portal.conftest import make_token
from tests.races import race

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROUNDS = 5


def test_racing_spends_of_one_link_log_in_once():
    customer = CustomerFactory()
    for _ in range(ROUNDS):
        token = make_token(customer)
        results, errors = race(*[lambda token=token: login_token_spend(token=token)] * 4)
        assert not errors
        assert [r.pk for r in results if r is not None] == [customer.pk]
    assert LoginToken.objects.filter(used_at__isnull=True).count() == 0


def test_two_concurrent_posts_of_the_link_log_in_one_browser():
    customer = CustomerFactory()
    token = make_token(customer)
    url = reverse("portal:login_link", args=[token])
    clients = [Client(), Client()]
    results, errors = race(*[lambda c=c: c.post(url).status_code for c in clients])
    assert not errors
    assert sorted(results) == [302, 410]
    logged_in = [c.get(reverse("portal:home")).status_code for c in clients]
    assert sorted(logged_in) == [200, 302]
