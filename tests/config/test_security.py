"""Security headers on every page, no inline script in our templates, login throttling."""

import subprocess
import sys
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from axes.models import AccessAttempt
from django.db.models import F
from django.urls import reverse

from tests.conftest import ROOT
from tests.factories import UserFactory

PASSWORD = "correct horse battery staple"


def _csp(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


class _Tags(HTMLParser):
    def __init__(self, html: str):
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


@pytest.fixture
def user(db):
    return UserFactory(username="ann", password=PASSWORD)


@pytest.fixture
def axes_on(settings):
    # pyproject.toml turns the throttle off for the rest of the suite (Client.login passes no
    # request, which django-axes refuses).
    settings.AXES_ENABLED = True
    return settings


def test_login_page_sends_a_strict_csp(client, db):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    csp = _csp(response)
    assert csp["default-src"] == ["'self'"]
    assert csp["script-src"] == ["'self'"]
    assert csp["style-src"] == ["'self'"]
    assert csp["object-src"] == ["'none'"]
    assert csp["base-uri"] == ["'none'"]
    assert csp["frame-ancestors"] == ["'none'"]
    header = response["Content-Security-Policy"]
    assert "unsafe-inline" not in header
    assert "unsafe-eval" not in header


def test_other_security_headers(client, db):
    response = client.get(reverse("login"))
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


def test_admin_pages_get_the_same_policy(admin_client):
    response = admin_client.get(reverse("admin:index"))
    assert response.status_code == 200
    assert _csp(response)["script-src"] == ["'self'"]
    assert response["X-Frame-Options"] == "DENY"


def test_base_template_has_no_inline_script_style_or_handler(admin_client):
    # The login page is the base template with a form; the admin user shows the logout form too.
    html = admin_client.get(reverse("login")).content.decode()
    tags = _Tags(html).tags
    scripts = [attrs for tag, attrs in tags if tag == "script"]
    assert scripts, "htmx is loaded"
    for attrs in scripts:
        assert attrs.get("src", "").startswith("/static/"), attrs
        assert "defer" in attrs
    assert not [tag for tag, _ in tags if tag == "style"]
    for tag, attrs in tags:
        assert "style" not in attrs, tag
        assert not [name for name in attrs if name.startswith("on")], (tag, attrs)


def test_base_template_wires_css_htmx_csrf_and_the_logout_form(admin_client):
    response = admin_client.get(reverse("login"))
    html = response.content.decode()
    tags = _Tags(html).tags
    assert ("link", {"rel": "stylesheet", "href": "/static/annotator/app.css"}) in tags
    assert any(t == "script" and "htmx-2" in (a.get("src") or "") for t, a in tags)
    config = next(a for t, a in tags if t == "meta" and a.get("name") == "htmx-config")
    assert '"includeIndicatorStyles": false' in config["content"]
    assert '"allowEval": false' in config["content"]
    assert ("meta", {"name": "viewport", "content": "width=device-width, initial-scale=1"}) in tags
    body = next(a for t, a in tags if t == "body")
    token = response.context["csrf_token"]
    assert body["hx-headers"] == f'{{"X-CSRFToken": "{token}"}}'
    logout = next(a for t, a in tags if t == "form" and a.get("action") == reverse("logout"))
    assert logout["method"] == "post"
    assert "admin" in html  # the user's name in the header


def _fail(client, url, username="ann", password="wrong", ip="10.0.0.1"):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_repeated_failed_logins_lock_the_user_out_from_that_address(client, user, axes_on):
    url = reverse("login")
    for _ in range(axes_on.AXES_FAILURE_LIMIT - 1):
        response = _fail(client, url)
        assert response.status_code == 200
        assert "Please enter a correct username and password" in response.content.decode()
    response = _fail(client, url)
    assert response.status_code == 429
    # Locked: even the right password is refused now, with our page.
    response = _fail(client, url, password=PASSWORD)
    assert response.status_code == 429
    assert "Too many failed logins" in response.content.decode()
    assert "15 minutes" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert response["Content-Security-Policy"]


def test_a_lockout_is_per_username_and_address(client, user, axes_on):
    url = reverse("login")
    for _ in range(axes_on.AXES_FAILURE_LIMIT):
        _fail(client, url)
    assert _fail(client, url, password=PASSWORD).status_code == 429
    # The same user from another address, and another user from the same one, still get in.
    other = UserFactory(username="bob", password=PASSWORD)
    response = _fail(client, url, username="bob", password=PASSWORD)
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(other.pk)
    client.logout()
    response = _fail(client, url, password=PASSWORD, ip="10.0.0.2")
    assert response.status_code == 302


def test_the_lockout_ends_after_the_cooloff(client, user, axes_on):
    url = reverse("login")
    for _ in range(axes_on.AXES_FAILURE_LIMIT):
        _fail(client, url)
    assert _fail(client, url, password=PASSWORD).status_code == 429
    # As if the cool-off time had passed.
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(minutes=16))
    response = _fail(client, url, password=PASSWORD)
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)


def test_the_admin_login_is_throttled_too(client, axes_on, db):
    UserFactory(username="root", password=PASSWORD, is_staff=True, is_superuser=True)
    url = reverse("admin:login")
    for _ in range(axes_on.AXES_FAILURE_LIMIT):
        _fail(client, url, username="root")
    assert _fail(client, url, username="root", password=PASSWORD).status_code == 429


def test_a_successful_login_goes_through_with_the_throttle_on(client, user, axes_on):
    response = _fail(client, reverse("login"), password=PASSWORD)
    assert response.status_code == 302
    assert response["Location"] == "/"


def test_test_client_login_works_with_the_suite_defaults(client, user, admin_client):
    # The suite runs with the throttle off so that Client.login() (no request) keeps working.
    assert client.login(username="ann", password=PASSWORD)
    assert admin_client.get(reverse("admin:index")).status_code == 200


def test_throttle_settings_come_from_the_environment(tmp_path):
    probe = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.AXES_ENABLED, s.AXES_FAILURE_LIMIT, s.AXES_COOLOFF_TIME.total_seconds(), "
        "s.AUTHENTICATION_BACKENDS[0], s.MIDDLEWARE[-1])"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "VAR_DIR": str(tmp_path),
        "SECRET_KEY": "k",
    }

    def run(**extra):
        result = subprocess.run(
            [sys.executable, "-c", probe],
            env=env | extra,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout.split()

    assert run() == [
        "True",
        "5",
        "900.0",
        "axes.backends.AxesStandaloneBackend",
        "axes.middleware.AxesMiddleware",
    ]
    assert run(AXES_FAILURE_LIMIT="3", AXES_COOLOFF_MINUTES="2")[1:3] == ["3", "120.0"]
