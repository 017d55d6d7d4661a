"""Django admin: every model's pages load, search and filters work, imported labels are locked."""

import pytest
from django.urls import reverse

from annotator.analytics.report import project_report_refresh
from annotator.models import (
    Comparison,
    HumanLabel,
    ImportJob,
    Lease,
    LMLabel,
    Project,
    ProjectAnalytics,
    Skip,
)
from tests.conftest import DATA


@pytest.fixture
def llmbar(project, run_import):
    run_import(DATA / "llmbar/Natural/dataset.json", format="llmbar", with_evaluators=True)
    return project


@pytest.mark.parametrize(
    ("model", "query"),
    [
        (Project, {"q": "proj"}),
        (Comparison, {"q": "Natural-0003"}),
        (Comparison, {"route__exact": "pending", "project__id__exact": "1"}),
        (HumanLabel, {"source__exact": "imported"}),
        (LMLabel, {"judge_name": "ChatGPT", "q": "Natural-0001"}),
        (Lease, {"outcome__exact": "expired"}),
        (Skip, {"q": "Natural"}),
        (ImportJob, {"status__exact": "failed"}),
        (ProjectAnalytics, {"q": "proj", "refresh_queued__exact": "0"}),
    ],
)
def test_changelists_load_with_search_and_filters(admin_client, llmbar, model, query):
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    response = admin_client.get(url, query)
    assert response.status_code == 200


def test_comparison_list_counts_labels(admin_client, llmbar):
    response = admin_client.get(
        reverse("admin:annotator_comparison_changelist"), {"q": "Natural-0007"}
    )
    rows = response.context["cl"].result_list
    assert [(c.external_id, c.n_human_labels, c.n_lm_labels) for c in rows] == [
        ("Natural-0007", 1, 2)
    ]


def test_change_pages_load(admin_client, llmbar):
    comparison = Comparison.objects.get(external_id="Natural-0000")
    for url in (
        reverse("admin:annotator_project_change", args=[llmbar.pk]),
        reverse("admin:annotator_comparison_change", args=[comparison.pk]),
        reverse("admin:annotator_humanlabel_change", args=[comparison.human_labels.get().pk]),
        reverse("admin:annotator_lmlabel_change", args=[comparison.lm_labels.first().pk]),
    ):
        assert admin_client.get(url).status_code == 200, url


def test_imported_human_labels_are_read_only(admin_client, llmbar):
    label = HumanLabel.objects.first()
    url = reverse("admin:annotator_humanlabel_change", args=[label.pk])
    admin_client.post(url, {"overall_choice": "tie", "overall_strength": "unknown"})
    label.refresh_from_db()
    assert label.overall_choice in ("A", "B")
    assert b'name="overall_choice"' not in admin_client.get(url).content


def test_lm_labels_cannot_be_added_or_edited(admin_client, llmbar):
    assert admin_client.get(reverse("admin:annotator_lmlabel_add")).status_code == 403


def test_editing_guidelines_in_admin_bumps_the_version(admin_client, project):
    url = reverse("admin:annotator_project_change", args=[project.pk])
    form = {
        "slug": project.slug,
        "name": project.name,
        "description": "",
        "guidelines": "New rules.",
        "labels_per_item": 3,
        "default_route": "pending",
        "primary_judge": "",
        "lease_minutes": 10,
        "qualification_items": 0,
        "qualification_pass_percent": 90,
        "gold_rate": 0.0,
        "memberships-TOTAL_FORMS": 0,
        "memberships-INITIAL_FORMS": 0,
    }
    assert admin_client.post(url, form).status_code == 302
    project.refresh_from_db()
    assert (project.guidelines, project.guidelines_version) == ("New rules.", 2)

    form["name"] = "Renamed"
    admin_client.post(url, form)
    project.refresh_from_db()
    assert (project.name, project.guidelines_version) == ("Renamed", 2)


def test_the_cached_analytics_report_is_listed_read_only(admin_client, llmbar):
    project_report_refresh(project_id=llmbar.pk, n_bootstrap=0)
    url = reverse("admin:annotator_projectanalytics_change", args=[llmbar.pk])
    response = admin_client.get(url)
    assert response.status_code == 200
    assert "Save" not in response.content.decode()
    listing = admin_client.get(reverse("admin:annotator_projectanalytics_changelist"))
    assert "proj" in listing.content.decode()
