"""Serializers of the referrals API (the list, a referral with its events, decisions, rewards)."""

from rest_framework import serializers

from referrals.models import Referral, ReferralEvent, Reward
from referrals.services.review import NOTE_MAX

REFERRAL_FIELDS = [
    "id", "referrer", "referee", "code", "state", "source", "risk_score", "verdict", "signals", "qualifying_order",
    "order_amount", "qualified_at", "hold_until", "review_deadline", "escalated_at", "approved_at", "decided_at",
    "created_at", "updated_at",
]


class ReferralOutputSerializer(serializers.ModelSerializer):
    code = serializers.CharField(source="code.code")

    class Meta:
        model = Referral
        fields = REFERRAL_FIELDS


class ReferralEventOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = ReferralEvent
        fields = ["id", "from_state", "to_state", "actor", "staff", "reason", "data", "created_at"]


class ReferralDetailOutputSerializer(ReferralOutputSerializer):
    events = ReferralEventOutputSerializer(many=True)

    class Meta(ReferralOutputSerializer.Meta):
        fields = [*REFERRAL_FIELDS, "events"]


class DecisionInputSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=NOTE_MAX, required=False, allow_blank=True, default="")


class RejectInputSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=NOTE_MAX)


class ReferralConflictSerializer(serializers.Serializer):
    code = serializers.CharField()
    detail = serializers.CharField()
    state = serializers.CharField()


class RewardOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Reward
        fields = [
            "id", "customer", "referral", "role", "kind", "state", "amount", "percent", "points", "value", "currency",
            "discount_code", "expires_at", "period_start", "group_step", "created_at", "claimed_at", "clawed_back_at",
        ]
