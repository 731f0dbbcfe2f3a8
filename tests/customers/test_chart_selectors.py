"""The home dashboard's chart data: revenue per month and new customers per month by channel, in
the shop's time zone, one query each, cached per month and zone."""

import datetime as dt
import zoneinfo
from decimal import Decimal

import pytest
from django.core.cache import cache

from customers.chart_selectors import (
    chart_months,
    dashboard_charts,
    dashboard_charts_cache_key,
    revenue_by_month,
    signups_by_channel,
)
from customers.models import Order
from tests.factories import ChannelFactory, CustomerFactory, OrderFactory

pytestmark = pytest.mark.django_db

NEW_YORK = zoneinfo.ZoneInfo("America/New_York")  # behind UTC: late local orders are next month in UTC
NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=NEW_YORK)


@pytest.fixture(autouse=True)
def shop_in_new_york(settings):
    settings.TIME_ZONE = "America/New_York"
    settings.DEFAULT_CURRENCY = "USD"


def local(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=NEW_YORK)


def _month(chart, year, month):
    return next(m for m in chart.months if m.month == dt.date(year, month, 1))


def test_the_last_twelve_calendar_months_end_with_the_current_one():
    months = chart_months(now=NOW)
    assert months[0] == dt.date(2025, 7, 1) and months[-1] == dt.date(2026, 6, 1) and len(months) == 12
    # 1 July 02:00 UTC is still 30 June in New York
    assert chart_months(now=dt.datetime(2026, 7, 1, 2, 0, tzinfo=dt.UTC))[-1] == dt.date(2026, 6, 1)


def test_orders_count_in_their_local_month_at_the_boundaries():
    OrderFactory(ordered_at=local(2026, 1, 31, 23, 30), amount=Decimal("10.00"))  # 04:30 UTC on 1 Feb
    OrderFactory(ordered_at=local(2026, 2, 1, 0, 0), amount=Decimal("20.00"))
    OrderFactory(ordered_at=local(2025, 11, 30, 23, 59), amount=Decimal("1.00"))  # after the DST change
    OrderFactory(ordered_at=local(2025, 6, 30, 23, 59), amount=Decimal("99.00"))  # before the window (July in UTC)
    OrderFactory(ordered_at=local(2025, 7, 1, 0, 0), amount=Decimal("3.00"))  # first minute of the window
    OrderFactory(ordered_at=NOW + dt.timedelta(minutes=1), amount=Decimal("500.00"))  # not yet

    chart = revenue_by_month(now=NOW)

    assert [m.month for m in chart.months] == chart_months(now=NOW)
    assert _month(chart, 2026, 1).paid == Decimal("10.00")
    assert _month(chart, 2026, 2).paid == Decimal("20.00")
    assert _month(chart, 2025, 11).paid == Decimal("1.00")
    assert _month(chart, 2025, 12).paid == Decimal("0.00")
    assert _month(chart, 2025, 7).paid == Decimal("3.00")
    assert _month(chart, 2026, 6).paid == Decimal("0.00")
    assert sum(m.paid_orders for m in chart.months) == 4


def test_refunds_are_their_own_figure_and_cancelled_orders_do_not_count():
    when = local(2026, 3, 10, 9, 0)
    OrderFactory(ordered_at=when, amount=Decimal("100.10"))
    OrderFactory(ordered_at=when, amount=Decimal("0.20"))
    OrderFactory(ordered_at=when, amount=Decimal("30.00"), status=Order.Status.REFUNDED)
    OrderFactory(ordered_at=when, amount=Decimal("50.00"), status=Order.Status.CANCELLED)

    march = _month(revenue_by_month(now=NOW), 2026, 3)

    assert (march.paid, march.refunded, march.revenue) == (Decimal("100.30"), Decimal("30.00"), Decimal("130.30"))
    assert (march.paid_orders, march.refunded_orders) == (2, 1)
    assert all(isinstance(v, Decimal) for v in (march.paid, march.refunded, march.revenue))
    assert [str(v) for v in (march.paid, march.refunded, march.revenue)] == ["100.30", "30.00", "130.30"]


