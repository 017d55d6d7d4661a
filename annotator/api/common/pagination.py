from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination

# The primary keys are 64-bit: a position outside that range names no row and would overflow
# the database driver.
_ID_MAX = 2**63 - 1


class IdCursorPagination(CursorPagination):
    """Opaque cursors over the primary key: stable under inserts, O(page) at any depth."""

    ordering = "id"
    page_size_query_param = "page_size"
    max_page_size = 1000

    def decode_cursor(self, request):
        """DRF's cursor, with its position checked: DRF passes any text on to the id filter,
        where a crafted cursor (`p=abc`) was a ValueError, a 500."""
        cursor = super().decode_cursor(request)
        if cursor is None or cursor.position is None:
            return cursor
        try:
            position = int(cursor.position)
        except ValueError:
            raise NotFound(self.invalid_cursor_message) from None
        if not -_ID_MAX <= position <= _ID_MAX:
            raise NotFound(self.invalid_cursor_message)
        return cursor


class NewestFirstPagination(IdCursorPagination):
    ordering = "-id"
