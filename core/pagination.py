from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination

from core.ids import MAX_BIGINT


class IdCursorPagination(CursorPagination):
    """Newest first by primary key: stable, index-backed and without a COUNT(*)."""

    ordering = "-id"
    page_size_query_param = "page_size"
    max_page_size = 1000

    def decode_cursor(self, request):
        # A cursor is opaque but not signed: a hand-made one must be a 404 like any bad cursor,
        # not a 500 when its position is no id at all.
        cursor = super().decode_cursor(request)
        if cursor is not None and cursor.position is not None:
            try:
                position = int(cursor.position)
            except ValueError:
                raise NotFound(self.invalid_cursor_message) from None
            if not 0 <= position <= MAX_BIGINT:
                raise NotFound(self.invalid_cursor_message)
        return cursor
