from rest_framework.pagination import CursorPagination


class IdCursorPagination(CursorPagination):
    """Newest first by primary key: stable, index-backed and without a COUNT(*)."""

    ordering = "-id"
    page_size_query_param = "page_size"
    max_page_size = 1000
