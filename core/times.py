"""Times that come from outside (forms, query strings, cursors), made safe for the database.

ISO 8601 and Python allow UTC offsets up to 23:59, PostgreSQL only up to 15:59 ("time zone
displacement out of range", a 500); and a moment near the ends of the calendar (year 1 at +05:00)
cannot be expressed in UTC at all, which SQLite's backend needs (an OverflowError, a 500). So every
time taken from a user goes through as_utc() before it reaches a query."""

import datetime as dt


def as_utc(moment: dt.datetime) -> dt.datetime:
    """An aware `moment` in UTC; ValueError when UTC cannot express it."""
    try:
        return moment.astimezone(dt.UTC)
    except OverflowError as exc:
        raise ValueError(f"{moment.isoformat()} is outside the years UTC can express") from exc
