"""A conversation and an empty response as an annotator sees them in a real browser: each turn
under its role, markdown rendered, and an empty response marked as such (not a blank panel)."""

import pytest

from annotator.conversations import messages_flatten
from annotator.models import Route
from tests.factories import ComparisonFactory, MembershipFactory, ProjectFactory

PASSWORD = "correct horse battery staple"
TURNS = [
    {"role": "user", "content": "What is the capital of **France**?"},
    {"role": "assistant", "content": "Paris."},
    {"role": "user", "content": "And of Italy? <img src=x onerror=window.pwned=1>"},
]


@pytest.fixture
def project(transactional_db):
    project = ProjectFactory(slug="chat", name="Chat", labels_per_item=1)
    ComparisonFactory(
        project=project,
        external_id="conv",
        prompt=messages_flatten(TURNS),
        prompt_messages=TURNS,
        response_a="   ",
        response_b="Rome, of course.",
        route=Route.HUMAN,
    )
    MembershipFactory(project=project, user__username="ann", user__password=PASSWORD)
    return project


def _open_the_annotate_page(page, live_server):
    page.goto(f"{live_server.url}/accounts/login/?next=/p/chat/annotate/")
    page.get_by_label("Username").fill("ann")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server.url}/p/chat/annotate/")


def test_a_conversation_shows_each_turn_under_its_role(page, live_server, project):
    _open_the_annotate_page(page, live_server)

    turns = page.locator(".prompt .turn")
    assert turns.count() == 3
    roles = [turns.nth(i).locator(".turn-role") for i in range(3)]
    assert all(role.is_visible() for role in roles)
    # The role reads as a word on screen (styled in capitals), in the conversation's order.
    assert [role.inner_text().strip().lower() for role in roles] == ["user", "assistant", "user"]
    contents = [turns.nth(i).locator(".turn-content") for i in range(3)]
    assert contents[0].locator("strong").inner_text() == "France"
    assert contents[1].inner_text().strip() == "Paris."
    assert "<img src=x" in contents[2].inner_text()  # shown as text, never run
    assert page.evaluate("typeof window.pwned") == "undefined"
    assert page.evaluate("window.__cspViolations") == []


def test_an_empty_response_is_marked_and_the_other_shown(page, live_server, project):
    _open_the_annotate_page(page, live_server)

    marker = page.get_by_test_id("empty-response")
    assert marker.count() == 1 and marker.is_visible()
    assert marker.inner_text() == "(empty response)"
    # Styled as a notice (a dashed box), not plain response text.
    assert marker.evaluate("el => getComputedStyle(el).borderTopStyle") == "dashed"
    panels = page.locator(".response-panel")
    texts = [panels.nth(i).inner_text() for i in range(2)]
    assert sum("(empty response)" in text for text in texts) == 1
    assert sum("Rome, of course." in text for text in texts) == 1
