"""The loyalty programme in the admin site: settings, tiers, earning and bonus rules, rewards (all
editable), and the ledger's rows (read only: points change only through the services).

Tiers and earning rules have a Preview button next to Save: it shows how many members would move
up or down and how the points liability would change, then lets the admin save or go back."""

from collections import Counter

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _

from loyalty.models import (
    BalanceCheck,
    BonusRule,
    EarningRule,
    LedgerEntry,
    LotAllocation,
    LoyaltyAccount,
    LoyaltyProgram,
    PointLot,
    Reward,
    Tier,
    TierChange,
    Voucher,
)
from loyalty.services.preview import change_preview


class ReadOnlyAdmin(admin.ModelAdmin):
    """Written by the loyalty services only: people look."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(LoyaltyProgram)
class LoyaltyProgramAdmin(admin.ModelAdmin):
    list_display = ("__str__", "expiry_months", "expiry_rounding", "pending_days", "refund_policy", "qualify_by")

    def has_add_permission(self, request) -> bool:
        return not LoyaltyProgram.objects.exists()

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class PreviewAdmin(admin.ModelAdmin):
    """A change form with a Preview button (formaction = preview/), which renders the effect of the
    posted values and a form that saves them, without saving anything itself."""

    change_form_template = "admin/loyalty/change_form_preview.html"

    def get_urls(self):
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("add/preview/", self.admin_site.admin_view(self.preview_view), name=f"{prefix}_preview_add"),
            path(
                "<path:object_id>/change/preview/",
                self.admin_site.admin_view(self.preview_view),
                name=f"{prefix}_preview",
            ),
            *super().get_urls(),
        ]

    preview_argument = ""  # the keyword of change_preview() the form's unsaved instance goes to

    def preview_view(self, request, object_id=None):
        obj = self.get_object(request, object_id) if object_id else None
        if request.method != "POST" or not (
            self.has_change_permission(request, obj) if obj else self.has_add_permission(request)
        ):
            raise PermissionDenied
        form = self.get_form(request, obj)(request.POST, instance=obj)
        prefix = f"admin:{self.opts.app_label}_{self.opts.model_name}"
        save_url = reverse(f"{prefix}_change", args=[obj.pk]) if obj else reverse(f"{prefix}_add")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Preview of the change"),
            "form": form,
            "save_url": save_url,
            "posted": [(k, v) for k, values in request.POST.lists() for v in values if k not in {"csrfmiddlewaretoken", "_preview"}],
            "preview": change_preview(**{self.preview_argument: form.save(commit=False)}) if form.is_valid() else None,
        }
        return TemplateResponse(request, "admin/loyalty/preview.html", context)


@admin.register(Tier)
class TierAdmin(PreviewAdmin):
    list_display = ("name", "threshold", "multiplier")
    preview_argument = "tier"

    def get_deleted_objects(self, objs, request):
        """A tier that members are in, or that tier changes name, is protected: the page says how
        many of each instead of listing them one by one, which loaded every member's account and
        every change (millions in a large programme) to show the confirmation page."""
        tiers = list(objs)
        members = dict(
            LoyaltyAccount.objects.filter(tier__in=tiers).order_by().values_list("tier").annotate(Count("pk"))
        )
        changes = Counter()
        for column in ("from_tier", "to_tier"):
            changes.update(dict(
                TierChange.objects.filter(**{f"{column}__in": tiers}).order_by().values_list(column).annotate(Count("pk"))
            ))
        protected = [
            _("%(tier)s: %(members)d members, named by %(changes)d tier changes")
            % {"tier": tier, "members": members.get(tier.pk, 0), "changes": changes[tier.pk]}
            for tier in tiers
            if members.get(tier.pk) or changes[tier.pk]
        ]
        if protected:
            return [], {}, set(), protected
        return super().get_deleted_objects(tiers, request)


@admin.register(EarningRule)
class EarningRuleAdmin(PreviewAdmin):
    list_display = ("currency", "points_per_unit", "active")
    preview_argument = "rule"


@admin.register(BonusRule)
class BonusRuleAdmin(admin.ModelAdmin):
    list_display = ("action", "points", "active", "limit_per_day", "limit_per_month", "limit_lifetime")


@admin.register(Reward)
class RewardAdmin(admin.ModelAdmin):
    list_display = ("name", "cost", "active", "stock")
    list_filter = ("active",)
    search_fields = ("name",)


@admin.register(LoyaltyAccount)
class LoyaltyAccountAdmin(ReadOnlyAdmin):
    list_display = ("customer", "balance", "debt", "tier", "tier_held_until", "downgrade_due_at", "created_at")
    list_filter = ("tier",)
    list_select_related = ("customer", "tier")
    search_fields = ("=customer__id", "customer__email")
    show_full_result_count = False


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ("id", "account", "kind", "points", "balance_after", "source", "reason", "created_at")
    list_filter = ("kind", "source")
    list_select_related = ("account__customer",)
    raw_id_fields = ("account", "order", "staff", "reverses")
    search_fields = ("=account__customer__id", "idempotency_key")
    show_full_result_count = False


@admin.register(TierChange)
class TierChangeAdmin(ReadOnlyAdmin):
    list_display = ("account", "from_tier", "to_tier", "reason", "staff", "created_at")
    list_filter = ("reason",)
    list_select_related = ("account__customer", "from_tier", "to_tier", "staff")


@admin.register(Voucher)
class VoucherAdmin(ReadOnlyAdmin):
    list_display = ("code", "reward", "account", "created_at")
    list_select_related = ("reward", "account__customer")
    search_fields = ("=code",)


@admin.register(BalanceCheck)
class BalanceCheckAdmin(ReadOnlyAdmin):
    list_display = ("ran_at", "accounts_checked", "mismatch_count")

    @admin.display(description=_("differences"))
    def mismatch_count(self, check: BalanceCheck) -> int:
        return len(check.mismatches)


@admin.register(PointLot)
class PointLotAdmin(ReadOnlyAdmin):
    list_display = ("id", "account", "points", "remaining", "available_at", "expires_at", "warned_at")
    list_select_related = ("account__customer",)
    raw_id_fields = ("account", "entry")
    search_fields = ("=account__customer__id",)
    show_full_result_count = False


@admin.register(LotAllocation)
class LotAllocationAdmin(ReadOnlyAdmin):
    list_display = ("entry", "lot", "points")
    raw_id_fields = ("entry", "lot")
    show_full_result_count = False
