"""Surveys in the admin site: their settings and questions; invitations and responses to look up."""

from django.contrib import admin

from feedback.models import Answer, Invitation, Question, Response, ResponseReply, Survey


class QuestionInline(admin.TabularInline):
    model = Question
    extra = 0
    fields = ["position", "type", "text", "required", "choices", "show_if_question", "show_if_min", "show_if_max"]


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
