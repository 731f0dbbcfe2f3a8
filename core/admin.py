from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from core.models import Job, JobRejectedRow


class ReadOnlyAdmin(admin.ModelAdmin):
    """Jobs and their rejected rows are written by the job runner only; people look, or delete."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Job)
class JobAdmin(ReadOnlyAdmin):
    list_display = ("id", "kind", "status", "progress", "created_by", "created_at", "finished_at")
    list_filter = ("status", "kind", "created_at")
    search_fields = ("=id", "kind", "message")
    list_select_related = ("created_by",)
    date_hierarchy = "created_at"
    show_full_result_count = False
    readonly_fields = [f.name for f in Job._meta.fields]

    @admin.display(description=_("progress"))
    def progress(self, job: Job) -> str:
        return f"{job.done}/{job.total} ({job.percent}%)"


@admin.register(JobRejectedRow)
class JobRejectedRowAdmin(ReadOnlyAdmin):
    list_display = ("job", "line", "reason")
    search_fields = ("reason", "raw")
    list_select_related = ("job",)
    raw_id_fields = ("job",)
    show_full_result_count = False
    readonly_fields = ("job", "line", "reason", "raw")
