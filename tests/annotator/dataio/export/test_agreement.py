"""The `min_agreement` filter (annotator/dataio/export/agreement.py): comparisons whose human
votes agree at least so much, as the exports write `agreement`, in every format."""

import io

import pytest
from django.core.management import CommandError, call_command

from annotator.dataio.export.agreement import comparisons_min_agreement
from annotator.models import Comparison
from tests.annotator.dataio.export.helpers import exported_rows
from tests.factories import ComparisonFactory, LMLabelFactory


@pytest.fixture
def votes(project):
    project.primary_judge = "main"
    project.save()
    ComparisonFactory(project=project, external_id="unanimous", human_votes=["A", "A", "A"])
    ComparisonFactory(project=project, external_id="two-thirds", human_votes=["B", "B", "A"])
    ComparisonFactory(project=project, external_id="split", human_votes=["A", "B"])
    ComparisonFactory(project=project, external_id="tie-majority", human_votes=["tie", "tie", "A"])
    ComparisonFactory(project=project, external_id="judge-only", lm_votes=[("main", "A")])
    return project


def _kept(project, minimum: float) -> list[str]:
    comparisons = comparisons_min_agreement(Comparison.objects.filter(project=project), minimum)
    return list(comparisons.order_by("id").values_list("external_id", flat=True))


def test_agreement_is_the_share_of_votes_for_the_most_common_choice(votes):
    assert _kept(votes, 1.0) == ["unanimous"]
    # 2/3 is written 0.6667: that threshold keeps it, the next one up does not.
    assert _kept(votes, 0.6667) == ["unanimous", "two-thirds", "tie-majority"]
    assert _kept(votes, 0.6668) == ["unanimous"]
    # Without human votes there is no agreement, whatever the threshold.
    assert _kept(votes, 0.0) == ["unanimous", "two-thirds", "split", "tie-majority"]


def _export(project, export_format: str, *flags) -> list[dict]:
    out = io.StringIO()
    call_command(
        "export_dataset", "--project", project.slug, "--format", export_format, *flags,
        stdout=out, stderr=io.StringIO(),
    )  # fmt: skip
    return exported_rows(out.getvalue().encode())


@pytest.mark.parametrize("export_format", ["full", "trl", "multipref"])
def test_every_format_applies_it(votes, export_format):
    key = "comparison_id" if export_format == "multipref" else "external_id"
    rows = _export(votes, export_format, "--min-agreement", "0.6")

    expected = ["unanimous", "two-thirds"]
    if export_format != "trl":  # the Tie majority has no pair, but it is a comparison
        expected.append("tie-majority")
    assert [row[key] for row in rows] == expected


def test_with_the_lm_source_it_keeps_the_judges_pairs_where_humans_agreed(votes):
    for external_id in ("two-thirds", "split"):
        LMLabelFactory(
            comparison=Comparison.objects.get(external_id=external_id), judge_name="main"
        )

    rows = _export(votes, "trl", "--source", "lm", "--min-agreement", "0.6")

    assert [(r["external_id"], r["chosen"], r["label_source"], r["agreement"]) for r in rows] == [
        ("two-thirds", "A of two-thirds", "lm", 0.6667)
    ]


@pytest.mark.parametrize("value", ["-0.1", "1.5"])
def test_out_of_range_is_refused_by_name(votes, value):
    with pytest.raises(CommandError, match=f"--min-agreement must be between 0 and 1, not {value}"):
        _export(votes, "trl", "--min-agreement", value)
