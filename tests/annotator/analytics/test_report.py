import numpy as np
import pytest

from annotator.analytics.arrays import project_arrays
from annotator.analytics.report import (
    Posteriors,
    analytics_labels_changed,
    project_plot_png,
    project_posteriors,
    project_report_cached,
    project_report_refresh,
)
from annotator.models import ProjectAnalytics
from tests.import_records import planted_records


@pytest.fixture
def labelled(project, load_records):
    load_records(project, planted_records(400))
    return project


def test_arrays_read_every_label(labelled):
    data = project_arrays(project=labelled)
    assert data.n_units == 400
    assert data.human.size == 1200 and data.lm.size == 400
    assert data.models == ["m0", "m1", "m2", "m3"]
    assert sorted(data.human.annotators) == ["bad", "good-1", "good-2", "good-3", "good-4"]
    assert set(np.unique(data.human.choice["overall"])) <= {0, 1, 2}
    # "B-is-slightly-better" is on the 5-point scale; the judge's plain "A"/"B" is not.
    assert 3 in data.human.scale["overall"]
    assert (data.lm.scale == -1).all()


def test_report_of_a_labelled_project(labelled):
    row = project_report_refresh(project_id=labelled.pk, n_bootstrap=200)
    report = row.report
    assert row.report_version == row.labels_version and not row.is_stale
    assert report["n_comparisons"] == 400 and report["n_human_labels"] == 1200

    overall = report["agreement"]["overall"]
    assert overall["n_units"] == 400
    for key in ("alpha_nominal", "alpha_ordinal", "fleiss_kappa", "pairwise"):
        low, high = overall[key]["ci"]
        assert low <= overall[key]["value"] <= high

    (judge,) = report["judges"]
    assert judge["judge"] == "judge-1" and judge["n_units"] == 400
    assert judge["judge_human"]["agreement"]["value"] is not None

    annotators = {a["annotator"]: a for a in report["competence"]["annotators"]}
    assert annotators["bad"]["accuracy"] < 0.5 < annotators["good-1"]["accuracy"]
    assert any("Dawid-Skene accuracy" in flag for flag in annotators["bad"]["flags"])
    assert any("median 3s" in flag for flag in annotators["bad"]["flags"])
    assert not annotators["good-1"]["flags"]

    final = [m["model"] for m in report["leaderboard"]["final"]["models"]]
    assert final == ["m3", "m2", "m1", "m0"]
    assert report["leaderboard"]["lm"]["judge"] == "judge-1"
    assert report["leaderboard"]["human"]["n_comparisons"] == 400

    assert project_plot_png(project=labelled, name="leaderboard").startswith(b"\x89PNG")
    posteriors, stale = project_posteriors(project=labelled)
    assert not stale and posteriors.comparison_ids.size == 400
    np.testing.assert_allclose(posteriors.probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_report_of_an_empty_project(project):
    row = project_report_refresh(project_id=project.pk, n_bootstrap=50)
    report = row.report
    assert report["n_comparisons"] == 0
    assert report["agreement"] == {} and report["judges"] == []
    assert report["competence"]["annotators"] == []
    assert report["leaderboard"]["final"]["models"] == []
    assert project_plot_png(project=project, name="labels").startswith(b"\x89PNG")


def test_report_of_a_project_with_only_lm_labels(project, load_records):
    load_records(project, planted_records(200, humans=0))
    report = project_report_refresh(project_id=project.pk, n_bootstrap=50).report
    assert report["n_human_labels"] == 0 and report["n_lm_labels"] == 200
    assert report["agreement"] == {}
    assert report["judges"][0]["n_units"] == 0
    assert report["judges"][0]["judge_human"]["agreement"]["value"] is None
    assert report["leaderboard"]["lm"]["models"][0]["model"] == "m3"
    # Without human labels the final labels are the judge's.
    final, lm = report["leaderboard"]["final"], report["leaderboard"]["lm"]
    assert [(m["model"], m["theta"]) for m in final["models"]] == [
        (m["model"], m["theta"]) for m in lm["models"]
    ]
    assert report["leaderboard"]["human"]["models"] == []


def test_labels_changed_bumps_the_version_and_queues_once(project):
    assert analytics_labels_changed(project_id=project.pk) is True
    assert analytics_labels_changed(project_id=project.pk) is False  # already queued
    row = ProjectAnalytics.objects.get(pk=project.pk)
    assert row.labels_version == 2 and row.refresh_queued and row.is_stale
    project_report_refresh(project_id=project.pk, n_bootstrap=0)
    row.refresh_from_db()
    assert not row.is_stale and not row.refresh_queued
    assert analytics_labels_changed(project_id=project.pk) is True  # queues again
    assert project_report_cached(project=project).is_stale


def test_posteriors_round_trip_and_lookup():
    posteriors = Posteriors(
        comparison_ids=np.array([3, 7, 9]),
        probabilities=np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.3, 0.3, 0.4]], np.float32),
    )
    again = Posteriors.from_bytes(posteriors.to_bytes())
    found = again.lookup([7, 8, 3, 10])
    np.testing.assert_allclose(found[0], [0.2, 0.7, 0.1], rtol=1e-6)
    assert np.isnan(found[1]).all() and np.isnan(found[3]).all()
    np.testing.assert_allclose(found[2], [0.8, 0.1, 0.1], rtol=1e-6)
