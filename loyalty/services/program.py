"""The programme's settings and the dates they give a lot: when its points can be spent and when
they expire. Shared by the single-account ledger service and the set-based earning."""

import datetime as dt
from zoneinfo import ZoneInfo

from django.conf import settings

from loyalty.models import LoyaltyProgram


def program_get() -> LoyaltyProgram:
    """The settings row, created with the defaults on first use."""
    program, _created = LoyaltyProgram.objects.get_or_create(pk=1)
    return program


def _add_months(moment: dt.datetime, months: int) -> dt.datetime:
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    # The 31st plus one month is the last day of a shorter month.
    days = (dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)).day
    return moment.replace(year=year, month=month, day=min(moment.day, days))


def lot_expiry(*, program: LoyaltyProgram, earned_at: dt.datetime) -> dt.datetime | None:
    """The moment a lot earned at `earned_at` expires (exclusive), or None for never.

    Rounding up to the end of a month, quarter or year happens in the shop's time zone: the lot
    expires at the first moment of the next period there."""
    if program.expiry_months is None:
        return None
    local = earned_at.astimezone(ZoneInfo(settings.TIME_ZONE))
    moment = _add_months(local, program.expiry_months)
    rounding = program.expiry_rounding
    if rounding == LoyaltyProgram.ExpiryRounding.NONE:
        return moment
    if rounding == LoyaltyProgram.ExpiryRounding.MONTH:
        months_on = 1
    elif rounding == LoyaltyProgram.ExpiryRounding.QUARTER:
        months_on = 3 - (moment.month - 1) % 3
    else:
        months_on = 13 - moment.month
    start_of_month = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return _add_months(start_of_month, months_on)


def lot_available_at(*, program: LoyaltyProgram, earned_at: dt.datetime) -> dt.datetime:
    return earned_at + dt.timedelta(days=program.pending_days)
