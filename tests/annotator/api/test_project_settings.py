"""Settings that another app keeps for a project (scoring's retrain threshold) are shown, edited
and validated with the project's own over the API."""

import orjson
from django.db import connection
from django.test.utils import CaptureQueriesContext
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer

from annotator.models import Project
from scoring.models import ProjectScoring
from tests.annotator.api.helpers import client_for

P = "/api/v1/projects/proj"


def test_the_retrain_threshold_reads_as_zero_before_anything_is_stored(team, clients):
    body = clients["admin"].get(f"{P}/").json()
    assert body["retrain_every"] == 0
    assert not ProjectScoring.objects.filter(project=team.project).exists()


def test_admins_change_it_with_the_project_settings_in_one_request(team, clients):
    response = clients["admin"].patch(
        f"{P}/", {"retrain_every": 50, "labels_per_item": 4}, format="json"
    )
    assert response.status_code == 200, response.content
    assert (response.json()["retrain_every"], response.json()["labels_per_item"]) == (50, 4)
    assert ProjectScoring.objects.get(project=team.project).retrain_every == 50
    assert clients["viewer"].get(f"{P}/").json()["retrain_every"] == 50


def test_a_bad_value_names_the_field_and_changes_nothing(team, clients):
    response = clients["admin"].patch(
        f"{P}/", {"retrain_every": -1, "labels_per_item": 4}, format="json"
    )
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["retrain_every"]
    assert Project.objects.get(pk=team.project.pk).labels_per_item == 3
    assert not ProjectScoring.objects.filter(project=team.project).exists()


def test_viewers_cannot_change_it(team, clients):
    assert clients["viewer"].patch(f"{P}/", {"retrain_every": 5}, format="json").status_code == 403
    assert not ProjectScoring.objects.filter(project=team.project).exists()


def test_a_new_project_can_set_it(team):
    staff = team.users["admin"]
    staff.is_staff = True
    staff.save()
    response = client_for(staff).post(
        "/api/v1/projects/", {"slug": "new", "retrain_every": 7}, format="json"
    )
    assert response.status_code == 201, response.content
    assert ProjectScoring.objects.get(project__slug="new").retrain_every == 7


def test_the_project_list_reads_the_settings_in_the_same_query(team, clients):
    for project in (team.project, team.other):
        ProjectScoring.objects.create(project=project, retrain_every=3)
    superuser = team.users["admin"]
    superuser.is_superuser = True
    superuser.save()
    client = client_for(superuser)
    with CaptureQueriesContext(connection) as queries:
        body = client.get("/api/v1/projects/").json()
    assert [p["retrain_every"] for p in body["results"]] == [3, 3]
    alone = [
        q
        for q in queries.captured_queries
        if "scoring_projectscoring" in q["sql"] and "annotator_project" not in q["sql"]
    ]
    assert not alone


def test_the_schema_documents_it_as_an_integer_in_both_directions():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    components = orjson.loads(OpenApiJsonRenderer().render(schema))["components"]["schemas"]
    for name in ("Project", "PatchedProjectUpdateRequest"):
        field = components[name]["properties"]["retrain_every"]
        assert field["type"] == "integer" and field["minimum"] == 0, (name, field)
