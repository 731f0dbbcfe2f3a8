"""API shapes of the suppression list."""

from rest_framework import serializers

from messaging.models import Suppression


class SuppressionInputSerializer(serializers.Serializer):
    address = serializers.EmailField(max_length=254)
    reason = serializers.ChoiceField(choices=Suppression.Reason.choices)
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class SuppressionUpdateSerializer(serializers.Serializer):
    reason = serializers.ChoiceField(choices=Suppression.Reason.choices, required=False)
    note = serializers.CharField(max_length=500, required=False, allow_blank=True)


class SuppressionOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Suppression
        fields = ["id", "address", "reason", "note", "created_at"]
