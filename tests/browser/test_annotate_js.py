"""static/annotator/annotate.js in a real browser, under the site's real CSP and htmx.

The page follows the DOM contract at the top of annotate.js; it is served at a live-server URL
through Playwright's routing (see conftest.serve_page), so htmx, annotate.js and app.css load from
the live server exactly as on the real annotate page.
"""

from datetime import datetime, timedelta
from urllib.parse import parse_qs

import pytest
from django.template import engines

WORK = """
<div class="responses">
  <section class="response-panel" id="first" tabindex="0"><h2>Response 1</h2>
    <div class="md">{% for i in first %}<p>First response, part {{ i }}.</p>{% endfor %}</div>
  </section>
  <section class="response-panel" id="second" tabindex="0"><h2>Response 2</h2>
    <div class="md">{% for i in second %}<p>Second response, part {{ i }}.</p>{% endfor %}</div>
  </section>
</div>
<label class="sync"><input type="checkbox" id="sync-scroll"> Scroll both together</label>
<form id="label-form" method="post" action="/__test__/label" data-comparison="{{ n }}"
      hx-post="/__test__/label" hx-target="#work">
  {% for name in scales %}
  <fieldset class="scale"><legend>{{ name }}</legend>
    {% for v in "12345" %}<label class="scale-option"><input type="radio" name="{{ name }}"
      value="{{ v }}"{% if name == "overall" %} required{% endif %}> <span>{{ v }}</span></label>
    {% endfor %}
  </fieldset>
  {% endfor %}
  <select name="confidence" aria-label="Confidence">
    <option value="fairly">Fairly</option><option value="absolutely">Absolutely</option>
  </select>
  <fieldset class="reasons"><legend>Reasons</legend>
    <label><input type="checkbox" name="reasons" value="correct"> Correct</label>
  </fieldset>
  <textarea name="rationale" aria-label="Rationale"></textarea>
  <input type="hidden" name="time_spent_s" value="">
  <button type="submit" class="btn btn-primary">Submit</button>
</form>
<details class="skip"><summary>Skip</summary>
  <form id="skip-form" method="post" action="/__test__/skip" hx-post="/__test__/skip"
        hx-target="#work">
    <select name="reason" aria-label="Reason" required>
      <option value="">Choose a reason</option><option value="unsure">Not sure</option>
    </select>
    <button type="submit" class="btn">Skip</button>
  </form>
</details>
"""

PAGE = (
    """{% extends "base.html" %}{% load static %}
{% block content %}<div id="work">"""
    + WORK
    + """</div>
<a href="#keys-help" data-open-help>Keys</a>
<dialog id="keys-help" class="keys-help"><p>Keys</p>
  <form method="dialog"><button class="btn">Close</button></form></dialog>
{% endblock %}
{% block scripts %}<script src="{% static 'annotator/annotate.js' %}" defer></script>{% endblock %}
"""
)

CONTEXT = {
    "scales": ["overall", "helpful"],
    "first": range(120),  # the two responses differ in length: scrolling follows proportionally
    "second": range(60),
    "csrf_token": "token-from-the-page",  # what base.html puts into hx-headers
}


def _render(source: str, n: int) -> str:
    return engines["django"].from_string(source).render({**CONTEXT, "n": n})


@pytest.fixture
def annotate_page(page, serve_page, live_server):
    """Open the annotate test page; POSTs to it are recorded and answered with the next item."""
    posts: list[dict] = []

    def answer(route):
        request = route.request
        posts.append(
            {
                "path": request.url.removeprefix(live_server.url),
                "data": {k: v[0] for k, v in parse_qs(request.post_data or "").items()},
                "headers": request.headers,
            }
        )
        route.fulfill(status=200, content_type="text/html", body=_render(WORK, len(posts) + 1))

    page.set_viewport_size({"width": 1280, "height": 800})
    page.route(f"{live_server.url}/__test__/label", answer)
    page.route(f"{live_server.url}/__test__/skip", answer)
    page.posts = posts

    def open_page():
        page.goto(serve_page(_render(PAGE, 1), "/__test__/annotate"))
        page.wait_for_function("window.annotate && window.htmx")
        return page

    return open_page


def _checked(page, name):
    return page.evaluate(
        f"(document.querySelector('#label-form input[name={name}]:checked') || {{}}).value || null"
    )


def test_digit_keys_choose_overall_but_not_while_typing(annotate_page):
    page = annotate_page()
    page.keyboard.press("4")
    assert _checked(page, "overall") == "4"
    page.keyboard.press("2")
    assert _checked(page, "overall") == "2"

    page.get_by_label("Rationale").click()
    page.keyboard.type("5 is my answer")
    assert page.get_by_label("Rationale").input_value() == "5 is my answer"
    assert _checked(page, "overall") == "2"

    # With focus on an aspect's scale, digits set that aspect.
    page.focus("input[name=helpful][value='3']")
    page.keyboard.press("5")
    assert _checked(page, "helpful") == "5"
    assert _checked(page, "overall") == "2"
    assert page.evaluate("window.__cspViolations") == []


def test_question_mark_toggles_the_help_dialog(annotate_page):
    page = annotate_page()
    help_open = "document.getElementById('keys-help').open"
    page.keyboard.press("?")
    assert page.evaluate(help_open)
    page.keyboard.press("4")  # keys do nothing behind the dialog
    assert _checked(page, "overall") is None
    page.keyboard.press("?")
    assert not page.evaluate(help_open)
    page.get_by_role("link", name="Keys").click()
    assert page.evaluate(help_open)
    page.keyboard.press("Escape")
    assert not page.evaluate(help_open)


