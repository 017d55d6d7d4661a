"""The annotator pages through HTTP: htmx and plain forms, blind labelling, access rules."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from annotator.conversations import messages_flatten
from annotator.models import HumanLabel, Lease, Role, Route
from tests.factories import ComparisonFactory, LMLabelFactory, MembershipFactory, ProjectFactory

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def setup(db):
    project = ProjectFactory(slug="p", name="Project P", labels_per_item=2, ask_helpful=True)
    for i in range(3):
        # What an annotator must never see: the LM's verdict and other people's labels.
        LMLabelFactory(
            comparison__project=project,
            comparison__external_id=f"c{i}",
            comparison__prompt=f"Prompt number {i}",
            comparison__response_a=f"**Alpha** answer {i}",
            comparison__response_b=f"Beta answer {i}\n\n<script>window.pwned=1</script>",
            comparison__route=Route.HUMAN,
            judge_name="judge",
            rationale="SECRET-LM-RATIONALE",
        )
    users = {}
    for name, role in (("ann", Role.ANNOTATOR), ("boss", Role.ADMIN), ("view", Role.VIEWER)):
        users[name] = MembershipFactory(project=project, user__username=name, role=role).user
    other = ProjectFactory(slug="q", name="Project Q")
    users["outsider"] = MembershipFactory(project=other, user__username="outsider").user
    return project, users


def _client(client, user):
    client.force_login(user)
    return client


def test_pages_need_a_login(client, setup):
    for name, args in (("home", []), ("project", ["p"]), ("annotate", ["p"])):
        response = client.get(reverse(f"annotator:{name}", args=args))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


def test_home_lists_only_my_projects(client, setup):
    _, users = setup
    page = _client(client, users["ann"]).get(reverse("annotator:home")).content.decode()
    assert "Project P" in page and "Project Q" not in page


def test_the_annotate_page_shows_the_comparison_blind_and_sanitised(client, setup):
    _, users = setup
    response = _client(client, users["ann"]).get(reverse("annotator:annotate", args=["p"]))
    page = response.content.decode()
    assert response.status_code == 200
    lease = Lease.objects.get()
    assert lease.comparison.prompt in page
    assert "<strong>Alpha</strong>" in page
    assert "<script>window.pwned" not in page
    assert "SECRET-LM-RATIONALE" not in page and "judge" not in page
    first = page.index("Response 1")
    alpha = page.index("Alpha")
    beta = page.index("Beta answer")
    # The shown order decides which response is on the left.
    assert (alpha < beta) == (lease.shown_order == "AB")
    assert first < min(alpha, beta)
    assert 'name="helpful"' in page and 'id="label-form"' in page


def test_a_plain_form_post_stores_the_label_and_redirects(client, setup):
    _, users = setup
    client = _client(client, users["ann"])
    client.get(reverse("annotator:annotate", args=["p"]))
    lease = Lease.objects.get()

    response = client.post(
        reverse("annotator:submit", args=["p", lease.pk]),
        {
            "overall": "1",
            "helpful": "2",
            "confidence": "fairly",
            "reasons": ["correct"],
            "rationale": "Clearer.",
            "time_spent_s": "12.5",
        },
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("annotator:annotate", args=["p"])
    label = HumanLabel.objects.get(annotator=users["ann"])
    first = "A" if lease.shown_order == "AB" else "B"
    assert (label.overall_choice, label.overall_strength) == (first, "clearly")
    assert (label.helpful_choice, label.helpful_strength) == (first, "slightly")
    assert (label.time_spent_s, label.reasons, label.confidence) == (12.5, ["correct"], "fairly")


def test_an_htmx_submit_swaps_in_the_next_comparison(client, setup):
    _, users = setup
    client = _client(client, users["ann"])
    client.get(reverse("annotator:annotate", args=["p"]))
    lease = Lease.objects.get()

    response = client.post(
        reverse("annotator:submit", args=["p", lease.pk]), {"overall": "3"}, **HTMX
    )

    page = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in page  # a partial
    assert "Saved." in page
    nxt = Lease.objects.filter(finished_at__isnull=True).get()
    assert nxt.comparison_id != lease.comparison_id
    assert nxt.comparison.prompt in page


def test_a_double_submit_keeps_one_label(client, setup):
    _, users = setup
    client = _client(client, users["ann"])
    client.get(reverse("annotator:annotate", args=["p"]))
    lease = Lease.objects.get()
    url = reverse("annotator:submit", args=["p", lease.pk])
    client.post(url, {"overall": "1"})
    client.post(url, {"overall": "5"})
    assert HumanLabel.objects.filter(annotator=users["ann"]).count() == 1


def test_a_missing_answer_is_shown_without_losing_the_comparison(client, setup):
    _, users = setup
    client = _client(client, users["ann"])
    client.get(reverse("annotator:annotate", args=["p"]))
    lease = Lease.objects.get()
    response = client.post(reverse("annotator:submit", args=["p", lease.pk]), {"helpful": "2"})
    assert response.status_code == 400
    assert "Please complete the highlighted fields: Overall." in response.content.decode()
    assert not HumanLabel.objects.exists()
    assert Lease.objects.get().finished_at is None


def test_an_expired_lease_says_so_and_moves_on(client, setup):
    _, users = setup
    client = _client(client, users["ann"])
    client.get(reverse("annotator:annotate", args=["p"]))
    lease = Lease.objects.get()
    now = timezone.now()
    Lease.objects.filter(pk=lease.pk).update(
        created_at=now - timedelta(minutes=20), expires_at=now - timedelta(minutes=10)
    )
    response = client.post(
        reverse("annotator:submit", args=["p", lease.pk]), {"overall": "1"}, **HTMX
    )
    assert "ran out" in response.content.decode()
    assert not HumanLabel.objects.exists()


def test_skip_with_a_reason(client, setup):
    _, users = setup
    client = _client(client, users["ann"])
    client.get(reverse("annotator:annotate", args=["p"]))
    lease = Lease.objects.get()
    response = client.post(
        reverse("annotator:skip", args=["p", lease.pk]), {"reason": "The prompt is unclear"}
    )
    assert response.status_code == 302
    lease.refresh_from_db()
    assert lease.outcome == "skipped"


def test_access_rules(client, setup):
    _, users = setup
    client = _client(client, users["ann"])
    client.get(reverse("annotator:annotate", args=["p"]))
    lease = Lease.objects.get()

    viewer = _client(client, users["view"])
    assert viewer.get(reverse("annotator:project", args=["p"])).status_code == 200
    assert viewer.get(reverse("annotator:annotate", args=["p"])).status_code == 403
    assert (
        viewer.post(reverse("annotator:submit", args=["p", lease.pk]), {"overall": "1"}).status_code
        == 403
    )

    outsider = _client(client, users["outsider"])
    for method, url in (
        ("get", reverse("annotator:project", args=["p"])),
        ("get", reverse("annotator:annotate", args=["p"])),
        ("post", reverse("annotator:submit", args=["p", lease.pk])),
        ("post", reverse("annotator:skip", args=["p", lease.pk])),
        ("get", reverse("annotator:annotators", args=["p"])),
    ):
        assert getattr(outsider, method)(url, {"overall": "1"}).status_code == 404, url
    # a lease of project P cannot be used through project Q's URLs either
    assert (
        outsider.post(
            reverse("annotator:submit", args=["q", lease.pk]), {"overall": "1"}
        ).status_code
        == 404
    )

    annotator = _client(client, users["ann"])
    assert annotator.get(reverse("annotator:annotators", args=["p"])).status_code == 404
    assert not HumanLabel.objects.exists()


def test_admins_see_annotator_stats_and_can_deactivate(client, setup):
    _, users = setup
    ann = _client(client, users["ann"])
    ann.get(reverse("annotator:annotate", args=["p"]))
    lease = Lease.objects.get()

    boss = _client(client, users["boss"])
    page = boss.get(reverse("annotator:annotators", args=["p"])).content.decode()
    assert "ann" in page and "Deactivate" in page
    response = boss.post(reverse("annotator:deactivate", args=["p", users["ann"].pk]))

    assert response.status_code == 302
    lease.refresh_from_db()
    assert lease.outcome == "released"
    assert (
        _client(client, users["ann"]).get(reverse("annotator:project", args=["p"])).status_code
        == 404
    )


def test_get_is_not_allowed_on_submit(client, setup):
    _, users = setup
    client = _client(client, users["ann"])
    client.get(reverse("annotator:annotate", args=["p"]))
    lease = Lease.objects.get()
    assert client.get(reverse("annotator:submit", args=["p", lease.pk])).status_code == 405


def test_the_annotate_page_shows_a_conversation_by_turn_and_marks_an_empty_response(client, db):
    project = ProjectFactory(slug="chat", labels_per_item=1)
    turns = [
        {"role": "system", "content": "Be *brief*."},
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "And <script>window.pwned=1</script> Italy?"},
    ]
    ComparisonFactory(
        project=project,
        prompt=messages_flatten(turns),
        prompt_messages=turns,
        response_a="",
        response_b_messages=[
            {"role": "assistant", "content": "Looking it up."},
            {"role": "tool", "content": "Rome", "name": "lookup"},
        ],
        route=Route.HUMAN,
    )
    user = MembershipFactory(project=project, user__username="ann").user

    page = _client(client, user).get(reverse("annotator:annotate", args=["chat"])).content.decode()

    prompt = page[page.index('id="prompt-title"') : page.index('class="responses"')]
    assert re.findall(r'<div class="turn-role">([^<]*)</div>', prompt) == [
        "System",
        "User",
        "Assistant",
        "User",
    ]
    assert "<em>brief</em>" in prompt and "<script>window.pwned" not in page
    panels = page[page.index('class="responses"') :]
    assert panels.count('class="empty-response"') == 1
    assert re.findall(r'<div class="turn-role">([^<]*)</div>', panels) == [
        "Assistant",
        "Tool (lookup)",
    ]


def test_an_invalid_post_to_someone_elses_lease_is_refused_before_it_is_validated(client, setup):
    project, users = setup
    _client(client, users["ann"]).get(reverse("annotator:annotate", args=["p"]))
    lease = Lease.objects.get()
    other = MembershipFactory(project=project, role=Role.ANNOTATOR).user

    response = _client(client, other).post(
        reverse("annotator:submit", args=["p", lease.pk]), {"overall": "9"}
    )

    page = response.content.decode()
    assert response.status_code == 403
    assert "not assigned to you" in page and lease.comparison.prompt not in page
    assert not HumanLabel.objects.exists()


def test_a_second_different_submit_says_nothing_changed(client, setup):
    _, users = setup
    client = _client(client, users["ann"])
    client.get(reverse("annotator:annotate", args=["p"]))
    lease = Lease.objects.get()
    url = reverse("annotator:submit", args=["p", lease.pk])
    client.post(url, {"overall": "1"}, **HTMX)

    again = client.post(url, {"overall": "5"}, **HTMX).content.decode()
    plain = client.post(url, {"overall": "5"}, follow=True).content.decode()

    for page in (again, plain):
        assert "already submitted this comparison" in page and "nothing changed" in page
        assert "Saved." not in page
    label = HumanLabel.objects.get(annotator=users["ann"])
    expected = "A" if lease.shown_order == "AB" else "B"  # 1: the first shown clearly better
    assert label.overall_choice == expected


@pytest.mark.parametrize(
    ("data", "field", "problem"),
    [
        ({"time_spent_s": "-1"}, "Time spent (seconds)", "greater than or equal to 0"),
        ({"time_spent_s": "soon"}, "Time spent (seconds)", "Enter a number."),
        ({"reasons": ["made-up"]}, "Reasons", "Select a valid choice."),
    ],
)
def test_an_invalid_hidden_or_checkbox_field_is_named_and_marked(
    client, setup, data, field, problem
):
    _, users = setup
    client = _client(client, users["ann"])
    client.get(reverse("annotator:annotate", args=["p"]))
    lease = Lease.objects.get()

    response = client.post(
        reverse("annotator:submit", args=["p", lease.pk]), {"overall": "2", **data}
    )

    page = response.content.decode()
    assert response.status_code == 400
    assert f"Please complete the highlighted fields: {field}." in page
    assert re.search(r'class="field-error" role="alert">[^<]*' + re.escape(problem), page)
    assert not HumanLabel.objects.exists()


def test_annotators_see_no_gold_count_and_no_judge_routing_or_reward_links(client, setup):
    _, users = setup

    annotator = _client(client, users["ann"]).get(reverse("annotator:project", args=["p"]))
    viewer = _client(client, users["view"]).get(reverse("annotator:project", args=["p"]))

    for marker in ("Gold (quality control)", "/judge/", "/routing/", "/reward-models/"):
        assert marker not in annotator.content.decode(), marker
        assert marker in viewer.content.decode(), marker
