"""The customer portal in a browser: ask for a login link, read it out of a real SMTP server's
mailbox (the outbox delivers to aiosmtpd on loopback), open it, press the button, land logged in on
the portal home; then on a phone-sized screen, in Chinese, and log out."""

import re

import pytest
from playwright.sync_api import expect

from portal.models import LoginToken
from tests.factories import CustomerFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LINK = re.compile(r"https?://\S+?/portal/link/[\w-]+/")


def test_a_customer_logs_in_from_the_link_in_the_mail(page, smtp, screenshot):
    CustomerFactory(email="ada@example.com", first_name="Ada", last_name="Lovelace")

    page.goto("/portal/login/")
    screenshot("40-portal-login")
    page.get_by_label("Your e-mail address").fill("ada@example.com")
    page.get_by_role("button", name="Send me a login link").click()
    expect(page.locator("h1")).to_have_text("Check your e-mail")

    [mail] = smtp.wait_for(1)
    assert mail.rcpt_tos == ["ada@example.com"]
    link = LINK.search(mail.text()).group(0)

    # Opening the link spends nothing: it shows the one button.
    page.goto(link)
    button = page.get_by_role("button", name="Log in")
    expect(button).to_be_visible()
    assert LoginToken.objects.get().used_at is None
    screenshot("41-portal-link")
    button.click()

    expect(page.locator("h1")).to_have_text("Hello, Ada")
    assert page.url.endswith("/portal/")
    expect(page.locator(".p-nav")).to_contain_text("E-mail preferences")
    screenshot("42-portal-home")

    # The same link again is spent.
    page.goto(link)
    expect(page.locator("h1")).to_have_text("This link can no longer be used")

    # A phone-sized screen, in Chinese; then log out.
    page.set_viewport_size({"width": 375, "height": 740})
    page.goto("/portal/")
    page.get_by_role("button", name="简体中文").click()
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    screenshot("43-portal-home-mobile-zh-hans")
    page.locator(".p-nav__logout button").click()
    expect(page).to_have_url(re.compile(r"/portal/login/$"))
    page.goto("/portal/")
    expect(page).to_have_url(re.compile(r"/portal/login/$"))
