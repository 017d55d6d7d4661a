"""Permissions-Policy on every response; `Cache-Control: private, no-store` on what a login or
a token opened (pages, API responses, exports), none of it on public pages."""

import pytest
from django.urls import reverse

from tests.annotator.api.helpers import client_for, comparison_with_labels, team_create

POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"


def _cache(response) -> set[str]:
    return {part.strip() for part in response.get("Cache-Control", "").split(",") if part}


@pytest.fixture
def team(db):
    team = team_create()
    comparison_with_labels(team.project)
    return team


def test_every_response_has_the_permissions_policy(client, team):
    for url in ("/accounts/login/", "/no-such-page/", "/static/no-such-file.js", "/api/v1/"):
        assert client.get(url)["Permissions-Policy"] == POLICY, url


def test_logged_in_pages_are_never_stored(client, team):
    client.force_login(team.users["admin"])

    for url in (reverse("annotator:home"), reverse("annotator:project", args=["proj"])):
        response = client.get(url)
        assert response.status_code == 200
        assert {"private", "no-store"} <= _cache(response), url


def test_api_responses_and_exports_are_never_stored(team):
    api = client_for(team.users["admin"])

    for url in (
        "/api/v1/projects/",
        "/api/v1/projects/proj/comparisons/",
        "/api/v1/projects/proj/export",
        "/api/v1/projects/nope/",
    ):
        assert {"private", "no-store"} <= _cache(api.get(url)), url


def test_a_public_page_may_be_cached_and_an_image_keeps_its_private_cache_time(client, team):
    assert "no-store" not in _cache(client.get("/no-such-page/"))
    client.force_login(team.users["admin"])

    plot = client.get(reverse("scoring:judge_report_plot", args=["proj", "judge-x"]))

    assert plot.status_code == 200 and _cache(plot) == {"private", "max-age=60"}


def test_the_policy_follows_the_setting(client, settings, db):
    settings.PERMISSIONS_POLICY = ""

    assert "Permissions-Policy" not in client.get("/accounts/login/")
