"""The home dashboard's charts in a real browser: both canvases draw from our own static files
under the strict CSP (the page fixture fails on any CSP violation or JavaScript error), and the
table of the same numbers opens."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from customers.models import Order
from tests.factories import ChannelFactory, CustomerFactory, OrderFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def history():
    now = timezone.now()
    channels = [ChannelFactory(code=f"e2e-{i}", name=f"Channel {i}") for i in range(8)]
    for month in range(12):
        when = now - dt.timedelta(days=30 * month + 1)
        OrderFactory(ordered_at=when, amount=Decimal("120.50") + month)
        OrderFactory(ordered_at=when, amount=Decimal("15.25"), status=Order.Status.REFUNDED)
        for i, channel in enumerate(channels[: month % 8 + 1]):
            CustomerFactory.create_batch(i % 3 + 1, channel=channel, signed_up_at=when)
    CustomerFactory(channel=None, signed_up_at=now - dt.timedelta(days=3))
    OrderFactory(ordered_at=now - dt.timedelta(days=2), currency="EUR")


def _chart(page, element_id: str) -> dict:
    return page.evaluate(
        """(id) => {
            const canvas = document.querySelector(`canvas[data-chart="${id}"]`);
            const chart = canvas && window.Chart.getChart(canvas);
            return chart ? {
                width: canvas.width,
                labels: chart.data.labels.length,
                datasets: chart.data.datasets.map((d) => d.data.length),
                stacked: Boolean(chart.options.scales.y.stacked),
            } : null;
        }""",
        element_id,
    )


def test_home_dashboard_draws_both_charts(page, login, agent, history, screenshot):
    login(agent)
    page.goto("/")
    expect(page.locator("#revenue-chart-heading")).to_have_text("Revenue per month")
    page.wait_for_function("() => window.Chart !== undefined && document.querySelectorAll('canvas[data-chart-drawn]').length === 2")
    revenue = _chart(page, "chart-revenue")
    assert revenue["width"] > 0 and revenue["labels"] == 12 and revenue["datasets"] == [12, 12] and revenue["stacked"]
    signups = _chart(page, "chart-signups")
    assert signups["width"] > 0 and signups["labels"] == 12 and signups["stacked"]
    assert len(signups["datasets"]) == 8  # six channels, "Other", "No channel"
    expect(page.locator(".chart-caption").first).to_contain_text("1 order in other currencies is left out.")

    table = page.locator(".chart-data").first
    expect(table.locator("table")).to_be_hidden()
    table.locator("summary").click()
    expect(table.locator("tbody tr")).to_have_count(12)
    screenshot("home-dashboard-charts")
