from routing.services import Budget, routing_run_create
from tests.factories import MembershipFactory, UserFactory
from tests.routing.conftest import comparison_record


def test_project_page_panel_shows_run_budget_and_expected_quality(
    client, routing_project, import_records
):
    client.force_login(MembershipFactory(project=routing_project, role="viewer").user)
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
    client.force_login(UserFactory())
    assert client.get("/p/proj/routing/").status_code == 404
