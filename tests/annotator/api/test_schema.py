"""The OpenAPI schema: it validates, its docs page works under the site's CSP with no CDN, and
schemathesis finds no server error anywhere in the API (a bounded number of examples): each
operation alone in its examples, coverage and fuzzing phases, and chains of linked operations in
its stateful phase, with valid and schema-breaking (negative) data. The suite runs them all."""

import re

import orjson
import pytest
import schemathesis
from django.contrib.staticfiles import finders
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from drf_spectacular.validation import validate_schema
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from annotator.api.services import api_token_create
from tests.annotator.api.helpers import comparison_with_labels, team_create


def _schema() -> dict:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return orjson.loads(OpenApiJsonRenderer().render(schema))


def test_the_served_schema_is_valid_openapi_3(client):
    response = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    schema = orjson.loads(response.content)
    validate_schema(schema)  # raises on an invalid document
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/projects/{slug}/export.jsonl" in schema["paths"]
    assert schema["components"]["securitySchemes"]["apiToken"]["scheme"] == "bearer"


def test_the_docs_page_uses_only_our_own_files_under_the_csp(client):
    page = client.get("/api/v1/docs/")
    script = client.get("/api/v1/docs/?script=")

    assert page.status_code == 200 and script.status_code == 200
    html = page.content.decode()
    csp = page["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "<style" not in html and not re.search(r"<script>(?!</script>)", html)
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(s.startswith("/") for s in sources), sources
    for source in sources:
        if source.startswith("/static/"):
            assert finders.find(source.removeprefix("/static/")), source
    assert script["Content-Type"].startswith("application/javascript")


@schemathesis.serializer("application/x-ndjson", "application/gzip")
def _raw_body(ctx, value) -> bytes:
    """Import bodies go as they are generated: bytes, text, or a JSON line."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    return orjson.dumps(value) + b"\n"


schema = schemathesis.openapi.from_dict(_schema())
schema.app = WSGIHandler()
# Both data modes in every phase: valid requests, and requests that break the schema on purpose
# (wrong types, out-of-range numbers, unknown enum values, missing fields) that must be 4xx.
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])


@pytest.fixture
def token(db, settings):
    settings.ALLOWED_HOSTS = ["*"]
    team = team_create()
    comparison_with_labels(team.project)
    # Site staff: the stateful phase may create projects and go on from them.
    team.users["admin"].is_staff = True
    team.users["admin"].save(update_fields=["is_staff"])
    _, secret = api_token_create(user=team.users["admin"], name="schemathesis")
    # As Django's test client does: keep the test's connection (and transaction) across requests.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield secret
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
@pytest.mark.slow
def test_no_request_makes_a_server_error(case, token):
    # Most generated slugs name no project; send a fair share to the real one.
    if "slug" in (case.path_parameters or {}) and hash(str(case.query)) % 2 == 0:
        case.path_parameters["slug"] = "proj"
    response = case.call(headers={"Authorization": f"Bearer {token}"})
    case.validate_response(response, checks=[not_a_server_error])


def test_the_generation_covers_every_phase_and_both_data_modes():
    phases = schema.config.phases
    assert all(getattr(phases, name).enabled for name in ("examples", "coverage", "fuzzing"))
    assert set(schema.config.generation.modes) == set(GenerationMode)


@pytest.mark.slow
def test_no_sequence_of_linked_requests_makes_a_server_error(token):
    """The stateful phase: schemathesis chains operations through the links it infers (a created
    project's slug into its comparisons, exports, runs...), with valid and invalid data."""
    assert schema.config.phases.stateful.enabled

    class Workflow(schema.as_state_machine()):
        def get_call_kwargs(self, case):
            return {"headers": {"Authorization": f"Bearer {token}"}}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, checks=[not_a_server_error])

    assert Workflow.bundles, "schemathesis found no links between the API's operations"
    Workflow.run(
        settings=settings(
            max_examples=15,
            stateful_step_count=5,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
        )
    )
