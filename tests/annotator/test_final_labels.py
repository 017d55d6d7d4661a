"""One final-label rule for every reader: the TRL export, reward-model training, routing, the
analytics and the judge report agree on each comparison's final label."""

from collections import Counter
from datetime import UTC, datetime

import numpy as np
import orjson
import pytest

from annotator.analytics.arrays import CHOICE_CODE, project_arrays
from annotator.api.dataset_card import dataset_card_markdown
from annotator.dataio.export import dataset_export_lines
from annotator.final_labels import (
    final_label,
    final_label_counts,
    human_majority,
    latest_lm_labels,
)
from annotator.models import Comparison, LMLabel
from routing.problem import CHOICE_CODES
from routing.selectors import routing_inputs
from scoring.report import judge_report_rows
from scoring.training.data import pairs_from_rows
from scoring.training.runs import training_rows
from tests.factories import ComparisonFactory, LMLabelFactory


def _lm(comparison, version: str, choice: str, made: datetime, judge: str = "judge") -> LMLabel:
    return LMLabelFactory(
        comparison=comparison,
        judge_name=judge,
        judge_version=version,
        choice=choice,
        strength="unknown" if choice == "tie" else "clearly",
        p_a={"A": 0.9, "B": 0.1, "tie": 0.5}[choice],
        source="imported",
        created_at=made,
    )


@pytest.fixture
def labelled(project):
    """`lm-only`: the judge's newer verdict (B, 2024) was imported before its older one (A,
    2023), so the highest id is not the latest label. `voted`: humans say A, the judge says B."""
    project.primary_judge = "judge"
    project.save()
    lm_only = ComparisonFactory(project=project, external_id="lm-only")
    _lm(lm_only, "v2", "B", datetime(2024, 6, 1, tzinfo=UTC))
    _lm(lm_only, "v1", "A", datetime(2023, 1, 1, tzinfo=UTC))
    _lm(lm_only, "v1", "A", datetime(2025, 1, 1, tzinfo=UTC), judge="other-judge")
    voted = ComparisonFactory(project=project, external_id="voted", human_votes=["A", "A", "B"])
    _lm(voted, "v1", "B", datetime(2024, 1, 1, tzinfo=UTC))
    return project, {"lm-only": "B", "voted": "A"}


def test_the_latest_label_is_the_latest_made_not_the_latest_stored(labelled):
    _project, _ = labelled
    lm_only = Comparison.objects.get(external_id="lm-only")
    latest = latest_lm_labels(LMLabel.objects.filter(comparison=lm_only, judge_name="judge"))
    assert list(latest.values_list("choice", "judge_version")) == [("B", "v2")]
    # One row per judge and comparison.
    assert latest_lm_labels(LMLabel.objects.filter(comparison=lm_only)).count() == 2


def test_every_reader_agrees_on_the_final_label(labelled):
    project, expected = labelled
    ids = dict(Comparison.objects.values_list("external_id", "id"))

    exported = [orjson.loads(line) for line in _lines(project, "trl")]
    from_export = {
        row["external_id"]: "A" if row["chosen"].startswith("A of") else "B" for row in exported
    }
    assert from_export == expected
    assert {row["external_id"]: row["label_source"] for row in exported} == {
        "lm-only": "lm",
        "voted": "human",
    }

    external_id = {pk: ext for ext, pk in ids.items()}
    pairs = pairs_from_rows(training_rows(project), label_source="final")
    from_training = {
        external_id[pair.key]: "A" if pair.chosen.startswith("A of") else "B" for pair in pairs
    }
    assert from_training == expected

    routed = routing_inputs(project)
    lm_only = int(np.flatnonzero(routed.ids == ids["lm-only"])[0])
    assert routed.inputs.lm_choice[lm_only] == CHOICE_CODES[expected["lm-only"]]

    arrays = project_arrays(project=project)
    judge = arrays.lm.judges.index("judge")
    unit = int(np.flatnonzero(arrays.comparison_ids == ids["lm-only"])[0])
    (row,) = np.flatnonzero((arrays.lm.unit == unit) & (arrays.lm.judge == judge))
    assert arrays.lm.choice[row] == CHOICE_CODE[expected["lm-only"]]

    rows = judge_report_rows(project=project, judge_name="judge").rows
    report = {row.comparison_id: row for row in rows}
    assert report[ids["voted"]].judge_choice == "B"
    assert human_majority(report[ids["voted"]].human_votes)[0] == expected["voted"]


def test_the_dataset_card_counts_what_the_trl_export_holds(labelled):
    project, _ = labelled
    ComparisonFactory(project=project, external_id="tied", human_votes=["A", "B"])
    _lm(
        ComparisonFactory(project=project, external_id="lm-tie"),
        "v1",
        "tie",
        datetime(2024, 1, 1, tzinfo=UTC),
    )
    ComparisonFactory(project=project, external_id="unlabelled")
    sources = Counter(orjson.loads(line)["label_source"] for line in _lines(project, "trl"))
    counts = final_label_counts(project)
    assert (counts.human, counts.lm, counts.none) == (sources["human"], sources["lm"], 3)
    card = dataset_card_markdown(project=project)
    assert f"| final label from humans | {sources['human']} |" in card
    assert f"| final label from the LM judge (no human label) | {sources['lm']} |" in card


def test_the_full_export_lists_every_label_and_the_trl_export_only_the_final_one(labelled):
    project, _ = labelled
    full = {row["external_id"]: row for row in map(orjson.loads, _lines(project, "full"))}
    assert len(full["lm-only"]["lm_labels"]) == 3
    assert len(full["voted"]["human_labels"]) == 3


@pytest.mark.parametrize(
    ("votes", "lm", "expected"),
    [
        ([("A", "clearly"), ("A", "slightly"), ("B", "clearly")], ("B", "clearly", 0.2), "A"),
        ([("A", "clearly"), ("B", "clearly")], ("B", "clearly", 0.2), None),  # humans tied
        ([("tie", "unknown")], ("A", "clearly", 0.9), None),  # humans said tie
        ([], ("B", "slightly", 0.3), "B"),
        ([], ("tie", "unknown", 0.5), None),
        ([], None, None),
    ],
)
def test_final_label_rule(votes, lm, expected):
    label = final_label(votes, lm)
    assert (label.choice if label else None) == expected
    if label is not None:
        assert label.source == ("human" if votes else "lm")


def _lines(project, fmt: str) -> list[bytes]:
    return b"".join(dataset_export_lines(project=project, format=fmt)).splitlines()


@pytest.mark.parametrize(
    ("votes", "expected"),
    [
        ([], None),
        ([("A", "clearly")], ("A", "clearly", 1.0)),
        ([("A", "clearly"), ("B", "slightly")], None),
        ([("tie", "unknown"), ("tie", "unknown"), ("B", "clearly")], None),
        ([("B", "clearly"), ("B", "slightly"), ("tie", "unknown")], ("B", "slightly", 0.6667)),
        ([("B", "clearly"), ("B", "clearly"), ("B", "slightly")], ("B", "clearly", 1.0)),
        (
            [("A", "unknown"), ("A", "unknown"), ("B", "clearly"), ("tie", "unknown")],
            ("A", "unknown", 0.5),
        ),
    ],
)
def test_human_majority(votes, expected):
    assert human_majority(votes) == expected
