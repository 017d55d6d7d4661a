"""Projects and comparisons over the API: create, update, list with filters, labels by role."""

from datetime import timedelta

import pytest
from django.utils import timezone

from annotator.models import Comparison, Membership, Project
from tests.annotator.api.helpers import client_for, comparison_with_labels
from tests.factories import ComparisonFactory, HumanLabelFactory, PlatformLabelFactory

P = "/api/v1/projects/proj"


def test_site_staff_create_a_project_and_become_its_admin(team, clients):
    staff = team.users["viewer"]
    staff.is_staff = True
    staff.save()

    created = client_for(staff).post(
        "/api/v1/projects/", {"slug": "new", "name": "New", "license": "CC-BY-4.0"}, format="json"
    )
    refused = clients["admin"].post("/api/v1/projects/", {"slug": "nope"}, format="json")

    assert created.status_code == 201, created.content
    assert created.json()["role"] == "admin" and created.json()["license"] == "CC-BY-4.0"
    assert Membership.objects.get(project__slug="new", user=staff).role == "admin"
    assert refused.status_code == 403 and not Project.objects.filter(slug="nope").exists()


def test_a_duplicate_or_invalid_project_names_the_field(team):
    team.users["admin"].is_staff = True
    team.users["admin"].save()
    client = client_for(team.users["admin"])

    taken = client.post("/api/v1/projects/", {"slug": "proj"}, format="json")
    bad = client.post("/api/v1/projects/", {"slug": "a b", "gold_rate": 2}, format="json")

    assert taken.status_code == 400
    assert taken.json()["errors"][0]["field"] == "slug"
    assert {e["field"] for e in bad.json()["errors"]} == {"slug", "gold_rate"}


def test_admins_update_settings_and_new_guidelines_bump_the_version(team, clients):
    response = clients["admin"].patch(
        f"{P}/", {"guidelines": "Be careful.", "labels_per_item": 5}, format="json"
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["guidelines"], body["guidelines_version"], body["labels_per_item"]) == (
        "Be careful.",
        2,
        5,
    )
    same = clients["admin"].patch(f"{P}/", {"guidelines": "Be careful."}, format="json")
    assert same.json()["guidelines_version"] == 2
    slug = clients["admin"].patch(f"{P}/", {"slug": "renamed"}, format="json")
    assert slug.status_code == 200 and Project.objects.filter(slug="proj").exists()
    invalid = clients["admin"].patch(f"{P}/", {"labels_per_item": 0}, format="json")
    assert invalid.status_code == 400
    assert invalid.json()["errors"][0]["field"] == "labels_per_item"


def _ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [c["external_id"] for c in response.json()["results"]]


def test_comparisons_are_cursor_paginated(team, clients):
    for i in range(5):
        comparison_with_labels(team.project, f"c{i}")

    first = clients["viewer"].get(f"{P}/comparisons/?page_size=2").json()
    second = clients["viewer"].get(first["next"]).json()
    third = clients["viewer"].get(second["next"]).json()

    pages = [first, second, third]
    assert [[c["external_id"] for c in p["results"]] for p in pages] == [
        ["c0", "c1"],
        ["c2", "c3"],
        ["c4"],
    ]
    assert third["next"] is None


def test_comparison_filters(team, clients):
    labelled = comparison_with_labels(team.project, "labelled", route="human")
    ComparisonFactory(project=team.project, external_id="bare", route="lm")
    split = comparison_with_labels(team.project, "split")
    HumanLabelFactory(comparison=split, annotator_name="third", overall_choice="B")
    Comparison.objects.filter(pk=labelled.pk).update(created_at=timezone.now() - timedelta(days=3))
    viewer = clients["viewer"]

    assert _ids(viewer.get(f"{P}/comparisons/?route=human")) == ["labelled"]
    assert _ids(viewer.get(f"{P}/comparisons/?has_human_labels=false")) == ["bare"]
    assert _ids(viewer.get(f"{P}/comparisons/?has_lm_label=true")) == ["labelled", "split"]
    assert _ids(viewer.get(f"{P}/comparisons/?judge=judge-x")) == ["labelled", "split"]
    assert _ids(viewer.get(f"{P}/comparisons/?judge=nobody")) == []
    assert _ids(viewer.get(f"{P}/comparisons/?agreement=split")) == ["split"]
    since = (timezone.now() - timedelta(days=1)).isoformat()
    assert _ids(viewer.get(f"{P}/comparisons/", {"created_after": since})) == ["bare", "split"]
    assert _ids(viewer.get(f"{P}/comparisons/", {"created_before": since})) == ["labelled"]
    # Any offset Python accepts works, also those PostgreSQL refuses (+22:54).
    far = viewer.get(f"{P}/comparisons/", {"created_after": "0175-04-09T02:47:14+22:54"})
    assert _ids(far) == ["labelled", "bare", "split"]
    edge = viewer.get(f"{P}/comparisons/", {"created_before": "9999-12-31T23:59:00-23:00"})
    assert edge.status_code == 400 and edge.json()["errors"][0]["problem"] == "out of range"
    # ... named as the parameter the user sent, not the field it filters.
    assert edge.json()["errors"][0]["field"] == "created_before"
    early = viewer.get(f"{P}/comparisons/", {"created_after": "0001-01-01T00:00:00+05:00"})
    assert early.status_code == 400
    assert early.json()["errors"][0]["field"] == "created_after"
    bad = viewer.get(f"{P}/comparisons/?route=sideways")
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "route"


