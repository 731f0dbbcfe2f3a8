from django.contrib import admin

from lifecycle.models import ClvRun, ClvRunChunk, CustomerValue


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by the recompute job only: visible in the admin, never edited there."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class ClvRunChunkInline(admin.TabularInline):
    model = ClvRunChunk
    extra = 0
    can_delete = False
    fields = ("lo", "hi", "n_customers", "done_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ClvRun)
class ClvRunAdmin(ReadOnlyAdmin):
    list_display = ("id", "as_of", "status", "n_customers", "n_purchasers", "bgnbd_converged", "gg_converged", "started_at", "finished_at")
    list_filter = ("status", "bgnbd_converged", "gg_converged", "time_unit")
    date_hierarchy = "created_at"
    list_select_related = ("created_by",)
    inlines = [ClvRunChunkInline]


@admin.register(CustomerValue)
class CustomerValueAdmin(ReadOnlyAdmin):
    list_display = ("customer", "historic_value", "formula_clv", "predicted_clv", "p_alive", "rfm_segment", "computed_at")
    list_filter = ("rfm_segment", "r_score", "f_score", "m_score")
    list_select_related = ("customer",)
    raw_id_fields = ("customer", "run")
    search_fields = ("=customer__id", "customer__email")
    show_full_result_count = False

from lifecycle import admin_stages  # noqa: E402, F401  (registers the stage models)
