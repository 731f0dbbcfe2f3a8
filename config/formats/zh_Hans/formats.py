"""Simplified Chinese number formats: Django's zh_Hans has no thousand separator (so "2003",
"USD 19083.46"), but Chinese business writing groups by three with a comma ("2,003",
"USD 19,083.46"), as the mainland's GB/T 15835 and every Chinese e-commerce back office do.
Everything else is Django's."""

from django.conf.locale.zh_Hans.formats import *  # noqa: F403

THOUSAND_SEPARATOR = ","
NUMBER_GROUPING = 3