def test_other_currencies_are_counted_and_left_out(settings):
    when = local(2026, 4, 2, 9, 0)
    OrderFactory(ordered_at=when, amount=Decimal("10.00"))
    OrderFactory(ordered_at=when, amount=Decimal("70.00"), currency="EUR")
    OrderFactory(ordered_at=when, amount=Decimal("80.00"), currency="EUR", status=Order.Status.REFUNDED)
    OrderFactory(ordered_at=when, amount=Decimal("90.00"), currency="GBP", status=Order.Status.CANCELLED)
    OrderFactory(ordered_at=local(2024, 1, 1, 9, 0), amount=Decimal("5.00"), currency="EUR")  # outside the window

    chart = revenue_by_month(now=NOW)
    april = _month(chart, 2026, 4)
    assert chart.currency == "USD" and chart.other_currency_orders == 2
    assert (april.paid, april.refunded) == (Decimal("10.00"), Decimal("0.00"))

    settings.DEFAULT_CURRENCY = "EUR"
    chart = revenue_by_month(now=NOW)
    april = _month(chart, 2026, 4)
    assert chart.currency == "EUR" and chart.other_currency_orders == 1
    assert (april.paid, april.refunded) == (Decimal("70.00"), Decimal("80.00"))


def test_no_orders_is_an_empty_chart_of_twelve_months():
    OrderFactory(ordered_at=local(2026, 4, 2, 9, 0), status=Order.Status.CANCELLED)
    chart = revenue_by_month(now=NOW)
    assert chart.is_empty and len(chart.months) == 12 and chart.other_currency_orders == 0
    OrderFactory(ordered_at=local(2026, 4, 2, 9, 0), currency="EUR")
    chart = revenue_by_month(now=NOW)
    assert chart.is_empty and chart.other_currency_orders == 1


def test_revenue_is_one_query(django_assert_num_queries):
    for month in range(1, 6):
        OrderFactory(ordered_at=local(2026, month, 3, 9, 0))
        OrderFactory(ordered_at=local(2026, month, 4, 9, 0), status=Order.Status.REFUNDED, currency="EUR")
    with django_assert_num_queries(1):
        revenue_by_month(now=NOW)


def test_signups_by_channel_at_the_month_boundaries():
    web = ChannelFactory(code="web", name="Web")
    CustomerFactory(channel=web, signed_up_at=local(2026, 1, 31, 23, 30))  # 1 Feb in UTC
    CustomerFactory(channel=web, signed_up_at=local(2026, 2, 1, 0, 0))
    CustomerFactory(channel=web, signed_up_at=local(2025, 6, 30, 23, 59))  # before the window
    CustomerFactory(channel=web, signed_up_at=None)
    CustomerFactory(channel=None, signed_up_at=local(2026, 6, 1, 0, 0))
    CustomerFactory(channel=None, signed_up_at=NOW + dt.timedelta(hours=1))  # not yet

    chart = signups_by_channel(now=NOW)

    assert chart.months == chart_months(now=NOW)
    assert [(s.kind, s.name) for s in chart.series] == [("channel", "Web"), ("none", "")]
    web_counts, none_counts = (s.counts for s in chart.series)
    assert web_counts[chart.months.index(dt.date(2026, 1, 1))] == 1
    assert web_counts[chart.months.index(dt.date(2026, 2, 1))] == 1
    assert sum(web_counts) == 2
    assert none_counts == [0] * 11 + [1]
    assert chart.by_month()[-1] == ([0, 1], 1)
    assert chart.other_channels == 0


