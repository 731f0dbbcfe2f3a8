"""Calendar periods in the shop's time zone (a month, a quarter, a year), for the caps and the group
bonus: the period that contains a moment, as its first day and its [start, end) moments."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from core.times import shop_day, shop_day_start
from referrals.models import Period


@dataclass(frozen=True)
class PeriodSpan:
    first_day: dt.date
    start: dt.datetime
    end: dt.datetime


def _months_later(day: dt.date, months: int) -> dt.date:
    index = day.month - 1 + months
    return dt.date(day.year + index // 12, index % 12 + 1, 1)


def period_span(period: str, moment: dt.datetime) -> PeriodSpan:
    day = shop_day(moment)
    if period == Period.YEAR:
        first, months = dt.date(day.year, 1, 1), 12
    elif period == Period.QUARTER:
        first, months = dt.date(day.year, (day.month - 1) // 3 * 3 + 1, 1), 3
    else:
        first, months = day.replace(day=1), 1
    return PeriodSpan(first_day=first, start=shop_day_start(first), end=shop_day_start(_months_later(first, months)))