def test_enter_submits_through_htmx_with_the_active_time(annotate_page):
    page = annotate_page()
    page.keyboard.press("Enter")  # nothing chosen yet: the form's validation stops it
    page.wait_for_timeout(200)
    assert page.posts == []

    page.keyboard.press("1")
    page.wait_for_timeout(1100)
    page.keyboard.press("Enter")
    page.wait_for_selector("#label-form[data-comparison='2']")
    [post] = page.posts
    assert post["path"] == "/__test__/label"
    assert post["data"]["overall"] == "1"
    assert post["data"]["confidence"] == "fairly"
    assert 1.0 <= float(post["data"]["time_spent_s"]) < 30
    assert post["headers"]["hx-request"] == "true"
    assert post["headers"]["x-csrftoken"] == "token-from-the-page"  # hx-headers on <body>

    # The swapped-in comparison starts a new measurement, and the keys work on it.
    assert page.evaluate("window.annotate.activeSeconds()") < 1
    page.keyboard.press("5")
    assert _checked(page, "overall") == "5"
    page.get_by_label("Rationale").click()
    page.keyboard.press("Enter")  # a new line in the rationale, not a submission
    page.wait_for_timeout(200)
    assert len(page.posts) == 1
    assert page.evaluate("window.__cspViolations") == []


def test_s_opens_the_skip_form_then_submits_it(annotate_page):
    page = annotate_page()
    page.keyboard.press("s")
    assert page.evaluate("document.querySelector('details.skip').open")
    assert page.evaluate("document.activeElement.name") == "reason"
    page.get_by_label("Reason").select_option("unsure")
    page.keyboard.press("Tab")  # out of the select, onto the skip button
    page.keyboard.press("s")
    page.wait_for_selector("#label-form[data-comparison='2']")
    [post] = page.posts
    assert post["path"] == "/__test__/skip"
    assert post["data"]["reason"] == "unsure"


def _scroll_top(page, panel):
    return page.evaluate(f"document.getElementById('{panel}').scrollTop")


def _ratio(page, panel):
    return page.evaluate(
        f"(el => el.scrollTop / (el.scrollHeight - el.clientHeight))"
        f"(document.getElementById('{panel}'))"
    )


def test_panels_scroll_together_when_asked(annotate_page):
    page = annotate_page()
    page.evaluate("document.getElementById('first').scrollTop = 500")
    page.wait_for_timeout(200)
    assert _scroll_top(page, "second") == 0  # independent by default

    page.get_by_label("Scroll both together").check()  # lines the second up with the first
    page.wait_for_function(
        "Math.abs(document.getElementById('second').scrollTop - "
        "document.getElementById('first').scrollTop * "
        "(document.getElementById('second').scrollHeight - "
        "document.getElementById('second').clientHeight) / "
        "(document.getElementById('first').scrollHeight - "
        "document.getElementById('first').clientHeight)) <= 1"
    )
    page.locator("#second").hover()
    page.mouse.wheel(0, 400)
    page.wait_for_timeout(400)
    assert _scroll_top(page, "second") > 0
    assert abs(_ratio(page, "first") - _ratio(page, "second")) < 0.01
    # No feedback loop: both settle where the user left them.
    settled = (_scroll_top(page, "first"), _scroll_top(page, "second"))
    page.wait_for_timeout(300)
    assert (_scroll_top(page, "first"), _scroll_top(page, "second")) == settled

    page.get_by_label("Scroll both together").uncheck()
    page.evaluate("document.getElementById('first').scrollTop = 0")
    page.wait_for_timeout(200)
    assert _scroll_top(page, "second") == settled[1]


def _set_hidden(page, hidden: bool):
    page.evaluate(
        "h => { Object.defineProperty(document, 'hidden', {configurable: true, get: () => h});"
        " document.dispatchEvent(new Event('visibilitychange')); }",
        hidden,
    )


def test_active_time_pauses_when_idle_or_hidden(annotate_page, page):
    # Fake time (Date, timers, performance.now), moved only by the test once the page is open.
    start = datetime(2026, 1, 1, 12, 0, 0)
    page.clock.install(time=start)
    annotate_page()
    page.clock.pause_at(start + timedelta(minutes=10))

    def seconds():
        return page.evaluate("window.annotate.activeSeconds()")

    page.keyboard.press("Shift")  # activity now
    t0 = seconds()
    page.clock.run_for(30_000)
    assert seconds() == pytest.approx(t0 + 30, abs=0.1)
    # Idle: counting stops 60 s after the last activity.
    page.clock.run_for(120_000)
    assert seconds() == pytest.approx(t0 + 60, abs=0.1)
    page.keyboard.press("Shift")  # activity resumes it
    page.clock.run_for(5_000)
    assert seconds() == pytest.approx(t0 + 65, abs=0.1)

    # A hidden tab does not count, whatever the activity before.
    _set_hidden(page, True)
    page.clock.run_for(20_000)
    assert seconds() == pytest.approx(t0 + 65, abs=0.1)
    _set_hidden(page, False)  # coming back counts as activity
    page.clock.run_for(10_000)
    assert seconds() == pytest.approx(t0 + 75, abs=0.1)

    # What was measured is what is submitted.
    page.keyboard.press("3")
    page.keyboard.press("Enter")
    page.wait_for_selector("#label-form[data-comparison='2']")
    assert float(page.posts[0]["data"]["time_spent_s"]) == pytest.approx(t0 + 75, abs=0.1)
