"""The export's optional Dawid-Skene fields and confidence filter
(annotator/dataio/export/confidence.py, export_dataset), which read the analytics cache."""

import io

import orjson
import pytest
from django.core.management import CommandError, call_command

from annotator.analytics.report import project_report_refresh
from annotator.dataio.export import dataset_export_lines
from annotator.models import Comparison
from tests.annotator.dataio.export.helpers import awkward_project, exported_rows
from tests.import_records import planted_records


def _export(project, *args) -> list[dict]:
    out, err = io.StringIO(), io.StringIO()
    call_command("export_dataset", "--project", project.slug, *args, stdout=out, stderr=err)
    return [orjson.loads(line) for line in out.getvalue().splitlines()]


@pytest.fixture
def labelled(project, load_records):
    records = planted_records(120)
    records += [
        {**r, "external_id": f"lm-{r['external_id']}", "human_labels": []}
        for r in planted_records(30, seed=9)
    ]
    load_records(project, records)
    return project


def test_plain_exports_are_unchanged(labelled):
    assert "posterior" not in _export(labelled, "--format", "trl")[0]
    assert "label_confidence" not in _export(labelled, "--format", "full")[0]


def test_trl_with_confidence(labelled):
    lines = _export(labelled, "--format", "trl", "--with-confidence")
    human = [line for line in lines if line["label_source"] == "human"]
    lm = [line for line in lines if line["label_source"] == "lm"]
    assert human and lm
    for line in human:
        posterior = line["posterior"]
        assert sum(posterior.values()) == pytest.approx(1, abs=1e-3)
        side = "A" if line["chosen"].startswith("answer a") else "B"
        assert line["label_confidence"] == pytest.approx(posterior[side], abs=1e-4)
    for line in lm:  # no human labels: the judge's own probability of its verdict
        assert line["posterior"] is None and line["label_confidence"] == pytest.approx(0.9)


def test_min_confidence_filters_pairs(labelled):
    everything = _export(labelled, "--format", "trl", "--with-confidence")
    kept = _export(labelled, "--format", "trl", "--min-confidence", "0.95")
    assert 0 < len(kept) < len(everything)
    assert all(line["label_confidence"] >= 0.95 for line in kept)
    expected = {line["external_id"] for line in everything if line["label_confidence"] >= 0.95}
    assert {line["external_id"] for line in kept} == expected


def test_full_with_confidence(labelled):
    lines = _export(labelled, "--format", "full", "--min-confidence", "0.5")
    assert lines and all(line["label_confidence"] >= 0.5 for line in lines)
    assert all(line["human_labels"] for line in lines)  # LM-only comparisons have no posterior
    first = lines[0]
    assert first["label_confidence"] == pytest.approx(max(first["posterior"].values()), abs=1e-4)


def test_a_full_export_with_confidence_imports_again(labelled, other_project, load_records):
    lines = _export(labelled, "--format", "full", "--with-confidence")
    load_records(other_project, lines)
    again = _export(other_project, "--format", "full")
    assert [line["external_id"] for line in again] == [line["external_id"] for line in lines]
    assert "posterior" not in again[0]


def test_stale_posteriors_are_recomputed_first(
    labelled, load_records, django_capture_on_commit_callbacks
):
    project_report_refresh(project_id=labelled.pk, n_bootstrap=0)
    extra = [{**r, "external_id": f"new-{r['external_id']}"} for r in planted_records(10, seed=3)]
    with django_capture_on_commit_callbacks(execute=True):  # the import's commit marks it stale
        load_records(labelled, extra)
    lines = _export(labelled, "--format", "full", "--with-confidence")
    assert sum(1 for line in lines if line["posterior"] is not None) == 130


def test_min_confidence_must_be_a_probability(labelled):
    with pytest.raises(CommandError, match="between 0 and 1"):
        _export(labelled, "--format", "trl", "--min-confidence", "1.5")


def test_full_export_with_confidence_adds_the_posteriors_and_filters(project, monkeypatch):
    from annotator.dataio.export.confidence import ExportConfidence

    awkward_project(project)
    ids = list(
        Comparison.objects.filter(project=project).order_by("id").values_list("id", flat=True)
    )
    posteriors = {ids[0]: [0.2, 0.5, 0.3], ids[1]: [0.9, 0.05, 0.05]}

    class Posteriors:
        def lookup(self, wanted):
            return [posteriors.get(pk, [float("nan")] * 3) for pk in wanted]

    monkeypatch.setattr(
        ExportConfidence,
        "load",
        classmethod(lambda cls, project, wanted, minimum: cls(Posteriors(), minimum)),
    )
    written = b"".join(
        dataset_export_lines(project=project, format="full", with_confidence=True, batch_size=2)
    )
    rows = exported_rows(written)
    assert [(r["posterior"], r["label_confidence"]) for r in rows] == [
        ({"A": 0.2, "B": 0.5, "tie": 0.3}, 0.5),
        ({"A": 0.9, "B": 0.05, "tie": 0.05}, 0.9),
        (None, None),
    ]
    assert list(rows[1])[-4:] == ["human_labels", "lm_labels", "posterior", "label_confidence"]
    plain = b"".join(dataset_export_lines(project=project, format="full")).splitlines()
    assert [
        line[: len(p) - 1] + b"}" for line, p in zip(written.splitlines(), plain, strict=True)
    ] == plain
    kept = b"".join(dataset_export_lines(project=project, format="full", min_confidence=0.6))
    assert [r["external_id"] for r in exported_rows(kept)] == ["plain"]
