"""The customer's loyalty pages in the portal: their own figures only, and a redemption that a
double click or two tabs make once (the portal's access matrix, tests/portal, walks these URLs too)."""

import pytest
from django.urls import reverse

from loyalty.models import LedgerEntry, Reward, Voucher
from tests.factories import CustomerFactory
from tests.loyalty.helpers import earn_spendable
from tests.portal.conftest import portal_login_as

pytestmark = pytest.mark.django_db


@pytest.fixture
def customer_a():
    return CustomerFactory(email="a@example.com")


@pytest.fixture
def customer_b():
    return CustomerFactory(email="b@example.com")


def test_points_page_shows_only_the_customers_own_figures(client, customer_a, customer_b):
    earn_spendable(customer_a, 120, "a")
    earn_spendable(customer_b, 999, "b")
    portal_login_as(client, customer_a)
    page = client.get(reverse("portal:loyalty:points")).content.decode()
    assert 'data-testid="portal-balance">120<' in page
    assert "999" not in page
    assert "Your points" in client.get(reverse("portal:home")).content.decode()


def test_two_tabs_and_a_double_click_redeem_once(client, customer_a):
    earn_spendable(customer_a, 100)
    reward = Reward.objects.create(name="Mug", cost=30, stock=5)
    portal_login_as(client, customer_a)
    tab_one = client.get(reverse("portal:loyalty:rewards")).content.decode()
    tab_two = client.get(reverse("portal:loyalty:rewards")).content.decode()
    key = f"portal-{reward.pk}-"
    key_one = tab_one.split(f'value="{key}')[1].split('"')[0]
    assert key_one == tab_two.split(f'value="{key}')[1].split('"')[0]
    url = reverse("portal:loyalty:reward_redeem")
    for _click in range(3):  # a double click in tab one, then tab two
        client.post(url, {"key": key + key_one})
    assert Voucher.objects.count() == 1 and LedgerEntry.objects.filter(kind="redeem").count() == 1
    page = client.get(reverse("portal:loyalty:rewards")).content.decode()
    assert Voucher.objects.get().code in page
    # A page loaded after the redemption redeems again on purpose.
    key_after = page.split(f'value="{key}')[1].split('"')[0]
    assert key_after != key_one
    client.post(url, {"key": key + key_after})
    assert Voucher.objects.count() == 2


def test_a_forged_key_or_short_balance_is_a_message_not_an_error(client, customer_a):
    reward = Reward.objects.create(name="Bike", cost=5000)
    portal_login_as(client, customer_a)
    url = reverse("portal:loyalty:reward_redeem")
    response = client.post(url, {"key": "nonsense"}, follow=True)
    assert response.status_code == 200 and "could not be read" in response.content.decode()
    response = client.post(url, {"key": f"portal-{reward.pk}-0"}, follow=True)
    assert "Not enough points" in response.content.decode()
    assert Voucher.objects.count() == 0
