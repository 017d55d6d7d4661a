"""The annotate page stays usable with pathological texts: a 200,000-character word (issue 18)."""

import time

import pytest

from annotator.models import Route
from tests.browser.test_annotate import PASSWORD
from tests.factories import ComparisonFactory, MembershipFactory, ProjectFactory

# One word, no spaces. Arabic: Chromium's breaking of a huge word is quadratic in complex scripts
# (this took over 20 s of layout before the renderer put break opportunities into long words; a
# Latin word was never slow). The second response goes through markdown (under the size limit).
ARABIC_WORD = "ب" * 200_000
DEVANAGARI_WORD = "क्ष" * 30_000


@pytest.fixture
def project(transactional_db):
    project = ProjectFactory(slug="demo", name="Demo", labels_per_item=1)
    ComparisonFactory(
        project=project,
        prompt="Which is better?",
        response_a=ARABIC_WORD,
        response_b=DEVANAGARI_WORD,
        route=Route.HUMAN,
    )
    MembershipFactory(project=project, user__username="ann", user__password=PASSWORD)
    return project


def test_a_200000_character_word_leaves_the_page_interactive_within_2_seconds(
    page, live_server, project
):
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("ann")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server.url}/")

    started = time.monotonic()
    page.goto(f"{live_server.url}/p/demo/annotate/")
    # A click is answered only once the page has been laid out: the main thread is then free.
    page.locator("label.scale-option").nth(1).click()
    page.locator('input[name="overall"][value="2"]:checked').wait_for(state="attached")
    elapsed = time.monotonic() - started

    assert elapsed < 2, f"the annotate page took {elapsed:.1f} s to answer a click"
    # The word wraps inside its panel: nothing scrolls sideways, the text is all there.
    for panel in page.locator(".response-panel").all():
        assert panel.evaluate("p => p.scrollWidth <= p.clientWidth")
    texts = [text.strip() for text in page.locator(".response-panel .md").all_inner_texts()]
    assert DEVANAGARI_WORD in texts  # <wbr> adds no character to the text
    assert any(text.endswith(ARABIC_WORD) and "plain text" in text for text in texts)
