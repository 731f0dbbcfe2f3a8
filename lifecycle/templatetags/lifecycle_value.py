"""Template helpers for the value screens and the customer value panel."""

from __future__ import annotations

from django import template
from django.conf import settings
from django.utils.formats import number_format
from django.utils.translation import gettext as _

register = template.Library()


@register.filter
def as_percent(value, digits: int = 0) -> str:
    """A probability 0..1 as a localised percentage ("83 %" style per locale); "—" for None."""
    if value is None or value == "":
        return "—"
    return f"{number_format(float(value) * 100, decimal_pos=int(digits))}%"


@register.simple_tag
def value_currency() -> str:
    """Customer values are kept in the shop's default currency."""
    return settings.DEFAULT_CURRENCY


@register.filter
def run_duration(run) -> str:
    """Seconds from start to finish of a run, e.g. "12.4 s"; "—" while unfinished."""
    if not run.started_at or not run.finished_at:
        return "—"
    seconds = (run.finished_at - run.started_at).total_seconds()
    return _("%(seconds)s s") % {"seconds": number_format(seconds, decimal_pos=1)}
