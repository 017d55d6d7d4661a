"""config/health.py: /healthz and /readyz. The outage tests run a real gunicorn against a
PostgreSQL cluster and a Redis server that they stop and start again (tests/config/conftest.py)."""

import json

import httpx

from tests.config.conftest import json_lines


def _readyz(served) -> tuple[int, dict]:
    response = httpx.get(served.base + "/readyz", timeout=15)
    return response.status_code, response.json()


def test_readyz_fails_while_redis_is_down_and_recovers_when_it_is_back(served):
    assert _readyz(served) == (
        200,
        {"status": "ok", "checks": {"database": "ok", "broker": "ok", "cache": "ok"}},
    )

    served.redis.stop()
    status, body = _readyz(served)
    assert status == 503
    assert body == {
        "status": "unavailable",
        "checks": {"database": "ok", "broker": "unavailable", "cache": "unavailable"},
    }

    served.redis.start()
    assert _readyz(served)[0] == 200


def test_readyz_fails_while_postgresql_is_down_and_recovers_when_it_is_back(served):
    assert _readyz(served)[0] == 200  # also opens the persistent database connection

    served.postgres.stop()
    status, body = _readyz(served)
    assert status == 503
    assert body["checks"] == {"database": "unavailable", "broker": "ok", "cache": "ok"}
    # The liveness probe does not depend on the database.
    assert httpx.get(served.base + "/healthz", timeout=5).status_code == 200

    served.postgres.start()
    assert _readyz(served) == (
        200,
        {"status": "ok", "checks": {"database": "ok", "broker": "ok", "cache": "ok"}},
    )


def test_the_log_says_why_a_check_failed_and_the_response_does_not(served):
    served.redis.stop()
    try:
        status, body = _readyz(served)
    finally:
        served.redis.start()
    assert status == 503
    assert str(served.redis.port) not in json.dumps(body)
    lines = json_lines(served.log_path.read_text())
    failures = [line for line in lines if "readiness check broker failed" in line["event"]]
    assert failures and failures[-1]["level"] == "warning"


def test_probes_answer_any_host_over_plain_http(client, settings, db):
    # A container's health check calls it by address; behind a TLS proxy the app redirects http.
    settings.ALLOWED_HOSTS = ["prefs.example.org"]
    settings.SECURE_SSL_REDIRECT = True
    for path in ("/healthz", "/readyz"):
        response = client.get(path, HTTP_HOST="10.1.2.3:8000")
        assert response.status_code == 200, path
        assert response["Cache-Control"] == "no-store"
    assert client.get("/healthz").json() == {"status": "ok"}
    # Everything else still gets the host check and the redirect.
    assert client.get("/accounts/login/", HTTP_HOST="10.1.2.3:8000").status_code == 400
    redirect = client.get("/accounts/login/", HTTP_HOST="prefs.example.org")
    assert redirect.status_code == 301
    assert redirect["Location"] == "https://prefs.example.org/accounts/login/"


def test_readyz_is_ready_on_the_configured_database_and_broker(client, db):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "broker": "ok"}


def test_liveness_does_not_touch_the_database(client, db, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert client.get("/healthz").status_code == 200
