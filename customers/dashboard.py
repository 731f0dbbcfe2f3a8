"""The home dashboard's charts as the page draws them: chart specs for static/js/charts.js (labels
in the active language, money as decimal strings) and a table of the same numbers for each."""

from django.conf import settings
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from customers.chart_selectors import ChannelSeries, DashboardCharts, RevenueChart, SignupChart

# Colour slots of the stacked signups chart (--chart-series-1 .. 8 in static/css/charts.css):
# channels take 1-6 in rank order, "Other" and "No channel" always the two greys.
SERIES_COLOURS = {"other": "series-7", "none": "series-8"}


def _month_labels(months) -> list[str]:
    """Month names in the active language ("June 2026", "2026年6月"); the last month is partial."""
    labels = [date_format(month, "YEAR_MONTH_FORMAT") for month in months]
    labels[-1] = _("%(month)s (so far)") % {"month": labels[-1]}
    return labels


def _series_name(series: ChannelSeries) -> str:
    return {"none": _("No channel"), "other": _("Other")}.get(series.kind, series.name)


def _series_colour(index: int, series: ChannelSeries) -> str:
    return SERIES_COLOURS.get(series.kind, f"series-{index % 6 + 1}")


def _stacked_month_chart(labels: list[str], datasets: list[dict], y_title: str) -> dict:
    """A stacked bar chart over the months, the last (partial) month faded."""
    return {
        "type": "bar",
        "stacked": True,
        "legend": True,
        "labels": labels,
        "partial_index": len(labels) - 1,
        "datasets": datasets,
        "x_title": _("Month"),
        "y_title": y_title,
    }


def _revenue_chart(revenue: RevenueChart, labels: list[str]) -> dict:
    """What was kept (paid orders) and what was refunded; the stack is the revenue before refunds.
    Amounts as strings with two decimals: Decimal up to the JSON boundary."""
    datasets = [
        {"label": _("Paid orders (net)"), "data": [str(m.paid) for m in revenue.months], "color": "bar"},
        {"label": _("Refunded"), "data": [str(m.refunded) for m in revenue.months], "color": "flag"},
    ]
    return _stacked_month_chart(labels, datasets, _("Amount (%(currency)s)") % {"currency": revenue.currency})


def _signups_chart(signups: SignupChart, labels: list[str]) -> dict:
    datasets = [
        {"label": _series_name(s), "data": s.counts, "color": _series_colour(i, s)} for i, s in enumerate(signups.series)
    ]
    return _stacked_month_chart(labels, datasets, _("New customers"))


def charts_context(charts: DashboardCharts) -> dict:
    """The two charts' specs (static/js/charts.js) and their text alternative: a table of the same
    numbers, one row a month."""
    labels = _month_labels(charts.signups.months)
    revenue, signups = charts.revenue, charts.signups
    return {
        "charts": charts,
        "chart_revenue": _revenue_chart(revenue, labels),
        "chart_signups": _signups_chart(signups, labels),
        "revenue_table": {
            "headers": [_("Revenue"), _("Refunds"), _("Net")],
            "rows": [(label, [m.revenue, m.refunded, m.paid]) for label, m in zip(labels, revenue.months, strict=True)],
        },
        "signups_table": {
            "headers": [*(_series_name(s) for s in signups.series), _("Total")],
            "rows": [(label, [*counts, total]) for label, (counts, total) in zip(labels, signups.by_month(), strict=True)],
        },
        "time_zone": settings.TIME_ZONE,
    }
