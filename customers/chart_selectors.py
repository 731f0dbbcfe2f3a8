"""Reads for the home dashboard's charts: revenue and new customers per calendar month.

Months are calendar months in the shop's time zone (settings.TIME_ZONE), the current one included
and marked partial. Each chart is one GROUP BY query over the months' range. The revenue query
has to read every order of the year (no index covers amount, currency and status, and one would
slow the import): 270-420 ms for 475,000 orders on PostgreSQL, so `dashboard_charts` keeps both
charts in the cache for a few minutes (README, Performance).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, F, Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone

from core.money import ZERO, money_round
from core.times import shop_day, shop_day_start, shop_zone
from customers.models import Customer, Order

CHART_MONTHS = 12
CHART_CHANNELS = 6  # the biggest channels drawn on their own; the rest go to "Other"
CHART_CACHE_SECONDS = 300
# The months before the current one change only when old orders are imported or corrected.
PAST_MONTHS_CACHE_SECONDS = 3600


def chart_months(*, now: dt.datetime, months: int = CHART_MONTHS) -> list[dt.date]:
    """The first days of the last `months` calendar months in the shop's time zone, oldest first;
    the last one is the current (partial) month."""
    local = shop_day(now)
    index = local.year * 12 + local.month - 1
    return [dt.date(i // 12, i % 12 + 1, 1) for i in range(index - months + 1, index + 1)]


def _local_month(value: dt.datetime) -> dt.date:
    # TruncMonth(tzinfo=...) gives local midnight, aware in that zone; its date is the month key.
    return shop_day(value).replace(day=1)


@dataclass
class RevenueMonth:
    month: dt.date
    paid: Decimal = ZERO  # paid orders: what the shop kept (net of refunds)
    refunded: Decimal = ZERO  # refunded orders' amount
    paid_orders: int = 0
    refunded_orders: int = 0

    @property
    def revenue(self) -> Decimal:
        """Revenue before refunds: paid and refunded orders (README: refunded orders count as
        revenue and as refunds)."""
        return self.paid + self.refunded


@dataclass
class RevenueChart:
    currency: str
    months: list[RevenueMonth]
    other_currency_orders: int = 0  # paid or refunded orders in other currencies, left out

    @property
    def is_empty(self) -> bool:
        return not any(m.paid_orders or m.refunded_orders for m in self.months)


def _revenue_rows(*, start: dt.datetime, end: dt.datetime, end_inclusive: bool) -> list[dict]:
    """Paid and refunded orders from `start` to `end`, grouped by local month, currency and status."""
    until = {"ordered_at__lte": end} if end_inclusive else {"ordered_at__lt": end}
    # Grouped by (month, currency, status), folded by the caller: cheaper than FILTERed sums per month.
    return list(
        Order.objects.filter(ordered_at__gte=start, **until)
        .exclude(status=Order.Status.CANCELLED)
        .annotate(month=TruncMonth("ordered_at", tzinfo=shop_zone()))
        .values("month", "currency", "status")
        .annotate(total=Sum("amount"), n=Count("*"))
        .order_by()
    )


def revenue_by_month(
    *, now: dt.datetime | None = None, months: int = CHART_MONTHS, cache_past_months: bool = False
) -> RevenueChart:
    """Paid and refunded amounts per month of order time in the default currency, in one GROUP BY
    query over the order_time_idx range. Orders in other currencies are counted, never added in;
    cancelled orders are left out.

    `cache_past_months`: the months before the current one come from the cache (kept for
    PAST_MONTHS_CACHE_SECONDS) and only the current month is read, in a second query. Over a
    year of 7 million orders the whole range takes 3.3 s, the current month a twelfth of it."""
    now = now or timezone.now()
    currency = settings.DEFAULT_CURRENCY
    days = chart_months(now=now, months=months)
    start, current = shop_day_start(days[0]), shop_day_start(days[-1])
    if cache_past_months:
        past = cache.get_or_set(
            f"dashboard-revenue-past:v1:{shop_zone().key}:{days[0]:%Y-%m}:{days[-1]:%Y-%m}",
            lambda: _revenue_rows(start=start, end=current, end_inclusive=False),
            PAST_MONTHS_CACHE_SECONDS,
        )
        rows = [*past, *_revenue_rows(start=current, end=now, end_inclusive=True)]
    else:
        rows = _revenue_rows(start=start, end=now, end_inclusive=True)
    by_month = {day: RevenueMonth(day) for day in days}
    other = 0
    for row in rows:
        if row["currency"] != currency:
            other += row["n"]
            continue
        entry = by_month[_local_month(row["month"])]
        total = money_round(row["total"])  # SQLite's SUM has more places
        if row["status"] == Order.Status.PAID:
            entry.paid, entry.paid_orders = total, row["n"]
        else:
            entry.refunded, entry.refunded_orders = total, row["n"]
    return RevenueChart(currency=currency, months=list(by_month.values()), other_currency_orders=other)


@dataclass
class ChannelSeries:
    """One stack of the signups chart: a channel, "no channel" or "other" (kind), a count per month."""

    kind: str  # "channel", "none" or "other"
    name: str
    counts: list[int]

    @property
    def total(self) -> int:
        return sum(self.counts)


@dataclass
class SignupChart:
    months: list[dt.date]
    series: list[ChannelSeries] = field(default_factory=list)
    other_channels: int = 0  # how many channels "Other" holds

    def by_month(self) -> list[tuple[list[int], int]]:
        """Per month: the count of each series, in series order, and their total."""
        rows = []
        for i in range(len(self.months)):
            counts = [s.counts[i] for s in self.series]
            rows.append((counts, sum(counts)))
        return rows

    @property
    def is_empty(self) -> bool:
        return not self.series


def signups_by_channel(
    *, now: dt.datetime | None = None, months: int = CHART_MONTHS, channels: int = CHART_CHANNELS
) -> SignupChart:
    """New customers per month of signed_up_at by acquisition channel, in one GROUP BY query.

    The `channels` biggest channels of the period get their own series (ties by name), the
    others are summed into "Other"; customers without a channel are their own series, never
    folded into "Other"."""
    now = now or timezone.now()
    days = chart_months(now=now, months=months)
    rows = (
        Customer.objects.filter(signed_up_at__gte=shop_day_start(days[0]), signed_up_at__lte=now)
        .annotate(month=TruncMonth("signed_up_at", tzinfo=shop_zone()))
        .values("month", "channel_id", channel_name=F("channel__name"))
        .annotate(n=Count("*"))  # COUNT(*): customer_channel_signup_idx covers the query
        .order_by()
    )
    position = {day: i for i, day in enumerate(days)}
    per_channel: dict[int | None, ChannelSeries] = {}
    for row in rows:
        key = row["channel_id"]
        if key not in per_channel:
            kind = "none" if key is None else "channel"
            per_channel[key] = ChannelSeries(kind, row["channel_name"] or "", [0] * len(days))
        per_channel[key].counts[position[_local_month(row["month"])]] += row["n"]

    unassigned = per_channel.pop(None, None)
    ranked = sorted(per_channel.values(), key=lambda s: (-s.total, s.name))
    series, rest = ranked[:channels], ranked[channels:]
    if rest:
        series.append(ChannelSeries("other", "", [sum(c) for c in zip(*(s.counts for s in rest), strict=True)]))
    if unassigned:
        series.append(unassigned)
    return SignupChart(months=days, series=series, other_channels=len(rest))


@dataclass
class DashboardCharts:
    revenue: RevenueChart
    signups: SignupChart


def dashboard_charts_cache_key(*, now: dt.datetime) -> str:
    """Per current month and time zone (the months change with either) and currency."""
    month = shop_day(now).strftime("%Y-%m")
    return f"dashboard-charts:v2:{shop_zone().key}:{month}:{settings.DEFAULT_CURRENCY}"


def dashboard_charts(*, now: dt.datetime | None = None) -> DashboardCharts:
    """Both charts' data, cached for CHART_CACHE_SECONDS: the home page is every user's first page,
    and the revenue query reads a year of orders (its past months are cached for longer, see
    revenue_by_month). New orders show up within that time."""
    now = now or timezone.now()
    return cache.get_or_set(
        dashboard_charts_cache_key(now=now),
        lambda: DashboardCharts(
            revenue=revenue_by_month(now=now, cache_past_months=True), signups=signups_by_channel(now=now)
        ),
        CHART_CACHE_SECONDS,
    )


def dashboard_charts_cached(*, now: dt.datetime | None = None) -> DashboardCharts | None:
    """The charts if the cache has them, else None (the home page then loads them separately)."""
    return cache.get(dashboard_charts_cache_key(now=now or timezone.now()))
