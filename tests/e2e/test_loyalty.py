"""Loyalty in a real browser: a manager adjusts a customer's points from the customer page (a
double click adjusts once), and a customer redeems a reward in the portal with a double click and
from a second tab: one voucher."""

import pytest
from playwright.sync_api import expect

from loyalty.models import LedgerEntry, LoyaltyAccount, Reward, Voucher
from tests.factories import CustomerFactory
from tests.loyalty.helpers import earn_spendable
from tests.portal.conftest import make_token

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_manager_adjusts_points_once(page, login, manager, screenshot, server_lock):
    customer = CustomerFactory(first_name="Ada", last_name="Lovelace")
    with server_lock:
        earn_spendable(customer, 40)
    login(manager)
    page.goto(f"/customers/{customer.pk}/")
    panel = page.locator("#loyalty-panel")
    expect(panel.get_by_test_id("loyalty-balance")).to_have_text("40")
    panel.get_by_label("Points").fill("25")
    panel.get_by_label("Reason").fill("Late delivery")
    panel.get_by_role("button", name="Adjust points").dblclick()
    expect(page.locator("#loyalty-panel").get_by_test_id("loyalty-balance")).to_have_text("65")
    expect(page.locator("#loyalty-panel")).to_contain_text("Late delivery")
    screenshot("50-loyalty-adjusted")
    with server_lock:
        assert LedgerEntry.objects.filter(kind="adjust").count() == 1
        assert LoyaltyAccount.objects.get(customer=customer).balance == 65


def test_a_customer_redeems_once_with_a_double_click_and_two_tabs(page, screenshot, server_lock):
    customer = CustomerFactory(email="grace@example.com", first_name="Grace")
    with server_lock:
        earn_spendable(customer, 100)
        reward = Reward.objects.create(name="Coffee mug", cost=40, stock=10)
        token = make_token(customer)
    page.goto(f"/portal/link/{token}/")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("h1")).to_contain_text("Grace")
    page.goto("/portal/points/rewards/")
    second_tab = page.context.new_page()
    second_tab.goto("/portal/points/rewards/")
    page.get_by_test_id(f"redeem-{reward.pk}").dblclick()
    expect(page.get_by_test_id("voucher")).to_have_count(1)
    second_tab.get_by_test_id(f"redeem-{reward.pk}").click()
    expect(second_tab.locator("body")).to_contain_text("Already redeemed")
    screenshot("51-portal-redeemed")
    with server_lock:
        assert Voucher.objects.count() == 1
        assert LoyaltyAccount.objects.get(customer=customer).balance == 60
    page.goto("/portal/points/")
    expect(page.get_by_test_id("portal-balance")).to_have_text("60")
