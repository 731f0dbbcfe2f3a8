"""Admin of lifecycle stages: the stage rules (one row, validated when saved), and the stages,
transitions and evaluation runs, which only the evaluation and the manual-move service write."""

from django.contrib import admin

from lifecycle.models_health import CustomerHealth, HealthHistory, HealthRules
from lifecycle.models_retention import RetentionAction, RetentionIntervention, RetentionOffer
from lifecycle.models_stages import CustomerStage, LifecycleRun, StageRules, StageTransition


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(StageRules)
class StageRulesAdmin(admin.ModelAdmin):
    """One row of parameters; saving runs StageRules.clean(), which refuses rules that cannot fire."""

    fieldsets = [
        (None, {"fields": ("activation_events", "activation_count", "activation_days")}),
        (None, {"fields": ("repeat_orders", "repeat_days")}),
        (None, {"fields": ("loyal_orders", "loyal_segments", "loyal_feedback", "loyal_advocates")}),
        (None, {"fields": ("at_risk_days", "churn_days")}),
    ]

    def has_add_permission(self, request) -> bool:
        return not StageRules.objects.exists()

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(CustomerStage)
class CustomerStageAdmin(_ReadOnly):
    list_display = ("customer", "stage", "changed_at", "manual")
    list_filter = ("stage", "manual")
    raw_id_fields = ("customer", "run")
    search_fields = ("=customer__id", "customer__email")
    show_full_result_count = False


@admin.register(StageTransition)
class StageTransitionAdmin(_ReadOnly):
    list_display = ("customer", "from_stage", "to_stage", "rule", "at", "changed_by")
    list_filter = ("rule", "to_stage", "manual")
    raw_id_fields = ("customer", "run", "changed_by")
    search_fields = ("=customer__id",)
    show_full_result_count = False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # append-only


@admin.register(LifecycleRun)
class LifecycleRunAdmin(_ReadOnly):
    list_display = ("id", "as_of", "status", "n_customers", "n_transitions", "started_at", "finished_at")
    list_filter = ("status",)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # stages, transitions and history name their run by a plain id (lifecycle.models_stages)


@admin.register(HealthRules)
class HealthRulesAdmin(admin.ModelAdmin):
    """One row: weights (must add up to 100), colour bands and churn-risk thresholds."""

    fieldsets = [
        (None, {"fields": ("window_days", "weight_activity", "weight_breadth", "weight_service", "weight_feedback")}),
        (None, {"fields": ("activity_target", "breadth_events", "service_events", "service_limit")}),
        (None, {"fields": ("red_below", "yellow_below")}),
        (None, {"fields": ("decline_percent", "decline_period_days", "no_core_days", "idle_days")}),
    ]

    def has_add_permission(self, request) -> bool:
        return not HealthRules.objects.exists()

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(CustomerHealth)
class CustomerHealthAdmin(_ReadOnly):
    list_display = ("customer", "score", "activity_points", "breadth_points", "service_points", "feedback_points", "churn_risk", "changed_at")
    list_filter = ("churn_risk",)
    raw_id_fields = ("customer",)
    search_fields = ("=customer__id",)
    show_full_result_count = False


@admin.register(HealthHistory)
class HealthHistoryAdmin(_ReadOnly):
    list_display = ("customer", "at", "score", "churn_risk")
    raw_id_fields = ("customer", "run")
    search_fields = ("=customer__id",)
    show_full_result_count = False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(RetentionIntervention)
class RetentionInterventionAdmin(admin.ModelAdmin):
    list_display = ("level", "kind", "enabled", "template", "task_title", "offer", "offer_days", "offer_points", "window_days")
    list_editable = ("enabled",)


@admin.register(RetentionAction)
class RetentionActionAdmin(_ReadOnly):
    list_display = ("customer", "level", "kind", "day", "message_key")
    list_filter = ("level", "kind")
    raw_id_fields = ("customer",)
    search_fields = ("=customer__id",)
    show_full_result_count = False


@admin.register(RetentionOffer)
class RetentionOfferAdmin(_ReadOnly):
    list_display = ("customer", "level", "day", "kind", "code", "points", "expires_on")
    list_filter = ("level", "kind")
    raw_id_fields = ("customer", "action")
    search_fields = ("=code", "=customer__id")
    show_full_result_count = False
