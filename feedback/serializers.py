"""Input and output shapes of the feedback API."""

from rest_framework import serializers

from feedback.models import Invitation, Question, Survey


class ShowIfSerializer(serializers.Serializer):
    question = serializers.IntegerField(min_value=0, help_text="Position (0-based) of the scored question it follows.")
    min = serializers.IntegerField(required=False, allow_null=True)
    max = serializers.IntegerField(required=False, allow_null=True)


class QuestionInputSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=Question.Type.choices)
    text = serializers.CharField(max_length=500)
    required = serializers.BooleanField(default=True)
    choices = serializers.ListField(child=serializers.CharField(max_length=200), required=False, default=list)
    show_if = ShowIfSerializer(required=False, allow_null=True)


class SurveyInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    kind = serializers.ChoiceField(choices=Survey.Kind.choices)
    intro = serializers.CharField(required=False, allow_blank=True, default="")
    invitation_valid_days = serializers.IntegerField(min_value=1, max_value=365, required=False)
    reminder_after_days = serializers.IntegerField(min_value=1, max_value=365, required=False, allow_null=True)
    questions = QuestionInputSerializer(many=True, allow_empty=False)


class QuestionOutputSerializer(serializers.ModelSerializer):
    show_if_question = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta:
        model = Question
        fields = ["id", "position", "type", "text", "required", "choices", "show_if_question", "show_if_min", "show_if_max"]


class SurveyOutputSerializer(serializers.ModelSerializer):
    questions = QuestionOutputSerializer(many=True, read_only=True)

    class Meta:
        model = Survey
        fields = ["id", "name", "kind", "status", "intro", "invitation_valid_days", "reminder_after_days", "opened_at", "closed_at", "created_at", "questions"]


class InvitationInputSerializer(serializers.Serializer):
    customer = serializers.IntegerField(min_value=1, max_value=2**63 - 1)


class InvitationOutputSerializer(serializers.ModelSerializer):
    url = serializers.CharField(read_only=True)

    class Meta:
        model = Invitation
        fields = ["id", "survey", "customer", "token", "url", "expires_at"]


class AnswerInputSerializer(serializers.Serializer):
    question = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    value = serializers.JSONField(allow_null=True)


class ResponseInputSerializer(serializers.Serializer):
    token = serializers.CharField(max_length=64)
    answers = AnswerInputSerializer(many=True)
    submit = serializers.BooleanField(default=True, help_text="false keeps the answers for later (a partial response).")


class ResponseOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    survey = serializers.IntegerField(source="survey_id")
    submitted_at = serializers.DateTimeField(allow_null=True)
    nps_score = serializers.IntegerField(allow_null=True)
    csat_score = serializers.IntegerField(allow_null=True)
    category = serializers.CharField(allow_null=True)


class ResultsQuerySerializer(serializers.Serializer):
    # "from" is a Python keyword: the fields are renamed in the view.
    date_from = serializers.DateField(required=False)
    date_to = serializers.DateField(required=False)


class ResultsOutputSerializer(serializers.Serializer):
    responses = serializers.IntegerField()
    invitations = serializers.IntegerField()
    promoters = serializers.IntegerField()
    passives = serializers.IntegerField()
    detractors = serializers.IntegerField()
    nps = serializers.FloatField(allow_null=True)
    nps_ci_low = serializers.FloatField(allow_null=True)
    nps_ci_high = serializers.FloatField(allow_null=True)
    small_sample = serializers.BooleanField()
    csat = serializers.FloatField(allow_null=True)
    response_rate = serializers.FloatField(allow_null=True)
