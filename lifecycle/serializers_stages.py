"""API shapes of stages, transitions and the tasks inbox."""

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from customers.models import Task
from lifecycle.models_stages import Stage, StageTransition


class StageChangeInputSerializer(serializers.Serializer):
    stage = serializers.ChoiceField(choices=Stage.choices)
    reason = serializers.CharField(max_length=1000, help_text=_("Why the customer moves; required."))


class TransitionOutputSerializer(serializers.ModelSerializer):
    changed_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = StageTransition
        fields = ["id", "from_stage", "to_stage", "at", "rule", "figures", "manual", "changed_by", "reason"]
        read_only_fields = fields


class InboxTaskOutputSerializer(serializers.ModelSerializer):
    assignee = serializers.PrimaryKeyRelatedField(read_only=True)
    overdue = serializers.BooleanField(read_only=True)

    class Meta:
        model = Task
        fields = ["id", "customer", "assignee", "title", "due_at", "done_at", "overdue", "created_at"]
        read_only_fields = fields


class TaskUpdateInputSerializer(serializers.Serializer):
    done = serializers.BooleanField(help_text=_("true marks the task done; a note is required then."))
    note = serializers.CharField(max_length=2000, help_text=_("What was done; kept as a note on the customer."))
