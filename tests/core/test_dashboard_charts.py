"""The home dashboard's two charts: their data in the page (json_script), the tables of the same
numbers, the captions, the empty states, month names in the active language, and a fixed number
of queries whatever the data."""

import datetime as dt
import json
import re
from decimal import Decimal
from html import unescape

import pytest
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.formats import date_format

from customers.chart_selectors import chart_months
from customers.models import Order
from tests.factories import ChannelFactory, CustomerFactory, OrderFactory, TaskFactory

pytestmark = pytest.mark.django_db

# session, user, the user's groups (role); the charts' cache, never the database; then
# dashboard_figures: customers, orders, open tasks; the next tasks; the outbox's pause state (banner);
# the referrals panel's two aggregates (referrals, rewards: none yet, so the panel is left out).
HOME_QUERIES = 10
# The charts fragment: session, user, groups; revenue of the past months and of this one, signups.
CHARTS_QUERIES = 6


def _charts(client, **headers) -> str:
    """The charts fragment, as the home page's loading cards ask for it with htmx."""
    response = client.get(reverse("home"), {"section": "charts"}, HTTP_HX_REQUEST="true", **headers)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html and 'id="section-charts"' in html
    return html


def _spec(html: str, element_id: str) -> dict:
    match = re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>', html, re.S)
    assert match, f"no #{element_id} in the page"
    return json.loads(match.group(1))


def _this_month_local(day: int = 1, hour: int = 0, minute: int = 30) -> dt.datetime:
    now = timezone.localtime(timezone.now(), timezone.get_default_timezone())
    return min(now, now.replace(day=day, hour=hour, minute=minute, second=0, microsecond=0))


@pytest.fixture
def shop(settings):
    settings.TIME_ZONE = "America/New_York"
    settings.DEFAULT_CURRENCY = "USD"
    when = _this_month_local()
    OrderFactory(ordered_at=when, amount=Decimal("100.10"))
    OrderFactory(ordered_at=when, amount=Decimal("40.00"), status=Order.Status.REFUNDED)
    OrderFactory(ordered_at=when, amount=Decimal("999.00"), status=Order.Status.CANCELLED)
    OrderFactory(ordered_at=when, amount=Decimal("70.00"), currency="EUR")
    web = ChannelFactory(code="web", name="Web shop")
    CustomerFactory(channel=web, signed_up_at=when)
    CustomerFactory(channel=None, signed_up_at=when)


def test_home_page_has_both_charts_with_their_numbers(client, agent, shop):
    client.force_login(agent)
    page = client.get(reverse("home")).content.decode()
    assert "vendor/chartjs/chart.umd.min.js" in page and "js/charts.js" in page
    html = _charts(client)

    revenue = _spec(html, "chart-revenue")
    assert len(revenue["labels"]) == 12 and revenue["partial_index"] == 11
    assert revenue["labels"][-1].endswith("(so far)")
    paid, refunded = revenue["datasets"]
    assert paid["data"][-1] == "100.10" and refunded["data"][-1] == "40.00"  # exact decimals, as strings
    assert paid["data"][:11] == ["0.00"] * 11
    assert revenue["y_title"] == "Amount (USD)"

    signups = _spec(html, "chart-signups")
    assert [d["label"] for d in signups["datasets"]] == ["Web shop", "No channel"]
    assert [d["data"][-1] for d in signups["datasets"]] == [1, 1]

    text = unescape(re.sub(r"\s+", " ", html))
    assert 'data-chart="chart-revenue"' in html and 'data-chart="chart-signups"' in html
    assert "Orders in USD, the shop's default currency" in text and "(America/New_York time)" in text
    assert "1 order in other currencies is left out." in text
    # the text alternative: revenue before refunds, refunds and net of the current month
    assert re.search(r"\(so far\)</th>\s*<td[^>]*>USD\s140\.10</td>\s*<td[^>]*>USD\s40\.00</td>\s*<td[^>]*>USD\s100\.10</td>", html)
    assert re.search(r"\(so far\)</th>\s*<td[^>]*>1</td><td[^>]*>1</td>\s*<td[^>]*>2</td>", html)


def test_charts_not_cached_yet_load_after_the_page_and_then_come_with_it(client, agent, shop):
    client.force_login(agent)
    page = client.get(reverse("home")).content.decode()
    # The page does not wait for the year of orders: loading cards ask for the charts.
    assert f'hx-get="{reverse("home")}?section=charts"' in page and 'hx-trigger="load"' in page
    assert 'id="chart-revenue"' not in page and "Loading…" in page
    _charts(client)
    # Now cached: in the page itself, with no loading cards.
    page = client.get(reverse("home")).content.decode()
    assert 'id="chart-revenue"' in page and 'id="chart-signups"' in page and "section=charts" not in page


def test_home_page_without_data_shows_the_empty_states(client, agent):
    client.force_login(agent)
    html = _charts(client)
    assert "No USD orders in the last 12 months" in html
    assert "No new customers in the last 12 months" in html
    assert "data-chart=" not in html and 'id="chart-revenue"' not in html
    assert "other currencies" not in html


def test_month_names_follow_the_language(client, agent, shop):
    client.force_login(agent)
    html = _charts(client, HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9")
    months = chart_months(now=timezone.now())
    with translation.override("zh-hans"):
        first = date_format(months[0], "YEAR_MONTH_FORMAT")
    assert "年" in first
    labels = _spec(html, "chart-revenue")["labels"]
    assert labels[0] == first and labels[-1].startswith(date_format(months[-1], "Y"))
    assert _spec(html, "chart-signups")["datasets"][1]["label"] != "No channel"  # translated


@pytest.mark.parametrize("role", ["agent", "manager", "admin_user"])
def test_every_staff_role_sees_the_charts(client, request, role, shop):
    client.force_login(request.getfixturevalue(role))
    html = _charts(client)
    assert 'data-chart="chart-revenue"' in html and 'data-chart="chart-signups"' in html


def test_home_page_queries_are_fixed_and_the_charts_cached(client, agent, shop, django_assert_num_queries):
    TaskFactory.create_batch(3, assignee=agent)
    for _ in range(5):
        channel = ChannelFactory()
        CustomerFactory.create_batch(2, channel=channel, signed_up_at=_this_month_local())
        OrderFactory(ordered_at=_this_month_local(), status=Order.Status.REFUNDED)
    client.force_login(agent)
    with django_assert_num_queries(HOME_QUERIES):  # charts not cached: the loading cards
        assert client.get(reverse("home")).status_code == 200
    with django_assert_num_queries(CHARTS_QUERIES):
        _charts(client)
    with django_assert_num_queries(HOME_QUERIES):  # cached: in the page, at no cost
        assert 'id="chart-revenue"' in client.get(reverse("home")).content.decode()
    with django_assert_num_queries(3):  # session, user, groups
        _charts(client)


def test_the_charts_fragment_needs_a_login(client):
    response = client.get(reverse("home"), {"section": "charts"}, HTTP_HX_REQUEST="true")
    # htmx is told to go to the login page (HX-Redirect), and gets no chart.
    assert response["HX-Redirect"].startswith(reverse("login")) and "chart-revenue" not in response.content.decode()


def test_an_unknown_section_is_a_404(client, agent):
    client.force_login(agent)
    assert client.get(reverse("home"), {"section": "nope"}, HTTP_HX_REQUEST="true").status_code == 404
