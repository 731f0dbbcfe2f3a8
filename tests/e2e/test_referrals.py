"""Referrals in a real browser: a customer logs in to the portal by the link read from the test
mailbox, copies their share link (the clipboard holds it and the page says so) and claims a cash
reward with a double click and again from a second tab (one payout); a manager approves a flagged
referral from the review queue with a note."""

import re

import pytest
from playwright.sync_api import expect

from referrals.models import Payout, Referral, ReferralCode
from tests.factories import CustomerFactory
from tests.referrals.ui_helpers import make_referral, make_reward

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LINK = re.compile(r"https?://\S+?/portal/link/[\w-]+/")


def test_a_customer_copies_the_link_and_claims_a_reward_once(page, smtp, screenshot, server_lock):
    with server_lock:
        customer = CustomerFactory(email="ada@example.com", first_name="Ada", last_name="Lovelace")
        make_referral(referrer=customer, referee=CustomerFactory(first_name="Jane", last_name="Doe"), state="held")
        reward = make_reward(customer, kind="cash")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])

    page.goto("/portal/login/")
    page.get_by_label("Your e-mail address").fill("ada@example.com")
    page.get_by_role("button", name="Send me a login link").click()
    expect(page.locator("h1")).to_have_text("Check your e-mail")
    [mail] = smtp.wait_for(1)
    page.goto(LINK.search(mail.text()).group(0))
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("h1")).to_have_text("Hello, Ada")

    page.locator(".p-nav").get_by_role("link", name="Refer a friend").click()
    expect(page.locator("h1")).to_have_text("Refer a friend")
    with server_lock:
        code = ReferralCode.objects.get(customer=customer).code
    expect(page.get_by_test_id("referral-code")).to_have_text(code)
    link = page.get_by_test_id("share-link").input_value()
    assert link.endswith(f"/r/{code}/")
    expect(page.get_by_test_id("referrals")).to_contain_text("J*** D.")
    expect(page.get_by_test_id("referrals")).not_to_contain_text("Jane")

    page.get_by_role("button", name="Copy link").click()
    expect(page.get_by_test_id("copy-feedback")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == link
    screenshot("60-portal-referrals")

    second_tab = page.context.new_page()
    second_tab.goto("/portal/referrals/")
    page.get_by_test_id(f"claim-{reward.pk}").dblclick()
    expect(page.get_by_test_id("reward-state")).to_have_text("Claimed")
    expect(page.locator("body")).to_contain_text("Payout requested")
    screenshot("61-portal-reward-claimed")
    second_tab.get_by_test_id(f"claim-{reward.pk}").click()
    expect(second_tab.locator(".p-messages")).to_contain_text("You already claimed this reward.")
    expect(second_tab.get_by_test_id("reward-state")).to_have_text("Claimed")
    with server_lock:
        assert Payout.objects.filter(reward=reward).count() == 1

    page.goto("/portal/referrals/")
    expect(page.get_by_test_id(f"reward-{reward.pk}")).to_have_attribute("data-state", "claimed")
    expect(page.get_by_test_id(f"claim-{reward.pk}")).to_have_count(0)


def test_a_manager_approves_a_flagged_referral_from_the_queue(page, login, manager, screenshot, server_lock):
    with server_lock:
        referral = make_referral(
            state="flagged", verdict="review", risk_score=40,
            signals=[{"code": "same_device", "weight": 40, "action": "flag", "detail": {}}],
        )
    login(manager)
    page.goto("/referrals/review/")
    row = page.locator(f'tr[data-referral="{referral.pk}"]')
    expect(row).to_contain_text("Same IP and user agent or device as the referrer")
    expect(row).to_contain_text("weight 40")
    row.get_by_label("Note").fill("Same household, checked by phone")
    screenshot("62-referrals-review-queue")
    row.get_by_role("button", name="Approve").click()
    expect(page.locator("body")).to_contain_text(f"Referral #{referral.pk} approved.")
    expect(page.locator(f'tr[data-referral="{referral.pk}"]')).to_have_count(0)
    with server_lock:
        referral.refresh_from_db()
        assert referral.state == Referral.State.PENDING
        assert "Same household" in referral.events.get(to_state="pending").reason


def test_the_programme_dashboard_draws_its_charts(page, login, agent, screenshot, server_lock):
    with server_lock:
        referrer = CustomerFactory(first_name="Top", last_name="Referrer")
        for state in ("approved", "flagged", "rejected", "held", "pending"):
            make_referral(referrer=referrer, state=state,
                          verdict={"flagged": "review", "rejected": "rejected"}.get(state, "ok"))
    login(agent)
    page.goto("/referrals/")
    expect(page.locator("h1")).to_have_text("Referral programme")
    for chart in ("chart-ref-states", "chart-ref-funnel", "chart-ref-flags"):
        page.wait_for_function(
            "(id) => window.Chart && window.Chart.getChart(document.querySelector(`canvas[data-chart=\"${id}\"]`))",
            arg=chart,
        )
    expect(page.get_by_test_id("top-referrers")).to_contain_text("Top Referrer")
    screenshot("63-referrals-dashboard")
    page.get_by_test_id("states-table").get_by_role("link", name="1").first.click()
    expect(page).to_have_url(re.compile(r"/referrals/list/\?state="))
    expect(page.locator("tr[data-referral]")).to_have_count(1)
