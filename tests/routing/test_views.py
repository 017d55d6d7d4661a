from django.contrib.auth import get_user_model

from annotator.services import membership_set
from routing.services import Budget, routing_run_create
from tests.routing.conftest import comparison_record


def test_project_page_panel_shows_run_budget_and_expected_quality(
    client, routing_project, import_records
):
    user = get_user_model().objects.create_user("viewer", password="pw")
    membership_set(project=routing_project, user=user, role="viewer")
    client.force_login(user)
    response = client.get("/p/proj/routing/", headers={"HX-Request": "true"})
    assert "Not routed yet" in response.content.decode()

    import_records([comparison_record(i) for i in range(10)])
    routing_run_create(
        project=routing_project, strategy="judge_confidence", budget=Budget.parse("0.3")
    )
    page = client.get("/p/proj/")
    assert b"/p/proj/routing/" in page.content
    html = client.get("/p/proj/routing/", headers={"HX-Request": "true"}).content.decode()
    assert "judge_confidence" in html
    assert "3 of 3 comparisons to humans" in html
    assert "0 of 9 collected" in html
    assert "not estimated" in html  # no comparison has both labels yet
    assert "<html" not in html  # the htmx partial
    assert "<html" in client.get("/p/proj/routing/").content.decode()


def test_panel_is_hidden_from_non_members(client, routing_project):
    outsider = get_user_model().objects.create_user("outsider", password="pw")
    client.force_login(outsider)
    assert client.get("/p/proj/routing/").status_code == 404
