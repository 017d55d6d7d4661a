"""Logging in with a real browser, and sanitised LLM output staying inert in one."""

from django.template import engines

from annotator.rendering import markdown_render, sanitize_html
from tests.factories import UserFactory

PASSWORD = "correct horse battery staple"


def test_log_in_and_out_through_the_login_form(page, live_server):
    UserFactory(username="ann", password=PASSWORD)
    login_url = f"{live_server.url}/accounts/login/"
    page.goto(login_url)
    assert page.title() == "Log in · Hybrid preferences"
    page.get_by_label("Username").fill("ann")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: not url.startswith(login_url))  # LOGIN_REDIRECT_URL
    assert any(cookie["name"] == "sessionid" for cookie in page.context.cookies())

    # Every page built on base.html shows who is logged in, with a logout button.
    page.goto(login_url)
    assert page.locator(".site-username").inner_text() == "ann"
    assert page.evaluate("window.htmx && window.htmx.version").startswith("2.")
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(login_url)
    assert page.locator(".site-username").count() == 0
    assert page.get_by_role("link", name="Log in").is_visible()
    assert page.evaluate("window.__cspViolations") == []


def test_a_wrong_password_shows_an_error(page, live_server):
    UserFactory(username="ann", password=PASSWORD)
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("ann")
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Log in").click()
    assert "correct username and password" in page.get_by_role("alert").inner_text()
    assert page.evaluate("window.__cspViolations") == []


MALICIOUS = "\n\n".join(
    [
        "<script>window.pwned=1</script>",
        '<img src=x onerror="window.pwned=1">',
        "[x](javascript:window.pwned=1)",
        "[y](java&#x09;script:window.pwned=1)",  # a real link element, its href dropped
        '<a href="javascript:window.pwned=1">y</a>',
        '<svg onload="window.pwned=1"></svg>',
        "[z](data:text/html,<script>parent.pwned=1</script>)",
    ]
)
# The same attacks as HTML straight into the second layer, as if markdown had let them through.
MALICIOUS_HTML = (
    "<script>window.pwned=1</script>"
    '<img src=x onerror="window.pwned=1">'
    '<a href="javascript:window.pwned=1">y</a>'
    '<a href="data:text/html,<script>parent.pwned=1</script>">y</a>'
    '<p onmouseover="window.pwned=1">hover</p>'
)


def test_sanitised_markdown_runs_nothing_even_without_a_csp(page):
    # set_content: no server, so no CSP header either; the sanitiser alone must hold.
    template = engines["django"].from_string(
        '{% extends "base.html" %}{% block content %}'
        '<div class="markdown" id="response">{{ markdown|safe }}</div>'
        '<div class="markdown" id="raw">{{ raw|safe }}</div>{% endblock %}'
    )
    page.set_content(
        template.render(
            {"markdown": markdown_render(MALICIOUS), "raw": sanitize_html(MALICIOUS_HTML)}
        )
    )
    links = page.locator("#response a, #raw a")
    assert links.count() == 3
    for link in links.all():
        link.click()
    page.locator("#raw p").hover()
    page.wait_for_timeout(300)  # time for any handler to fire
    assert page.evaluate("typeof window.pwned") == "undefined"
    assert len(page.context.pages) == 1  # no link opened anything
    assert (
        page.locator("script:not([src]), img, svg, [onerror], [onload], [onmouseover]").count() == 0
    )
    assert page.locator("[href^='javascript'], [href^='data'], [href^='java']").count() == 0
    # The hostile markup in a response is shown as text, as the model wrote it.
    assert "<script>window.pwned=1</script>" in page.locator("#response").inner_text()
