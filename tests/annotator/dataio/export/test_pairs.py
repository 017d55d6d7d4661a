"""Preference pairs (annotator/dataio/export/pairs.py): which label decides under each source,
the agreement of the human votes, the conversational switch, and the one-query read on
PostgreSQL."""

import pytest
from django.db import connection

from annotator.dataio.export import pairs
from annotator.dataio.export.pairs import conversational_export, pair_batches
from annotator.models import Comparison
from tests.factories import ComparisonFactory, LMLabelFactory


@pytest.fixture
def mixed(project):
    """Comparisons where humans and the primary judge agree, disagree, or only one spoke."""
    project.primary_judge = "main"
    project.save()
    ComparisonFactory(
        project=project,
        external_id="humans-b-judge-a",
        human_votes=[("B", "clearly"), ("B", "slightly"), ("A", "clearly")],
        lm_votes=[("main", "A")],
    )
    ComparisonFactory(
        project=project,
        external_id="split-vote-judge-b",
        human_votes=[("A", "clearly"), ("B", "clearly")],
        lm_votes=[("main", "B")],
    )
    ComparisonFactory(
        project=project,
        external_id="tie-majority",
        human_votes=["tie", "tie", ("A", "clearly")],
        lm_votes=[("main", "tie")],
    )
    ComparisonFactory(project=project, external_id="judge-only", lm_votes=[("main", "B")])
    ComparisonFactory(project=project, external_id="unlabelled")
    return project


def _decided(project, source: str, batch_size: int = 2) -> list[tuple]:
    comparisons = Comparison.objects.filter(project=project)
    return [
        (p.external_id, p.label.choice, p.label.source, p.agreement, p.n_human)
        for batch in pair_batches(project, batch_size, comparisons, source=source)
        for p in batch
    ]


def test_the_final_source_takes_the_human_majority_else_the_judge(mixed):
    assert _decided(mixed, "final") == [
        ("humans-b-judge-a", "B", "human", 0.6667, 3),
        ("judge-only", "B", "lm", None, 0),
    ]


def test_the_human_source_takes_only_human_majorities(mixed):
    assert _decided(mixed, "human") == [("humans-b-judge-a", "B", "human", 0.6667, 3)]


def test_the_lm_source_takes_the_judge_even_where_humans_voted(mixed):
    # The agreement is still the humans': the split vote agrees 0.5, the Tie majority 0.6667.
    assert _decided(mixed, "lm") == [
        ("humans-b-judge-a", "A", "lm", 0.6667, 3),
        ("split-vote-judge-b", "B", "lm", 0.5, 2),
        ("judge-only", "B", "lm", None, 0),
    ]


def test_every_batch_is_yielded_even_without_pairs(mixed):
    comparisons = Comparison.objects.filter(project=mixed)
    batches = list(pair_batches(mixed, 1, comparisons, source="human"))
    assert [len(batch) for batch in batches] == [1, 0, 0, 0, 0]


def test_an_unknown_source_is_refused(mixed):
    with pytest.raises(ValueError, match="unknown label source 'crowd'"):
        next(pair_batches(mixed, 2, Comparison.objects.all(), source="crowd"))


def test_auto_is_conversational_when_an_exported_comparison_has_messages(project):
    ComparisonFactory(project=project, external_id="plain")
    chat = ComparisonFactory(
        project=project,
        external_id="chat",
        prompt_messages=[{"role": "user", "content": "prompt chat"}],
    )
    everything = Comparison.objects.filter(project=project)
    plain_only = everything.exclude(pk=chat.pk)

    assert conversational_export(everything, "auto") is True
    assert conversational_export(plain_only, "auto") is False
    assert conversational_export(plain_only, "always") is True
    assert conversational_export(everything, "never") is False
    with pytest.raises(ValueError, match="unknown conversational mode 'yes'"):
        conversational_export(everything, "yes")


def test_one_query_per_batch_on_postgresql_reads_the_same_pairs(project, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("the one-query read is PostgreSQL's")
    project.primary_judge = "main"
    project.save()
    votes = [
        [("A", "clearly"), ("A", "slightly"), ("B", "clearly")],
        [("A", "clearly"), ("B", "clearly")],
        [("tie", "unknown"), ("tie", "unknown"), ("A", "clearly")],
        [("B", "unknown"), ("B", "slightly"), ("B", "slightly"), ("A", "clearly")],
        [("B", "clearly")],
        [],
    ]
    for i in range(30):  # the same vote patterns again and again, across batches
        ComparisonFactory(
            project=project,
            external_id=f"c{i}",
            human_votes=votes[i % 6],
            lm_votes=[("main", "AB"[i % 2])],
            metadata={"i": i},
            prompt_messages=[{"role": "user", "content": f"prompt c{i}"}] if i % 3 else None,
        )
    newer = ComparisonFactory(
        project=project, external_id="newer-version", lm_votes=[("main", "A"), ("other", "B")]
    )
    LMLabelFactory(
        comparison=newer, judge_name="main", judge_version="v2", choice="B", strength="clearly"
    )
    ComparisonFactory(project=project, external_id="lm-tie", lm_votes=[("main", "tie")])
    comparisons = Comparison.objects.filter(project=project)
    fields = ("metadata", "prompt_messages")

    def read(source):
        batches = pair_batches(project, 7, comparisons, source=source, fields=fields)
        return [pair for batch in batches for pair in batch]

    one_query = {source: read(source) for source in pairs.SOURCES}
    monkeypatch.setattr(pairs, "_VOTE_TEXTS_KEPT", 2)  # forgetting vote texts changes nothing
    assert {source: read(source) for source in pairs.SOURCES} == one_query
    monkeypatch.setattr(pairs, "one_query_per_batch", lambda: False)
    assert {source: read(source) for source in pairs.SOURCES} == one_query
    final = {p.external_id: p for p in one_query["final"]}
    assert len(final) == 21 and "lm-tie" not in final and "c1" not in final and "c5" in final
    assert (final["newer-version"].label.choice, final["newer-version"].label.strength) == (
        "B",
        "clearly",
    )
