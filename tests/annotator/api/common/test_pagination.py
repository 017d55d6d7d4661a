"""Cursor pagination: a crafted cursor is the API's 404 with its error body, never a 500."""

from base64 import b64encode

import pytest

pytestmark = pytest.mark.django_db


def _cursor(text: str) -> str:
    return b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "cursor",
    [
        _cursor("p=abc"),  # a position that is no id
        _cursor("p=" + "9" * 30),  # beyond 64 bits
        _cursor("p=1.5"),
        _cursor("o=x"),
        "not base64!",
    ],
)
def test_a_crafted_cursor_is_a_404_with_the_error_body(clients, cursor):
    response = clients["annotator"].get("/api/v1/projects/", {"cursor": cursor})

    assert response.status_code == 404
    assert response.json() == {"detail": "Invalid cursor", "errors": []}


def test_a_crafted_cursor_on_a_newest_first_list_is_a_404(clients):
    response = clients["admin"].get(
        "/api/v1/projects/proj/import-jobs/", {"cursor": _cursor("p=abc")}
    )

    assert response.status_code == 404
    assert response.json()["detail"] == "Invalid cursor"


def test_the_cursors_the_api_hands_out_still_page_through(clients, team):
    from tests.factories import ComparisonFactory

    ComparisonFactory.create_batch(3, project=team.project)
    first = clients["admin"].get("/api/v1/projects/proj/comparisons/", {"page_size": 2}).json()
    second = clients["admin"].get(first["next"]).json()

    assert len(first["results"]) == 2 and len(second["results"]) == 1
