"""Query-string filters of the referrals API."""

import django_filters
from django.utils.translation import gettext_lazy as _

from customers.filters import IdFilter, TimeRangeFilter
from referrals.models import Referral, Reward


class ReferralFilter(django_filters.FilterSet):
    state = django_filters.MultipleChoiceFilter(choices=Referral.State.choices, help_text=_("State; repeat for several."))
    referrer = IdFilter(field_name="referrer_id", help_text=_("Customer id of the referrer."))
    referee = IdFilter(field_name="referee_id", help_text=_("Customer id of the referee."))
    verdict = django_filters.ChoiceFilter(choices=Referral.Verdict.choices, help_text=_("The fraud verdict."))
    escalated = django_filters.BooleanFilter(
        field_name="escalated_at", lookup_expr="isnull", exclude=True, help_text=_("Only escalated (true) or not (false).")
    )
    created_at = TimeRangeFilter(help_text=_("created_at_after / created_at_before: ISO 8601 times, both inclusive."))

    class Meta:
        model = Referral
        fields = []


class RewardFilter(django_filters.FilterSet):
    customer = IdFilter(field_name="customer_id", help_text=_("Customer id."))
    referral = IdFilter(field_name="referral_id", help_text=_("Referral id."))
    role = django_filters.ChoiceFilter(choices=Reward.Role.choices)
    kind = django_filters.ChoiceFilter(choices=Reward.Kind.choices)
    state = django_filters.ChoiceFilter(choices=Reward.State.choices)
    created_at = TimeRangeFilter(help_text=_("created_at_after / created_at_before: ISO 8601 times, both inclusive."))

    class Meta:
        model = Reward
        fields = []
