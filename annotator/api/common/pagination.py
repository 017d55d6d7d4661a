from rest_framework.pagination import CursorPagination


class IdCursorPagination(CursorPagination):
    """Opaque cursors over the primary key: stable under inserts, O(page) at any depth."""

    ordering = "id"
    page_size_query_param = "page_size"
    max_page_size = 1000


class NewestFirstPagination(IdCursorPagination):
    ordering = "-id"
