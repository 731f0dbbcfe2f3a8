"""The referral programme in the admin site: its settings, group steps and fraud rules (editable),
the codes (a suspension can be lifted or set by hand), and the referrals with their events, the
rewards, payouts, fingerprints and share visits (read only: they change only through the services,
so every change of a referral keeps its event)."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from core.admin import ReadOnlyAdmin
from referrals.models import (
    Fingerprint,
    FraudRule,
    GroupRewardStep,
    Payout,
    Referral,
    ReferralCode,
    ReferralEvent,
    ReferralProgram,
    Reward,
    ShareVisit,
)


class ServiceWrittenAdmin(ReadOnlyAdmin):
    """Written by the referral services only: people look (no deletes either: the log stays whole)."""

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ReferralProgram)
class ReferralProgramAdmin(admin.ModelAdmin):
    list_display = ("__str__", "active", "referrer_reward", "referee_reward", "hold_days", "budget_total", "budget_spent")
    readonly_fields = ("budget_spent",)
    fieldsets = (
        (None, {"fields": ("active", "currency", "min_order_amount", "hold_days")}),
        (_("Referrer's reward"), {"fields": ("referrer_reward", "referrer_percent", "referrer_cash_cap", "referrer_points")}),
        (_("Referee's reward"), {"fields": ("referee_reward", "referee_discount_percent", "referee_discount_days",
                                            "referee_points")}),
        (_("Group bonus"), {"fields": ("group_period", "group_base_amount")}),
        (_("Caps and budget"), {"fields": ("cap_rewards_per_month", "cap_rewards_per_year", "cap_cash_per_period",
                                           "cap_cash_period", "budget_total", "budget_spent")}),
        (_("Review"), {"fields": ("review_score", "review_deadline_hours", "suspend_after_rejections")}),
    )

    def has_add_permission(self, request) -> bool:
        return not ReferralProgram.objects.exists()

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(GroupRewardStep)
class GroupRewardStepAdmin(admin.ModelAdmin):
    list_display = ("referrals", "percent")


@admin.register(FraudRule)
class FraudRuleAdmin(admin.ModelAdmin):
    list_display = ("code", "enabled", "action", "weight", "threshold", "window_minutes")
    list_editable = ("enabled", "action", "weight", "threshold", "window_minutes")
    list_filter = ("enabled", "action")

    def has_add_permission(self, request) -> bool:
        return False  # one row per signal the code knows, shipped by a migration

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ReferralCode)
class ReferralCodeAdmin(admin.ModelAdmin):
    list_display = ("code", "customer", "created_at", "suspended_at", "suspended_reason")
    list_filter = (("suspended_at", admin.EmptyFieldListFilter),)
    list_select_related = ("customer",)
    search_fields = ("code", "customer__email", "customer__external_id")
    readonly_fields = ("code", "customer", "created_at")
    fields = ("code", "customer", "created_at", "suspended_at", "suspended_reason")

    def has_add_permission(self, request) -> bool:
        return False  # created on first use (services.codes)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ReferralEventInline(admin.TabularInline):
    model = ReferralEvent
    fields = ("created_at", "from_state", "to_state", "actor", "staff", "reason", "data")
    readonly_fields = fields
    extra = max_num = 0
    can_delete = False
    ordering = ("id",)


@admin.register(Referral)
class ReferralAdmin(ServiceWrittenAdmin):
    list_display = ("id", "referrer", "referee", "state", "verdict", "risk_score", "source", "created_at")
    list_filter = ("state", "verdict", "source", ("escalated_at", admin.EmptyFieldListFilter))
    list_select_related = ("referrer", "referee")
    search_fields = ("=id", "referrer__email", "referee__email", "code__code")
    date_hierarchy = "created_at"
    inlines = (ReferralEventInline,)


@admin.register(Reward)
class RewardAdmin(ServiceWrittenAdmin):
    list_display = ("id", "customer", "role", "kind", "state", "value", "currency", "created_at")
    list_filter = ("role", "kind", "state")
    list_select_related = ("customer",)
    search_fields = ("=id", "customer__email", "discount_code")


@admin.register(Payout)
class PayoutAdmin(ServiceWrittenAdmin):
    list_display = ("id", "customer", "amount", "currency", "state", "requested_at", "paid_at", "reference")
    list_filter = ("state",)
    list_select_related = ("customer",)
    search_fields = ("=id", "customer__email", "reference")


@admin.register(Fingerprint)
class FingerprintAdmin(ServiceWrittenAdmin):
    list_display = ("customer", "kind", "value", "first_seen_at", "last_seen_at")
    list_filter = ("kind",)
    list_select_related = ("customer",)


@admin.register(ShareVisit)
class ShareVisitAdmin(ServiceWrittenAdmin):
    list_display = ("code", "day", "visits")
    list_select_related = ("code",)
