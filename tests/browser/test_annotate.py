"""Labelling in a real browser: keyboard only, skip, hostile responses, and without JavaScript."""

import pytest

from annotator.models import Comparison, HumanLabel, Route, Skip
from tests.factories import ComparisonFactory, MembershipFactory, ProjectFactory

PASSWORD = "correct horse battery staple"
HOSTILE = "\n\n".join(
    [
        "Here is my answer.",
        "<script>window.pwned=1</script>",
        '<img src=x onerror="window.pwned=1">',
        "[click me](javascript:window.pwned=1)",
        '<a href="javascript:window.pwned=1">or me</a>',
    ]
)


@pytest.fixture
def project(transactional_db):
    project = ProjectFactory(slug="demo", name="Demo", labels_per_item=1, ask_helpful=True)
    for i in range(5):
        ComparisonFactory(
            project=project,
            external_id=f"c{i}",
            prompt=f"Question number {i}?",
            response_a=f"Answer A{i} with `code`",
            response_b=HOSTILE if i == 0 else f"Answer B{i}\n\n- a\n- list",
            route=Route.HUMAN,
        )
    MembershipFactory(project=project, user__username="ann", user__password=PASSWORD)
    return project


def _log_in_with_the_keyboard(page, live_server):
    page.goto(f"{live_server.url}/accounts/login/?next=/p/demo/annotate/")
    page.get_by_label("Username").focus()
    page.keyboard.type("ann")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/p/demo/annotate/")


def _current_prompt(page) -> str:
    return page.locator(".prompt .md").inner_text().strip()


def _wait_for_new_prompt(page, old: str) -> str:
    page.wait_for_function(
        "old => { const p = document.querySelector('.prompt .md');"
        " return !p || p.innerText.trim() !== old; }",
        arg=old,
    )
    return _current_prompt(page) if page.locator(".prompt .md").count() else ""


def test_label_three_with_the_keyboard_and_skip_one(page, live_server, project):
    _log_in_with_the_keyboard(page, live_server)
    seen = []
    for key in ("1", "3", "5"):
        prompt = _current_prompt(page)
        seen.append(prompt)
        page.keyboard.press(key)
        assert page.locator(f'input[name="overall"][value="{key}"]').is_checked()
        page.wait_for_timeout(300)  # some active time on the page
        page.keyboard.press("Enter")
        _wait_for_new_prompt(page, prompt)

    prompt = _current_prompt(page)
    page.keyboard.press("s")
    if page.locator("#skip-form").is_visible() and _current_prompt(page) == prompt:
        page.keyboard.press("s")  # the first S may only open the skip form
    _wait_for_new_prompt(page, prompt)

    labels = list(
        HumanLabel.objects.select_related("comparison")
        .order_by("id")
        .values_list(
            "comparison__prompt",
            "overall_choice",
            "overall_strength",
            "shown_order",
            "time_spent_s",
        )
    )
    assert [row[0] for row in labels] == seen
    for (_, choice, strength, shown, seconds), key in zip(labels, ("1", "3", "5"), strict=True):
        first, second = ("A", "B") if shown == "AB" else ("B", "A")
        expected = {"1": (first, "clearly"), "3": ("tie", "unknown"), "5": (second, "clearly")}
        assert (choice, strength) == expected[key]
        assert seconds is not None and seconds > 0
    skip = Skip.objects.get()
    assert skip.comparison.prompt == prompt
    assert page.evaluate("window.__cspViolations") == []


def test_a_hostile_response_runs_nothing(page, live_server, project):
    # Only the hostile comparison is left to label.
    Comparison.objects.exclude(external_id="c0").update(route=Route.LM)
    _log_in_with_the_keyboard(page, live_server)
    assert "Here is my answer." in page.locator(".responses").inner_text()
    for name in ("click me", "or me"):
        for element in page.locator(".responses").get_by_text(name).all():
            element.click()
    page.wait_for_timeout(300)
    assert page.evaluate("typeof window.pwned") == "undefined"
    assert page.locator(".responses script, .responses img").count() == 0


def test_the_form_works_without_javascript(browser, live_server, project):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/accounts/login/?next=/p/demo/annotate/")
        page.get_by_label("Username").fill("ann")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(f"{live_server.url}/p/demo/annotate/")
        prompt = _current_prompt(page)

        page.locator('input[name="overall"][value="2"]').check()
        page.get_by_role("button", name="Submit").click()
        page.wait_for_load_state()

        assert _current_prompt(page) != prompt
        label = HumanLabel.objects.get()
        assert label.comparison.prompt == prompt
        assert label.overall_strength == "slightly"
    finally:
        context.close()
