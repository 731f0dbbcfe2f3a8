"""Row locks in primary-key order, so two writers of overlapping accounts wait instead of
deadlocking. A local stand-in until core's shared `lock_rows` (branch h-core) is on main."""

from django.db.models import QuerySet


def lock_rows(queryset: QuerySet) -> list:
    """Lock the rows of `queryset` (SELECT ... FOR UPDATE, in pk order); their ids."""
    return list(queryset.select_for_update().order_by("pk").values_list("pk", flat=True))
