"""The structural migrations keep existing data: LM labels stay in their (renamed) table, a
project's judges and retrain threshold move to scoring's ProjectScoring, and back."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("annotator", "0006_project_analytics"), ("scoring", "0004_judge_batch_size_help")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def _latest():
    executor = MigrationExecutor(connection)
    return executor.loader.graph.leaf_nodes()


@pytest.mark.django_db(transaction=True)
def test_upgrading_keeps_lm_labels_and_moves_the_scoring_settings():
    old = _migrate(BEFORE)
    Project = old.get_model("annotator", "Project")
    Comparison = old.get_model("annotator", "Comparison")
    Judge = old.get_model("scoring", "Judge")
    OldLMLabel = old.get_model("scoring", "LMLabel")
    project = Project.objects.create(slug="p", name="p", retrain_every=7, labels_since_retrain=3)
    Project.objects.create(slug="plain", name="plain")
    judge = Judge.objects.create(name="j", version="v1")
    project.judges.add(judge)
    comparison = Comparison.objects.create(
        project=project,
        external_id="c",
        prompt="p",
        response_a="a",
        response_b="b",
        content_hash="h",
        labels_done=1,
        human_load=2,
    )
    label = OldLMLabel.objects.create(
        comparison=comparison, judge_name="j", judge_version="v1", choice="A", strength="clearly"
    )

    try:
        new = _migrate(_latest())
        LMLabel = new.get_model("annotator", "LMLabel")
        ProjectScoring = new.get_model("scoring", "ProjectScoring")
        assert LMLabel._meta.db_table == "annotator_lmlabel"
        assert list(LMLabel.objects.values_list("pk", "choice")) == [(label.pk, "A")]
        settings = ProjectScoring.objects.get(project__slug="p")
        assert (settings.retrain_every, settings.labels_since_retrain) == (7, 3)
        assert list(settings.judges.values_list("name", flat=True)) == ["j"]
        assert ProjectScoring.objects.get(project__slug="plain").retrain_every == 0
        moved = new.get_model("annotator", "Comparison").objects.get(pk=comparison.pk)
        assert moved.slots_taken == 2

        back = _migrate(BEFORE)
        restored = back.get_model("annotator", "Project").objects.get(slug="p")
        assert (restored.retrain_every, restored.labels_since_retrain) == (7, 3)
        assert list(restored.judges.values_list("name", flat=True)) == ["j"]
        assert back.get_model("scoring", "LMLabel").objects.count() == 1
    finally:
        _migrate(_latest())
