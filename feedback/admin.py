"""Surveys in the admin site: their settings and questions; invitations and responses to look up."""

from django.contrib import admin

from feedback.models import Answer, Invitation, Question, Response, ResponseReply, Survey


class QuestionInline(admin.TabularInline):
    """Once a survey has answers only the wording and "required" may change: a new type, other
    choices, another order or branching would change what the old answers mean."""

    model = Question
    extra = 0
    fields = ["position", "type", "text", "required", "choices", "show_if_question", "show_if_min", "show_if_max"]
    FROZEN = ["position", "type", "choices", "show_if_question", "show_if_min", "show_if_max"]

    def _answered(self, survey) -> bool:
        return survey is not None and survey.pk is not None and Answer.objects.filter(question__survey=survey).exists()

    def get_readonly_fields(self, request, obj=None):
        return self.FROZEN if self._answered(obj) else []

    def has_add_permission(self, request, obj=None):
        return not self._answered(obj) and super().has_add_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return not self._answered(obj) and super().has_delete_permission(request, obj)


@admin.register(Survey)
class SurveyAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "status", "opened_at", "closed_at"]
    list_filter = ["kind", "status"]
    search_fields = ["name"]
    inlines = [QuestionInline]
    readonly_fields = ["opened_at", "closed_at", "created_by"]


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["survey", "customer", "trigger", "created_at", "expires_at", "reminded_at", "answered_at"]
    list_filter = ["trigger", "survey"]
    raw_id_fields = ["customer"]
    readonly_fields = ["token"]
    list_select_related = ["survey", "customer"]


class AnswerInline(admin.TabularInline):
    model = Answer
    extra = 0
    readonly_fields = ["question", "score", "choices", "text"]
    can_delete = False


class ReplyInline(admin.TabularInline):
    model = ResponseReply
    extra = 0
    readonly_fields = ["author", "created_at"]


@admin.register(Response)
class ResponseAdmin(admin.ModelAdmin):
    list_display = ["survey", "customer", "submitted_at", "nps_score", "csat_score"]
    list_filter = ["survey"]
    raw_id_fields = ["customer", "invitation"]
    readonly_fields = ["survey", "submitted_at", "nps_score", "csat_score"]
    inlines = [AnswerInline, ReplyInline]
    list_select_related = ["survey", "customer"]
