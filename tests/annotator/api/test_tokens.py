"""API tokens: hashed at rest, shown once, revocable, last use recorded; the command and the page;
throttling of token clients; the request-size limit."""

import io

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from annotator.api.services import api_token_create, api_token_hash, api_token_revoke
from annotator.models import ApiToken


def _bearer(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def test_only_the_hash_of_a_token_is_stored(team):
    token, secret = api_token_create(user=team.users["viewer"], name="laptop")

    row = ApiToken.objects.get(pk=token.pk)
    assert secret not in (row.key_hash, row.prefix, row.name)
    assert row.key_hash == api_token_hash(secret)
    assert secret.startswith(row.prefix)


def test_a_token_authenticates_and_records_its_last_use(team):
    token, secret = api_token_create(user=team.users["viewer"], name="laptop")
    assert token.last_used_at is None

    response = _bearer(secret).get("/api/v1/projects/proj/")

    assert response.status_code == 200
    assert response.json()["role"] == "viewer"
    token.refresh_from_db()
    assert token.last_used_at is not None
    assert _bearer(secret).get("/api/v1/projects/").status_code == 200  # "Token x" also works
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    assert client.get("/api/v1/projects/").status_code == 200


def test_a_revoked_or_wrong_token_gets_401(team):
    token, secret = api_token_create(user=team.users["viewer"], name="laptop")
    api_token_revoke(token=token)

    revoked = _bearer(secret).get("/api/v1/projects/")
    wrong = _bearer(secret + "x").get("/api/v1/projects/")

    assert revoked.status_code == wrong.status_code == 401
    assert revoked.json() == {"detail": "Invalid or revoked token.", "errors": []}


def test_an_inactive_users_token_gets_401(team):
    _, secret = api_token_create(user=team.users["viewer"], name="laptop")
    team.users["viewer"].is_active = False
    team.users["viewer"].save()

    assert _bearer(secret).get("/api/v1/projects/").status_code == 401


def test_the_command_prints_a_working_token_once(team):
    out = io.StringIO()
    call_command("create_api_token", "admin", "--name", "ci", stdout=out, stderr=io.StringIO())
    secret = out.getvalue().strip()

    assert _bearer(secret).get("/api/v1/projects/proj/").json()["role"] == "admin"
    assert ApiToken.objects.get(user=team.users["admin"]).name == "ci"
    with pytest.raises(CommandError, match="does not exist"):
        call_command("create_api_token", "nobody", stdout=io.StringIO())


def test_the_tokens_page_shows_a_new_secret_once_and_revokes(team, client):
    client.force_login(team.users["annotator"])

    created = client.post("/accounts/api-tokens/", {"name": "notebook"})
    secret = created.context["secret"]
    again = client.get("/accounts/api-tokens/")

    assert created.status_code == 200 and secret.encode() in created.content
    assert secret.encode() not in again.content and b"notebook" in again.content
    assert _bearer(secret).get("/api/v1/projects/proj/").json()["role"] == "annotator"

    token = ApiToken.objects.get(user=team.users["annotator"])
    client.post(f"/accounts/api-tokens/{token.pk}/revoke/")
    assert _bearer(secret).get("/api/v1/projects/").status_code == 401


def test_nobody_revokes_someone_elses_token(team, client):
    token, secret = api_token_create(user=team.users["viewer"], name="laptop")
    client.force_login(team.users["annotator"])

    response = client.post(f"/accounts/api-tokens/{token.pk}/revoke/")

    assert response.status_code == 404
    assert _bearer(secret).get("/api/v1/projects/").status_code == 200


def test_the_tokens_page_needs_a_login(client):
    assert client.get("/accounts/api-tokens/").status_code == 302


def test_token_clients_are_throttled_with_a_json_429(team, settings):
    rest = dict(settings.REST_FRAMEWORK)
    rest["DEFAULT_THROTTLE_RATES"] = {"token": "3/min"}
    settings.REST_FRAMEWORK = rest
    _, secret = api_token_create(user=team.users["viewer"], name="script")
    client = _bearer(secret)

    codes = [client.get("/api/v1/projects/").status_code for _ in range(4)]

    assert codes == [200, 200, 200, 429]
    throttled = client.get("/api/v1/projects/")
    assert throttled.json()["detail"].startswith("Request was throttled")
    assert int(throttled["Retry-After"]) > 0


def test_browser_sessions_are_not_throttled(team, settings):
    rest = dict(settings.REST_FRAMEWORK)
    rest["DEFAULT_THROTTLE_RATES"] = {"token": "1/min"}
    settings.REST_FRAMEWORK = rest
    client = APIClient()
    client.force_login(team.users["viewer"])

    assert {client.get("/api/v1/projects/").status_code for _ in range(3)} == {200}


def test_a_json_body_over_the_limit_gets_a_413_with_a_message(team, clients, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    response = clients["admin"].patch(
        "/api/v1/projects/proj/", {"description": "x" * 2000}, format="json"
    )

    assert response.status_code == 413
    assert "larger than the limit" in response.json()["detail"]
