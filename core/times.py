"""Times that come from outside (forms, query strings, cursors), made safe for the database.

ISO 8601 and Python allow UTC offsets up to 23:59, PostgreSQL only up to 15:59 ("time zone
displacement out of range", a 500); and a moment near the ends of the calendar (year 1 at +05:00)
cannot be expressed in UTC at all, which SQLite's backend needs (an OverflowError, a 500). So every
time taken from a user goes through as_utc() before it reaches a query.

Also the shop's own time zone and calendar day, which the CLV figures, charts and imports share."""

import datetime as dt
import zoneinfo

from django.conf import settings
from django.utils import timezone


def as_utc(moment: dt.datetime) -> dt.datetime:
    """An aware `moment` in UTC; ValueError when UTC cannot express it."""
    try:
        return moment.astimezone(dt.UTC)
    except OverflowError as exc:
        raise ValueError(f"{moment.isoformat()} is outside the years UTC can express") from exc


# --- The shop's time zone and calendar day --------------------------------------------------------
# Purchases are counted per calendar day and charts per calendar month in the shop's time zone
# (settings.TIME_ZONE), whatever zone a user views the pages in.


def shop_zone() -> zoneinfo.ZoneInfo:
    """The shop's time zone (settings.TIME_ZONE, read each time: tests override it)."""
    return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def shop_day(moment: dt.datetime | None = None) -> dt.date:
    """The shop's calendar day of an aware `moment` (default: now)."""
    return (moment or timezone.now()).astimezone(shop_zone()).date()


def shop_day_start(day: dt.date) -> dt.datetime:
    """Midnight at the start of `day` in the shop's time zone, aware (zoneinfo picks the offset
    across DST changes); the end of a day is the start of the next."""
    return dt.datetime.combine(day, dt.time.min, tzinfo=shop_zone())


def month_starts(now: dt.datetime, months: int) -> list[dt.date]:
    """The first days of the last `months` calendar months up to `now`'s (in the current time
    zone), oldest first: the x axis of the per-month charts."""
    first = timezone.localdate(now).replace(day=1)
    starts = []
    for back in range(months - 1, -1, -1):
        index = first.year * 12 + first.month - 1 - back
        starts.append(dt.date(index // 12, index % 12 + 1, 1))
    return starts
