from django.contrib import admin

from customers.models import (
    AcquisitionChannel,
    ActivityEvent,
    ChannelSpend,
    Customer,
    Note,
    Order,
    OrderChange,
    OrderFeedCursor,
    Tag,
    Task,
)
from customers.selectors import customer_search_q, with_search_alias
from customers.services.orders import order_save


class ChannelSpendInline(admin.TabularInline):
    model = ChannelSpend
    extra = 0
    fields = ("month", "amount", "currency")


@admin.register(AcquisitionChannel)
class AcquisitionChannelAdmin(admin.ModelAdmin):
    list_display = ("name", "code", "status", "is_active", "created_at")
    list_filter = ("status", "is_active")
    search_fields = ("name", "code")
    prepopulated_fields = {"code": ("name",)}
    inlines = [ChannelSpendInline]


@admin.register(ChannelSpend)
class ChannelSpendAdmin(admin.ModelAdmin):
    list_display = ("channel", "month", "amount", "currency")
    list_filter = ("channel", "currency")
    search_fields = ("channel__name", "channel__code")
    list_select_related = ("channel",)
    autocomplete_fields = ("channel",)
    date_hierarchy = "month"


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ("name",)
    search_fields = ("name",)


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ("__str__", "email", "external_id", "country", "channel", "owner", "signed_up_at", "email_opt_in")
    list_filter = ("channel", "email_opt_in", "signed_up_at")
    search_fields = ("email", "external_id", "first_name", "last_name")
    list_select_related = ("channel", "owner")
    autocomplete_fields = ("channel", "owner", "tags")
    readonly_fields = ("email_opt_in_at", "created_at", "updated_at")
    # A million rows: no COUNT(*) of the whole table on every changelist page.
    show_full_result_count = False
    list_per_page = 50

    def get_search_results(self, request, queryset, search_term):
        """The staff UI's search (lower(...) LIKE '%term%'), which the trigram indexes serve,
        instead of the admin's UPPER(...) LIKE that scans the table."""
        if not search_term.strip():
            return queryset, False
        return with_search_alias(queryset).filter(customer_search_q(search_term)), False


class _CustomerChildAdmin(admin.ModelAdmin):
    """Orders, events, notes and tasks run to millions of rows: no COUNT(*), no date hierarchy
    and no "all values" filters, each of which would scan the whole table on every page."""

    raw_id_fields = ("customer",)
    list_select_related = ("customer",)
    show_full_result_count = False


@admin.register(Order)
class OrderAdmin(_CustomerChildAdmin):
    list_display = ("external_id", "customer", "ordered_at", "amount", "currency", "status")
    list_filter = ("status", "ordered_at")
    search_fields = ("=external_id", "=customer__email", "=customer__external_id")

    def save_model(self, request, obj, form, change):
        # Through the service, so an edit here reaches the order feed like every other write.
        order_save(order=obj)


@admin.register(OrderChange)
class OrderChangeAdmin(admin.ModelAdmin):
    """The order feed, to look at: it is append-only, written by the order writes themselves."""

    list_display = ("id", "order", "customer", "old_status", "new_status", "old_amount", "new_amount", "currency",
                    "changed_at")
    list_select_related = ("order", "customer")
    raw_id_fields = ("order", "customer")
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(OrderFeedCursor)
class OrderFeedCursorAdmin(admin.ModelAdmin):
    """How far each consumer of the order feed has read; moving one back replays changes to it."""

    list_display = ("consumer", "last_id", "updated_at")


@admin.register(ActivityEvent)
class ActivityEventAdmin(_CustomerChildAdmin):
    list_display = ("name", "customer", "occurred_at", "created_at")
    list_filter = ("occurred_at",)
    search_fields = ("=name", "=customer__email", "=customer__external_id")


@admin.register(Note)
class NoteAdmin(_CustomerChildAdmin):
    list_display = ("__str__", "customer", "author", "created_at")
    list_filter = ("created_at",)
    search_fields = ("body", "=customer__email")
    list_select_related = ("customer", "author")
    raw_id_fields = ("customer", "author")


@admin.register(Task)
class TaskAdmin(_CustomerChildAdmin):
    list_display = ("title", "customer", "assignee", "due_at", "done_at")
    list_filter = ("done_at", "due_at")
    search_fields = ("title", "=customer__email")
    list_select_related = ("customer", "assignee")
    raw_id_fields = ("customer", "assignee", "created_by")
