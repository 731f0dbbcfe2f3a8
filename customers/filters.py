"""Query-string filters of the customers API."""


import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _

from core.ids import MAX_BIGINT
from core.times import as_utc
from customers.models import ActivityEvent, ChannelSpend, Customer, Order
from customers.selectors import customer_search_q, with_search_alias


def customer_search(queryset: QuerySet[Customer], term: str) -> QuerySet[Customer]:
    """Customers whose name, e-mail or external id contains `term`, case-insensitively, through the
    staff UI's search (customers.selectors): both sides lower()ed exactly like the trigram indexes."""
    if not term.strip():
        return queryset
    return with_search_alias(queryset).filter(customer_search_q(term))


class IdFilter(django_filters.NumberFilter):
    """An id: a whole number a BIGINT column can hold (SQLite overflows on larger ones)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_BIGINT)
        super().__init__(*args, **kwargs)


class TimeRangeFilter(django_filters.IsoDateTimeFromToRangeFilter):
    """ISO 8601 from / to times, sent to the database in UTC (core.times); one that UTC cannot
    express (year 1 at +05:00) is a 400."""

    def filter(self, qs, value):
        if value:
            try:
                value = slice(*(None if bound is None else as_utc(bound) for bound in (value.start, value.stop)))
            except ValueError:
                raise ValidationError({self.field_name: [_("Datetime value out of range.")]}) from None
        return super().filter(qs, value)


LIFECYCLE_STAGES = [(s, s) for s in ("lead", "new", "active", "loyal", "at_risk", "churned")]


class CustomerFilter(django_filters.FilterSet):
    email = django_filters.CharFilter(method="filter_email", help_text=_("E-mail address, case-insensitive."))
    external_id = django_filters.CharFilter(field_name="external_id")
    search = django_filters.CharFilter(
        method="filter_search", help_text=_("Part of the name, e-mail or external id, case-insensitive.")
    )
    channel = django_filters.CharFilter(field_name="channel__code", help_text=_("Acquisition channel code."))
    country = django_filters.CharFilter(method="filter_country", help_text=_("ISO 3166-1 alpha-2 code."))
    owner = IdFilter(field_name="owner_id", help_text=_("Id of the account manager."))
    tag = django_filters.CharFilter(field_name="tags__name", help_text=_("Tag name."))
    # The lifecycle app's one-to-one rows (stage, health), by their relation names.
    stage = django_filters.ChoiceFilter(
        field_name="stage__stage", choices=LIFECYCLE_STAGES, help_text=_("Lifecycle stage.")
    )
    churn_risk = django_filters.NumberFilter(field_name="health__churn_risk", help_text=_("Churn risk level, 0-3."))
    health_min = django_filters.NumberFilter(field_name="health__score", lookup_expr="gte", help_text=_("Lowest health score."))
    health_max = django_filters.NumberFilter(field_name="health__score", lookup_expr="lte", help_text=_("Highest health score."))

    class Meta:
        model = Customer
        fields = []

    def filter_email(self, queryset, name, value):
        # lower(email) = ... is the expression of the unique index customer_email_ci_uniq.
        return queryset.alias(email_lower=Lower("email")).filter(email_lower=value.strip().lower())

    def filter_search(self, queryset, name, value):
        return customer_search(queryset, value)

    def filter_country(self, queryset, name, value):
        return queryset.filter(country=value.strip().upper())


class _ByCustomerFilter(django_filters.FilterSet):
    customer = IdFilter(field_name="customer_id", help_text=_("Customer id."))
    customer_external_id = django_filters.CharFilter(field_name="customer__external_id")


class OrderFilter(_ByCustomerFilter):
    status = django_filters.ChoiceFilter(choices=Order.Status.choices)
    ordered_at = TimeRangeFilter(
        help_text=_("ordered_at_after / ordered_at_before: ISO 8601 times, both inclusive.")
    )

    class Meta:
        model = Order
        fields = []


class EventFilter(_ByCustomerFilter):
    name = django_filters.CharFilter(field_name="name")
    occurred_at = TimeRangeFilter(
        help_text=_("occurred_at_after / occurred_at_before: ISO 8601 times, both inclusive.")
    )

    class Meta:
        model = ActivityEvent
        fields = []


class ChannelSpendFilter(django_filters.FilterSet):
    channel = django_filters.CharFilter(field_name="channel__code", help_text=_("Channel code."))
    month = django_filters.DateFromToRangeFilter(help_text=_("month_after / month_before: dates, both inclusive."))

    class Meta:
        model = ChannelSpend
        fields = []