def test_the_six_biggest_channels_and_other():
    when = local(2026, 5, 5, 10, 0)
    # channel i has i + 1 signups; two small ones tie and the name decides
    for i, name in enumerate(["Alpha", "Bravo", "Charlie", "Delta", "Echo", "Foxtrot", "Golf", "Hotel"]):
        channel = ChannelFactory(code=name.lower(), name=name)
        CustomerFactory.create_batch(i + 1 if i else 2, channel=channel, signed_up_at=when)
    CustomerFactory.create_batch(20, channel=None, signed_up_at=when)  # biggest, yet never in "Other"
    old = ChannelFactory(code="old", name="Old")
    CustomerFactory.create_batch(30, channel=old, signed_up_at=local(2024, 5, 5))  # outside the period

    chart = signups_by_channel(now=NOW)

    names = [(s.kind, s.name, s.total) for s in chart.series]
    assert names == [
        ("channel", "Hotel", 8),
        ("channel", "Golf", 7),
        ("channel", "Foxtrot", 6),
        ("channel", "Echo", 5),
        ("channel", "Delta", 4),
        ("channel", "Charlie", 3),
        ("other", "", 4),  # Alpha 2 and Bravo 2
        ("none", "", 20),
    ]
    assert chart.other_channels == 2
    assert chart.by_month()[chart.months.index(dt.date(2026, 5, 1))][1] == 8 + 7 + 6 + 5 + 4 + 3 + 4 + 20


def test_no_signups_is_an_empty_chart():
    CustomerFactory(signed_up_at=local(2024, 1, 1))
    chart = signups_by_channel(now=NOW)
    assert chart.is_empty and chart.by_month() == [([], 0)] * 12


def test_signups_is_one_query(django_assert_num_queries):
    for i in range(4):
        CustomerFactory(channel=ChannelFactory(), signed_up_at=local(2026, i + 1, 3))
    with django_assert_num_queries(1):
        signups_by_channel(now=NOW)


def test_dashboard_charts_are_cached_per_month_and_time_zone(settings, django_assert_num_queries):
    OrderFactory(ordered_at=local(2026, 6, 3, 9, 0), amount=Decimal("12.34"))
    with django_assert_num_queries(3):  # the past months, the current month, the signups
        first = dashboard_charts(now=NOW)
    OrderFactory(ordered_at=local(2026, 6, 3, 10, 0), amount=Decimal("1.00"))
    with django_assert_num_queries(0):
        again = dashboard_charts(now=NOW + dt.timedelta(minutes=1))
    assert again.revenue.months[-1].paid == first.revenue.months[-1].paid == Decimal("12.34")

    # a new month, or another time zone, is another key: computed afresh
    new_york_key = dashboard_charts_cache_key(now=NOW)
    assert new_york_key != dashboard_charts_cache_key(now=local(2026, 7, 1, 0, 0))
    settings.TIME_ZONE = "Asia/Shanghai"
    assert dashboard_charts_cache_key(now=NOW) != new_york_key
    with django_assert_num_queries(3):
        shanghai = dashboard_charts(now=NOW)
    assert shanghai.revenue.months[-1].paid == Decimal("13.34")


def test_past_months_of_revenue_are_cached_longer_than_the_current_month(django_assert_num_queries):
    OrderFactory(ordered_at=local(2026, 3, 10, 12, 0), amount=Decimal("5.00"))
    OrderFactory(ordered_at=local(2026, 6, 3, 9, 0), amount=Decimal("12.34"))
    first = revenue_by_month(now=NOW, cache_past_months=True)
    assert [m.paid for m in first.months if m.paid] == [Decimal("5.00"), Decimal("12.34")]
    # A new order this month shows at once; one in a past month only once the past months expire.
    OrderFactory(ordered_at=local(2026, 6, 4, 9, 0), amount=Decimal("1.00"))
    OrderFactory(ordered_at=local(2026, 3, 11, 9, 0), amount=Decimal("2.00"))
    with django_assert_num_queries(1):  # the current month only
        second = revenue_by_month(now=NOW, cache_past_months=True)
    assert [m.paid for m in second.months if m.paid] == [Decimal("5.00"), Decimal("13.34")]
    # Uncached (and once the cache is gone) both months are exact, and the split changes no figure.
    assert revenue_by_month(now=NOW) == revenue_by_month(now=NOW, cache_past_months=False)
    cache.clear()
    assert revenue_by_month(now=NOW, cache_past_months=True) == revenue_by_month(now=NOW)
    assert [m.paid for m in revenue_by_month(now=NOW).months if m.paid] == [Decimal("7.00"), Decimal("13.34")]
