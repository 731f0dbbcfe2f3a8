"""Template helpers shared by every app: `{% load crm %}`."""

from decimal import Decimal, InvalidOperation

from django import template
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from core.money import money_round
from core.people import display_name
from core.stored_text import translate_stored

register = template.Library()

# ISO 4217 minor units where they differ from 2.
_MINOR_UNITS = {"JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0, "BHD": 3, "KWD": 3, "OMR": 3, "JOD": 3, "TND": 3}


def format_money(amount, currency: str = "") -> str:
    """A Decimal amount, rounded to the currency's minor unit and grouped per the active locale,
    with its ISO currency code. The order of code and number is itself translatable."""
    if amount is None or amount == "":
        return ""
    try:
        value = amount if isinstance(amount, Decimal) else Decimal(str(amount))
    except (InvalidOperation, ValueError, TypeError):
        return ""
    currency = (currency or "").upper()
    places = _MINOR_UNITS.get(currency, 2)
    value = money_round(value, places)
    number = number_format(value, decimal_pos=places, use_l10n=True, force_grouping=True)
    if not currency:
        return number
    # (The separator is a real no-break space, not a \u escape: xgettext would keep the escape literally.)
    # Translators: how an amount of money is written; %(currency)s is an ISO code such as USD.
    return _("%(currency)s %(amount)s") % {"currency": currency, "amount": number}


@register.filter
def money(amount, currency: str = ""):
    """`{{ order.amount|money:order.currency }}`"""
    return format_money(amount, currency)


@register.filter
def stored(text) -> str:
    """`{{ row.reason|stored }}`: text a worker stored in English, in the reader's language."""
    return translate_stored(text)


@register.filter
def person(user) -> str:
    """`{{ task.assignee|person }}`: a user's name by the one rule (core.people.display_name)."""
    return display_name(user) or "—"


@register.filter
def initials(user) -> str:
    name = display_name(user)
    parts = [p for p in name.replace(".", " ").split() if p]
    return "".join(p[0] for p in parts[:2]).upper() or "?"


@register.filter
def duration(value) -> str:
    """A timedelta as "1 hour", "30 minutes", "1 hour 30 minutes" in the active language."""
    if value is None:
        return ""
    minutes = max(0, int(value.total_seconds() // 60))
    hours, minutes = divmod(minutes, 60)
    parts = []
    if hours:
        parts.append(ngettext("%(n)d hour", "%(n)d hours", hours) % {"n": hours})
    if minutes or not hours:
        parts.append(ngettext("%(n)d minute", "%(n)d minutes", minutes) % {"n": minutes})
    return " ".join(parts)