def test_annotators_cannot_filter_on_labels_they_may_not_see(team, clients):
    comparison_with_labels(team.project)

    assert clients["annotator"].get(f"{P}/comparisons/?route=pending").status_code == 200
    assert clients["annotator"].get(f"{P}/comparisons/?judge=judge-x").status_code == 403


def test_annotators_see_no_gold_status_or_label_count_and_cannot_filter_on_it(team, clients):
    gold = comparison_with_labels(team.project, "gold", is_gold=True, gold_choice="A")
    listed = clients["annotator"].get(f"{P}/comparisons/").json()["results"][0]
    detail = clients["annotator"].get(f"{P}/comparisons/{gold.pk}/").json()
    by_count = clients["annotator"].get(f"{P}/comparisons/", {"has_human_labels": "true"})
    as_viewer = clients["viewer"].get(f"{P}/comparisons/{gold.pk}/").json()

    for body in (listed, detail):
        assert "is_gold" not in body and "labels_done" not in body
        assert body["external_id"] == "gold"
    assert by_count.status_code == 400
    assert by_count.json()["errors"][0]["field"] == "has_human_labels"
    assert (as_viewer["is_gold"], as_viewer["labels_done"]) == (True, 1)


@pytest.mark.parametrize("name", ["has_human_labels", "has_lm_label"])
@pytest.mark.parametrize("value", ["maybe", "yes please", "2"])
def test_a_yes_no_filter_with_another_value_is_refused_naming_it(team, clients, name, value):
    comparison_with_labels(team.project)

    for url in (f"{P}/comparisons/", f"{P}/export"):
        response = clients["viewer"].get(url, {name: value})
        assert response.status_code == 400, url
        assert response.json()["errors"] == [
            {"line": None, "field": name, "problem": f"Must be true or false, not {value!r}."}
        ]


def test_a_comparisons_labels_depend_on_the_callers_role(team, clients):
    comparison = comparison_with_labels(team.project)
    PlatformLabelFactory(
        comparison=comparison, annotator=team.users["annotator"], overall_choice="tie"
    )
    url = f"{P}/comparisons/{comparison.pk}/"

    as_viewer = clients["viewer"].get(url).json()
    as_annotator = clients["annotator"].get(url).json()

    assert [h["annotator"] for h in as_viewer["human_labels"]] == ["someone-else", "annotator"]
    assert [(m["judge"], m["overall"]) for m in as_viewer["lm_labels"]] == [
        ("judge-x", "B-is-slightly-better")
    ]
    assert [h["annotator"] for h in as_annotator["human_labels"]] == ["annotator"]
    assert as_annotator["human_labels"][0]["overall"] == "Tie"
    assert as_annotator["lm_labels"] == []


def test_another_projects_comparison_is_not_found(team, clients):
    elsewhere = comparison_with_labels(team.other, "x")

    assert clients["admin"].get(f"{P}/comparisons/{elsewhere.pk}/").status_code == 404


def test_comparisons_show_their_messages_read_only(team, clients):
    turns = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    tool = [{"role": "tool", "content": "42", "tool_call_id": "c1"}]
    conv = ComparisonFactory(
        project=team.project,
        external_id="conv",
        prompt="User: Hi\n\nAssistant: Hello",
        prompt_messages=turns,
        response_a="",
        response_b_messages=tool,
    )
    ComparisonFactory(project=team.project, external_id="text")

    listed = {
        c["external_id"]: c for c in clients["viewer"].get(f"{P}/comparisons/").json()["results"]
    }
    detail = clients["viewer"].get(f"{P}/comparisons/{conv.pk}/").json()

    assert listed["conv"]["prompt_messages"] == turns == detail["prompt_messages"]
    assert (listed["conv"]["response_a"], listed["conv"]["response_a_messages"]) == ("", None)
    assert detail["response_b_messages"] == tool
    assert listed["text"]["prompt_messages"] is None


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("lease_minutes", 1_000_000_000_000, "Must be between 1 and 10080."),
        ("lease_minutes", 0, "Must be between 1 and 10080."),
        ("labels_per_item", 2**31, "Must be between 1 and 100."),
        ("qualification_items", 2**15, "Must be between 0 and 1000."),
        ("qualification_pass_percent", 101, "Must be between 0 and 100."),
        ("retrain_every", 2**31, "Must be between 0 and 10000000."),
    ],
)
def test_a_setting_out_of_its_range_is_refused_naming_the_field_and_range(
    team, clients, field, value, problem
):
    response = clients["admin"].patch(f"{P}/", {field: value}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == [{"line": None, "field": field, "problem": problem}]
    assert clients["annotator"].get(f"{P}/").json()[field] != value


def test_the_annotate_page_works_with_the_longest_lease(team, clients, client):
    ComparisonFactory(project=team.project)
    patched = clients["admin"].patch(f"{P}/", {"lease_minutes": 10080}, format="json")
    client.force_login(team.users["annotator"])

    assert patched.status_code == 200
    assert client.get("/p/proj/annotate/").status_code == 200
