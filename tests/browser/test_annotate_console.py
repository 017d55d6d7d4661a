"""The annotate page loads with a clean console: no CSP violation, no error, no failed resource."""

import pytest

from tests.browser.test_annotate import (
    _current_prompt,
    _log_in_with_the_keyboard,
    _wait_for_new_prompt,
    project,  # noqa: F401 (fixture)
)


@pytest.fixture
def watched(page):
    """The page, with every console message, page error and 4xx/5xx response it gets recorded
    (the browser's own requests, such as the icon, report failures only on the console)."""
    problems: list[str] = []
    page.on(
        "console",
        lambda m: m.type in ("error", "warning") and problems.append(f"console {m.type}: {m.text}"),
    )
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on(
        "response",
        lambda r: r.status >= 400 and problems.append(f"{r.status} {r.request.method} {r.url}"),
    )
    page.on("requestfailed", lambda r: problems.append(f"failed {r.url}: {r.failure}"))
    return page, problems


def test_loading_and_labelling_leave_the_console_clean(watched, live_server, project):  # noqa: F811
    page, problems = watched
    _log_in_with_the_keyboard(page, live_server)
    prompt = _current_prompt(page)
    page.keyboard.press("2")
    page.keyboard.press("Enter")  # submitted through htmx: the next comparison is swapped in
    _wait_for_new_prompt(page, prompt)
    page.keyboard.press("?")
    page.keyboard.press("Escape")
    page.wait_for_load_state("networkidle")

    assert problems == []
    assert page.evaluate("window.__cspViolations") == []
    # htmx was configured by the meta tag: it added no <style> (the CSP blocks inline styles,
    # its indicator styles are in app.css) and its eval features are off.
    assert page.evaluate("document.querySelectorAll('style').length") == 0
    assert page.evaluate("[htmx.config.includeIndicatorStyles, htmx.config.allowEval]") == [
        False,
        False,
    ]
    # The icon the browser asks for (it asks only once a session and remembers a failure, so the
    # listeners above may not see it): the declared one, else /favicon.ico.
    icon = page.evaluate(
        "(document.querySelector('link[rel~=icon]')"
        " || {href: new URL('/favicon.ico', location).href}).href"
    )
    assert page.request.get(icon).status == 200, icon
