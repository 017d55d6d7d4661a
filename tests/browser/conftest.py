"""Real-browser tests: Playwright driving Debian's Chromium against pytest-django's live_server.

Never `playwright install`: the browser is the system package (`apt-get install chromium`, which
.ci/run does when it is missing). Tests that need a page use `live_server`, which gives them
transactional database access, so that the server thread sees what the test wrote.
"""

import os
from pathlib import Path

import pytest
from django.test import Client

CHROMIUM = Path("/usr/bin/chromium")

# Playwright's sync API keeps an asyncio event loop running in this thread (inside a greenlet) from
# the moment it starts until the end of the session. Django then takes every ORM call made in this
# thread for one made from async code and raises SynchronousOnlyOperation, although the tests are
# plain synchronous code and the event loop never runs Django. This variable is Django's documented
# switch for that situation; it has to stay on for the whole session because the session-scoped
# browser keeps the loop "running" for the tests that follow the browser tests too.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

# Records Content-Security-Policy violations in the page (injected through the DevTools protocol,
# so the policy does not apply to it).
_RECORD_CSP_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(e.violatedDirective + " " + (e.blockedURI || "inline"));
});
"""


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium (never `playwright install`)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A fresh page in its own context (no cookies shared between tests).

    `page.evaluate("window.__cspViolations")` lists what the page's CSP blocked."""
    context = browser.new_context()
    context.set_default_timeout(10_000)
    context.add_init_script(_RECORD_CSP_VIOLATIONS)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def security_headers(db) -> dict[str, str]:
    """The security headers Django sends with a page, to give a test-only page the same policy."""
    response = Client().get("/accounts/login/")
    names = ("Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options")
    return {name: response[name] for name in names}


@pytest.fixture
def serve_page(page, live_server, security_headers):
    """Serve HTML at a URL of the live server, with the site's security headers.

    The page then loads the real static files (htmx, annotate.js, app.css) from the live server
    under the real CSP, without the application having any test-only URL."""

    def serve(html: str, path: str = "/__test__/page") -> str:
        url = live_server.url + path
        headers = {"Content-Type": "text/html; charset=utf-8", **security_headers}
        page.route(url, lambda route: route.fulfill(status=200, headers=headers, body=html))
        return url

    return serve
