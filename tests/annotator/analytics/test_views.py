import pytest
from django.urls import reverse

from annotator.analytics.report import project_report_refresh
from annotator.models import Role
from tests.factories import MembershipFactory, UserFactory
from tests.import_records import planted_records


@pytest.fixture
def people(project):
    users = {}
    for name, role in (("boss", Role.ADMIN), ("viewer", Role.VIEWER), ("worker", Role.ANNOTATOR)):
        users[name] = MembershipFactory(project=project, user__username=name, role=role).user
    users["outsider"] = UserFactory(username="outsider")  # a member of no project
    return users


def _page(client, user, project):
    client.force_login(user)
    return client.get(reverse("annotator:analytics:page", args=[project.slug]))


def test_empty_project_without_a_report(client, project, people):
    response = _page(client, people["boss"], project)
    assert response.status_code == 200
    assert b"No report yet" in response.content
    assert b"Recompute now" in response.content


def test_empty_project_with_a_report(client, project, people):
    project_report_refresh(project_id=project.pk, n_bootstrap=20)
    response = _page(client, people["viewer"], project)
    assert response.status_code == 200
    assert b"No human labels yet." in response.content
    assert b"No LM labels yet." in response.content
    assert b"Recompute now" not in response.content  # viewers read, admins refresh


def test_project_with_only_lm_labels(client, project, people, load_records):
    load_records(project, planted_records(120, humans=0))
    project_report_refresh(project_id=project.pk, n_bootstrap=20)
    response = _page(client, people["boss"], project)
    assert response.status_code == 200
    text = response.content.decode()
    assert "judge-1" in text and "LM labels only" in text and "m3" in text
    assert "No human labels yet." in text


def test_labelled_project_page_and_figures(client, project, people, load_records):
    load_records(project, planted_records(150))
    project_report_refresh(project_id=project.pk, n_bootstrap=20)
    response = _page(client, people["boss"], project)
    text = response.content.decode()
    assert "Human-human agreement" in text and "bad" in text and "Dawid-Skene accuracy" in text
    for name in ("agreement", "leaderboard", "labels", "confidence", "time", "position"):
        url = reverse("annotator:analytics:plot", args=[project.slug, name])
        assert url in text
        image = client.get(url)
        assert image.status_code == 200 and image["Content-Type"] == "image/png"
        assert image.content.startswith(b"\x89PNG")
    assert (
        client.get(reverse("annotator:analytics:plot", args=[project.slug, "nope"])).status_code
        == 404
    )


def test_the_page_reads_the_cache_in_few_queries(
    client, project, people, load_records, django_assert_max_num_queries
):
    load_records(project, planted_records(60))
    project_report_refresh(project_id=project.pk, n_bootstrap=10)
    client.force_login(people["boss"])
    url = reverse("annotator:analytics:page", args=[project.slug])
    with django_assert_max_num_queries(8):  # session, user, project, membership, the cache row
        assert client.get(url).status_code == 200


def test_access(client, project, people):
    assert _page(client, people["worker"], project).status_code == 404  # annotators: no
    client.force_login(people["outsider"])
    assert client.get(reverse("annotator:analytics:page", args=[project.slug])).status_code == 404
    client.logout()
    response = client.get(reverse("annotator:analytics:page", args=[project.slug]))
    assert response.status_code == 302
    client.force_login(people["viewer"])
    refresh = reverse("annotator:analytics:refresh", args=[project.slug])
    assert client.post(refresh).status_code == 404


def test_project_page_links_to_analytics(client, project, people):
    client.force_login(people["boss"])
    page = client.get(reverse("annotator:project", args=[project.slug])).content.decode()
    assert reverse("annotator:analytics:page", args=[project.slug]) in page
