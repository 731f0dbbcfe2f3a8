"""The lifecycle dashboard and a manual stage change in a real browser (strict CSP: the page fixture
fails on any violation or JavaScript error)."""

import datetime as dt

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from lifecycle.models_stages import CustomerStage, StageTransition
from lifecycle.services.stages import lifecycle_evaluate
from tests.factories import CustomerFactory, EventFactory, OrderFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def evaluated():
    now = timezone.now()
    customers = [CustomerFactory(signed_up_at=now - dt.timedelta(days=200)) for _ in range(6)]
    for days, customer in zip((1, 2, 70, 150), customers, strict=False):
        OrderFactory(customer=customer, ordered_at=now - dt.timedelta(days=days))
    EventFactory(customer=customers[0], name="login", occurred_at=now - dt.timedelta(hours=3))
    lifecycle_evaluate(as_of=now - dt.timedelta(days=14))
    OrderFactory(customer=customers[3], ordered_at=now - dt.timedelta(days=1))
    lifecycle_evaluate()
    return customers


def test_dashboard_draws_and_numbers_link_to_customers(page, login, agent, evaluated, screenshot):
    login(agent)
    page.goto("/value/stages/")
    expect(page.locator("h1")).to_have_text("Lifecycle")
    page.wait_for_function("() => window.Chart !== undefined")
    for element_id in ("chart-funnel", "chart-transitions", "chart-health"):
        drawn = page.evaluate(
            "(id) => { const c = document.querySelector(`canvas[data-chart=\"${id}\"]`); return Boolean(c && window.Chart.getChart(c)); }",
            element_id,
        )
        assert drawn, element_id
    screenshot("lifecycle-dashboard")
    page.locator("[data-testid=funnel] a[href$='?stage=lead']").click()
    expect(page.locator("h1")).to_have_text("Lifecycle customers")
    expect(page.locator("tbody tr")).to_have_count(2)


def test_manager_moves_a_customer_by_hand(page, login, manager, evaluated, screenshot):
    customer = evaluated[4]
    login(manager)
    page.goto(f"/customers/{customer.pk}/")
    panel = page.locator("#lifecycle-panel")
    expect(panel.locator("[data-testid=stage]")).to_have_text("Lead")
    panel.locator("summary").click()
    panel.locator("select[name=stage]").select_option("loyal")
    panel.locator("textarea[name=reason]").fill("Signed a framework contract")
    panel.locator("button[type=submit]").click()
    expect(page.locator("#lifecycle-panel [data-testid=stage]")).to_have_text("Loyal")
    expect(page.locator("#lifecycle-panel [data-testid=transitions]")).to_contain_text("Signed a framework contract")
    screenshot("lifecycle-manual-move")
    assert CustomerStage.objects.get(customer=customer).manual
    assert StageTransition.objects.filter(customer=customer, manual=True, changed_by=manager).count() == 1
