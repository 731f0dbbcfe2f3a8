"""A survey end to end in a real browser: a manager invites a customer, the invitation arrives at a
real SMTP server on loopback (through the outbox), the customer opens the link from the e-mail,
answers (a low score brings the follow-up question), and the staff results page shows the answer."""

import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from feedback.models import Response
from tests.factories import CustomerFactory
from tests.feedback.factories import open_survey

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_invitation_from_the_mailbox_answered_and_seen_by_staff(page, login, manager, mailbox, settings, live_server, screenshot):
    mailbox.settings(settings)
    settings.SITE_URL = live_server.url
    survey = open_survey()
    customer = CustomerFactory(email="grace@example.com", first_name="Grace", email_opt_in=True, email_opt_in_at=timezone.now())

    login(manager)
    page.goto(f"/surveys/{survey.pk}/invite/")
    page.fill("input[name=q]", "grace@example.com")
    page.click("main form[method=post] button[type=submit]")
    expect(page.locator("#summary-heading")).to_have_text("1 customer invited")

    [mail] = mailbox.wait_for(1)
    assert mail.rcpt_tos == ["grace@example.com"] and mail.header("List-Unsubscribe-Post") == "List-Unsubscribe=One-Click"
    link = re.search(r"https?://\S+/s/[\w-]+/", mail.text()).group(0)

    page.context.clear_cookies()  # the customer has no staff login
    page.goto(link)
    expect(page.locator("h1")).to_have_text(survey.name)
    page.locator("label.survey-scale__option", has_text=re.compile(r"^3$")).click()
    page.click("button[value=submit]")
    follow_up = page.locator("textarea")
    expect(follow_up).to_be_visible()  # the low score brought the follow-up
    follow_up.fill("Delivery took two weeks")
    page.click("button[value=submit]")
    expect(page.locator("h1")).to_have_text("Thank you!")
    assert Response.objects.get().nps_score == 3

    login(manager)
    page.goto(f"/surveys/{survey.pk}/")
    expect(page.locator(".stat", has_text="Detractors").locator(".stat__value")).to_have_text("1")
    expect(page.locator("#text-answers")).to_contain_text("Delivery took two weeks")
    page.wait_for_function("() => document.querySelectorAll('canvas[data-chart-drawn]').length >= 2")
    screenshot("survey-results")
    assert customer.pk
