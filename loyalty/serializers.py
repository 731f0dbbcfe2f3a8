"""Input and output serializers of the loyalty API."""

from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from loyalty.models import LedgerEntry

MAX_POINTS = 1_000_000_000


class AccountOutputSerializer(serializers.Serializer):
    customer_id = serializers.IntegerField()
    enrolled = serializers.BooleanField()
    balance = serializers.IntegerField(help_text=_("Points on the account, pending ones included."))
    pending = serializers.IntegerField(help_text=_("Points still in their hold period, not spendable yet."))
    spendable = serializers.IntegerField()
    debt = serializers.IntegerField(help_text=_("Points owed after a refund; future earnings repay them."))
    tier = serializers.CharField(allow_null=True)
    next_expiry = serializers.DateTimeField(allow_null=True)
    next_expiry_points = serializers.IntegerField()


class EntryOutputSerializer(serializers.Serializer):
    # Declared field by field, not a ModelSerializer: that one rebuilds its fields from the model on
    # every instance, which was a sixth of a redemption's Python time. The same schema.
    id = serializers.IntegerField(read_only=True)
    kind = serializers.ChoiceField(choices=LedgerEntry.Kind.choices)
    points = serializers.IntegerField(help_text=_("Signed: positive adds points, negative takes them."))
    balance_after = serializers.IntegerField(min_value=-(2**63), max_value=2**63 - 1)
    reason = serializers.CharField(max_length=200, required=False, allow_blank=True)
    source = serializers.ChoiceField(choices=LedgerEntry.Source.choices)
    order = serializers.IntegerField(source="order_id", allow_null=True, required=False)
    created_at = serializers.DateTimeField(label=capfirst(LedgerEntry._meta.get_field("created_at").verbose_name))


class AdjustInputSerializer(serializers.Serializer):
    points = serializers.IntegerField(min_value=-MAX_POINTS, max_value=MAX_POINTS)
    reason = serializers.CharField(max_length=200)
    idempotency_key = serializers.CharField(max_length=100)

    def validate_points(self, value):
        if value == 0:
            raise serializers.ValidationError(_("An adjustment must change the balance."))
        return value


class RedeemInputSerializer(serializers.Serializer):
    points = serializers.IntegerField(min_value=1, max_value=MAX_POINTS, required=False)
    reward = serializers.IntegerField(min_value=1, max_value=2**63 - 1, required=False)
    idempotency_key = serializers.CharField(max_length=100)

    def validate(self, attrs):
        if ("points" in attrs) == ("reward" in attrs):
            raise serializers.ValidationError({"points": [_("Give either points or a reward, not both.")]})
        return attrs


class VoucherOutputSerializer(serializers.Serializer):
    code = serializers.CharField()
    reward = serializers.CharField(source="reward.name")


class PostingOutputSerializer(serializers.Serializer):
    entry = EntryOutputSerializer()
    balance = serializers.IntegerField(help_text=_("The account's net balance right after this entry."))
    voucher = VoucherOutputSerializer(allow_null=True, required=False)


class ConflictSerializer(serializers.Serializer):
    code = serializers.CharField()
    detail = serializers.CharField()
    available = serializers.IntegerField(required=False)
