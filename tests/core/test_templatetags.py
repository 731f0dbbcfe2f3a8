import datetime as dt
from decimal import Decimal

from django.template import Context, Template
from django.utils import translation

from core.templatetags.crm import duration, format_money


def test_money_rounds_and_groups_per_locale():
    with translation.override("en"):
        assert format_money(Decimal("1234567.125"), "usd") == "USD\xa01,234,567.13"
        assert format_money(Decimal("1500"), "JPY") == "JPY\xa01,500"
        assert format_money(Decimal("0"), "") == "0.00"
        assert format_money(None, "USD") == ""
        assert format_money("not money", "USD") == ""
    with translation.override("zh-hans"):
        # Grouped by three with a comma (config/formats/zh_Hans; Django's own has no separator).
        assert format_money(Decimal("1234.5"), "CNY").endswith("1,234.50")


def test_money_filter_in_a_template():
    html = Template("{% load crm %}{{ amount|money:currency }}").render(
        Context({"amount": Decimal("49.9"), "currency": "EUR"})
    )
    assert html == "EUR\xa049.90"


def test_duration():
    with translation.override("en"):
        assert duration(dt.timedelta(hours=1)) == "1 hour"
        assert duration(dt.timedelta(minutes=90)) == "1 hour 30 minutes"
        assert duration(dt.timedelta(seconds=30)) == "0 minutes"
        assert duration(None) == ""
