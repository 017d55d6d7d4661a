"""Exports: full round trip, the TRL pairs on a hand-checked example, streaming in batches."""

import orjson
import pytest
from django.contrib.auth import get_user_model

from annotator.dataio.export import dataset_export_lines
from annotator.final_labels import human_majority
from annotator.models import Comparison, HumanLabel, LMLabel
from annotator.services import project_create
from tests.conftest import DATA
from tests.import_records import RICH, native


def _lines(data: bytes) -> list[dict]:
    return [orjson.loads(line) for line in data.splitlines()]


def test_full_export_then_import_round_trips_exactly(project, write_lines, run_import, run_export):
    records = [
        RICH,
        native("gold", gold="B", route="human", metadata={"nested": {"x": [1, 2.5, None]}}),
        native("empty-labels", human_labels=[], lm_labels=[]),
        native(
            "aspects",
            human_labels=[
                {
                    "annotator": "e",
                    "overall": "Tie",
                    "harmless": "B-is-slightly-better",
                    "confidence": "not",
                    "time_spent_s": 0,
                    "created_at": "2026-03-01T12:00:00.250000+02:00",
                }
            ],
            lm_labels=[
                {"judge": "j", "overall": "Tie", "p_a": 0.5, "raw_output": {"logits": [1.0, 2.0]}}
            ],
        ),
    ]
    run_import(write_lines(records))
    first = run_export(project="proj")

    project_create(slug="copy")
    copy_file = write_lines([first.decode()], name="export.jsonl")
    assert run_import(copy_file, project="copy").ok
    second = run_export(project="copy")

    assert second == first
    exported = {r["external_id"]: r for r in _lines(first)}
    assert exported["gold"]["gold"] == "B" and exported["gold"]["route"] == "human"
    label = exported["aspects"]["human_labels"][0]
    assert label["created_at"] == "2026-03-01T10:00:00.250000+00:00"
    assert (label["overall"], label["harmless"], label["helpful"]) == (
        "Tie",
        "B-is-slightly-better",
        None,
    )


def test_full_export_of_llmbar_with_evaluators_round_trips(project, run_import, run_export):
    run_import(DATA / "llmbar/Natural/dataset.json", format="llmbar", with_evaluators=True)
    first = run_export()
    project_create(slug="copy")
    from io import BytesIO

    from annotator.dataio.importer import comparisons_import
    from annotator.models import Project

    comparisons_import(
        project=Project.objects.get(slug="copy"), stream=BytesIO(first), source_name="x"
    )
    assert run_export(project="copy") == first


def test_platform_labels_export_with_the_username(project, run_export):
    user = get_user_model().objects.create_user("alice")
    comparison = Comparison.objects.create(
        project=project, external_id="c", prompt="p", response_a="a", response_b="b"
    )
    HumanLabel.objects.create(
        comparison=comparison,
        annotator=user,
        overall_choice="B",
        overall_strength="clearly",
        shown_order="BA",
        guidelines_version=1,
        time_spent_s=4.0,
    )
    (record,) = _lines(run_export())
    (label,) = record["human_labels"]
    assert label["annotator"] == "alice"
    assert label["source"] == "platform"
    assert label["overall"] == "B-is-clearly-better"
    assert label["shown_order"] == "BA"


def _comparison(project, external_id, humans=(), lms=()):
    comparison = Comparison.objects.create(
        project=project,
        external_id=external_id,
        prompt=f"prompt {external_id}",
        response_a=f"A of {external_id}",
        response_b=f"B of {external_id}",
    )
    for index, (choice, strength) in enumerate(humans):
        HumanLabel.objects.create(
            comparison=comparison,
            annotator_name=f"h{index}",
            source="imported",
            overall_choice=choice,
            overall_strength=strength,
        )
    for judge, choice in lms:
        LMLabel.objects.create(
            comparison=comparison, judge_name=judge, choice=choice, strength="unknown"
        )
    return comparison


def test_trl_export_on_a_hand_checked_example(project, run_export):
    project.primary_judge = "main"
    project.save()
    _comparison(
        project, "majority-a", humans=[("A", "clearly"), ("A", "slightly"), ("B", "clearly")]
    )
    _comparison(project, "split-vote", humans=[("A", "clearly"), ("B", "clearly")])
    _comparison(
        project, "tie-majority", humans=[("tie", "unknown"), ("tie", "unknown"), ("A", "clearly")]
    )
    _comparison(project, "humans-beat-lm", humans=[("B", "clearly")], lms=[("main", "A")])
    _comparison(project, "lm-only", lms=[("main", "B"), ("other", "A")])
    _comparison(project, "lm-tie", lms=[("main", "tie")])
    _comparison(project, "other-judge-only", lms=[("other", "A")])
    _comparison(project, "unlabelled")

    rows = _lines(run_export(format="trl"))

    assert rows == [
        {
            "prompt": "prompt majority-a",
            "chosen": "A of majority-a",
            "rejected": "B of majority-a",
            "external_id": "majority-a",
            "label_source": "human",
            "strength": "slightly",
            "agreement": 0.6667,
        },
        {
            "prompt": "prompt humans-beat-lm",
            "chosen": "B of humans-beat-lm",
            "rejected": "A of humans-beat-lm",
            "external_id": "humans-beat-lm",
            "label_source": "human",
            "strength": "clearly",
            "agreement": 1.0,
        },
        {
            "prompt": "prompt lm-only",
            "chosen": "B of lm-only",
            "rejected": "A of lm-only",
            "external_id": "lm-only",
            "label_source": "lm",
            "strength": "unknown",
            "agreement": None,
        },
    ]


def test_trl_export_without_a_primary_judge_uses_the_most_used_judge(project, run_export):
    _comparison(project, "one", lms=[("big", "A"), ("small", "B")])
    _comparison(project, "two", lms=[("big", "B")])
    rows = _lines(run_export(format="trl"))
    assert [(r["external_id"], r["chosen"]) for r in rows] == [
        ("one", "A of one"),
        ("two", "B of two"),
    ]


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


def test_trl_export_loads_with_datasets(project, run_import, tmp_path, run_export):
    datasets = pytest.importorskip("datasets")
    run_import(DATA / "hh-rlhf/harmless-test-100.jsonl.gz", format="hh-rlhf")
    path = tmp_path / "trl.jsonl"
    path.write_bytes(run_export(format="trl"))

    dataset = datasets.load_dataset("json", data_files=str(path), split="train")

    assert len(dataset) == 100
    assert {"prompt", "chosen", "rejected"} <= set(dataset.column_names)
    assert all(p.endswith("\n\nAssistant:") for p in dataset["prompt"])


def test_export_batches_never_leak_another_projects_labels(project, other_project):
    # Interleave the two projects' ids so each batch's id range spans the other project's rows.
    for i in range(7):
        for target in (project, other_project):
            _comparison(target, f"{target.slug}-{i}", humans=[("A", "clearly")], lms=[("j", "B")])

    chunks = list(dataset_export_lines(project=project, format="full", batch_size=2))

    assert len(chunks) == 4
    rows = [orjson.loads(line) for chunk in chunks for line in chunk.splitlines()]
    assert [r["external_id"] for r in rows] == [f"proj-{i}" for i in range(7)]
    assert all(len(r["human_labels"]) == 1 and len(r["lm_labels"]) == 1 for r in rows)


def test_export_command_writes_a_file_atomically(project, tmp_path, write_lines, run_import):
    from django.core.management import call_command

    run_import(write_lines([RICH]))
    target = tmp_path / "out.jsonl"
    call_command("export_dataset", "--project", "proj", "--format", "trl", "--output", str(target))
    assert [r["external_id"] for r in _lines(target.read_bytes())] == []  # tied 1-1 human vote
    call_command("export_dataset", "--project", "proj", "--output", str(target))
    assert [r["external_id"] for r in _lines(target.read_bytes())] == ["rich"]
    assert not (tmp_path / "out.jsonl.partial").exists()


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_reader_threads_give_the_same_export(write_lines, settings):
    """Commands and API views export outside any transaction: the batches are then read ahead
    by threads on their own connections (EXPORT_READERS of them for `full` on PostgreSQL). Their
    output must equal the inline path's."""
    settings.EXPORT_READERS = 3
    from django.db import connection, transaction

    from annotator.dataio.importer import comparisons_import

    project = project_create(slug="threaded")
    path = write_lines([RICH, *(native(f"n{i}", gold="A") for i in range(25))])
    with path.open("rb") as stream:
        comparisons_import(project=project, stream=stream, source_name="x")

    assert not connection.in_atomic_block
    threaded = b"".join(dataset_export_lines(project=project, format="full", batch_size=4))
    threaded_trl = b"".join(dataset_export_lines(project=project, format="trl", batch_size=4))
    with transaction.atomic():
        inline = b"".join(dataset_export_lines(project=project, format="full", batch_size=4))
        inline_trl = b"".join(dataset_export_lines(project=project, format="trl", batch_size=4))

    assert threaded == inline
    assert threaded_trl == inline_trl
    assert len(threaded.splitlines()) == 26


# Doubles around every switch between written-out digits and exponents (orjson writes 0.00001 and
# 1000000000000000.0 where PostgreSQL prints 1e-05 and 1e+15), integral values, signs, extremes.
AWKWARD_FLOATS = [
    0.0,
    -0.0,
    4.0,
    12.5,
    1 / 3,
    1e-4,
    9.99e-5,
    1e-5,
    1.234e-5,
    9.99e-6,
    1e-6,
    1.5e-7,
    5e-324,
    2.5e-300,
    1e14,
    99999999999999.98,
    1e15,
    1.2345678901234567e15,
    9999999999999998.0,
    1e16,
    1e22,
    1.7976931348623157e308,
    float("nan"),
    float("inf"),
]


def _awkward_project(project):
    """Labels with every kind of value the `full` export writes: floats at each formatting
    switch (times and probabilities are never negative), control and non-ASCII characters, JSON
    columns, a platform user, absent aspects."""
    user = get_user_model().objects.create_user("ünïcode-user")
    odd = 'quote " backslash \\ tab \t nl \n cr \r \x01 \x1f \x7f é ✓ 😀 \u2028'
    comparison = Comparison.objects.create(
        project=project,
        external_id=f"odd {odd}",
        prompt=odd,
        response_a="a",
        response_b="b",
        model_a="m/ä",
        metadata={"nested": {"x": [1, 2.5, None, 1e-7]}, "k": odd},
        gold_choice="tie",
        is_gold=True,
    )
    HumanLabel.objects.create(
        comparison=comparison,
        annotator=user,
        overall_choice="A",
        overall_strength="slightly",
        harmless_choice="B",
        harmless_strength="clearly",
        reasons=["x", odd],
        rationale=odd,
        shown_order="AB",
        guidelines_version=3,
    )
    for index, seconds in enumerate(AWKWARD_FLOATS):
        HumanLabel.objects.create(
            comparison=comparison,
            annotator_name=f"h{index}",
            source="imported",
            overall_choice="tie",
            overall_strength="unknown",
            confidence="not",
            time_spent_s=seconds,
        )
    for index, p in enumerate([0.0, 1.0, 0.5, 1e-5, 1.5e-7, 5e-324, 0.99999, None]):
        LMLabel.objects.create(
            comparison=comparison,
            judge_name=f"j{index}",
            choice="B",
            strength="slightly",
            p_a=p,
            p_a_ab=p,
            p_a_ba=None,
            position_consistent=None if p is None else p < 0.5,
            rationale=odd,
            raw_output={"logits": [1.0, -2.5e-8], "text": odd},
        )
    _comparison(project, "plain", humans=[("A", "clearly")], lms=[("j0", "tie")])
    _comparison(project, "unlabelled")


def _three_query_trl(monkeypatch, project, **options) -> bytes:
    from annotator.dataio.export import trl

    with monkeypatch.context() as patch:
        patch.setattr(trl, "one_query_per_batch", lambda: False)
        return b"".join(dataset_export_lines(project=project, format="trl", **options))


def test_full_export_writes_every_stored_value_exactly(project):
    _awkward_project(project)

    written = b"".join(dataset_export_lines(project=project, format="full", batch_size=2))

    odd, plain, unlabelled = _lines(written)
    comparison = Comparison.objects.get(external_id=odd["external_id"])
    assert (odd["prompt"], odd["metadata"], odd["gold"]) == (
        comparison.prompt,
        comparison.metadata,
        "Tie",
    )
    first, *timed = odd["human_labels"]
    assert (first["annotator"], first["reasons"], first["rationale"]) == (
        "ünïcode-user",
        ["x", comparison.prompt],
        comparison.prompt,
    )
    assert (first["overall"], first["helpful"], first["harmless"]) == (
        "A-is-slightly-better",
        None,
        "B-is-clearly-better",
    )
    stored = [s for s in AWKWARD_FLOATS if s == s and s != float("inf")]
    assert [label["time_spent_s"] for label in timed] == [*stored, None, None]
    assert b'"time_spent_s":0.00001,' in written and b'"time_spent_s":1e+16,' in written
    assert [label["p_a"] for label in odd["lm_labels"]] == [
        0.0, 1.0, 0.5, 1e-5, 1.5e-7, 5e-324, 0.99999, None
    ]  # fmt: skip
    assert [label["position_consistent"] for label in odd["lm_labels"]][-2:] == [False, None]
    assert odd["lm_labels"][0]["raw_output"] == {
        "logits": [1.0, -2.5e-8],
        "text": comparison.prompt,
    }
    assert [label["overall"] for label in plain["lm_labels"]] == ["Tie"]
    assert unlabelled["human_labels"] == [] and unlabelled["lm_labels"] == []


def test_trl_export_read_in_one_query_on_postgresql_has_the_portable_bytes(project, monkeypatch):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the one-query TRL read is PostgreSQL's")
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
        _comparison(project, f"c{i}", humans=votes[i % 6], lms=[("main", "AB"[i % 2])])
    newer = _comparison(project, "newer-version", lms=[("main", "A"), ("other", "B")])
    LMLabel.objects.create(
        comparison=newer, judge_name="main", judge_version="v2", choice="B", strength="clearly"
    )
    _comparison(project, "lm-tie", lms=[("main", "tie")])

    read = b"".join(dataset_export_lines(project=project, format="trl", batch_size=7))

    assert read == _three_query_trl(monkeypatch, project, batch_size=7)
    from annotator.dataio.export import trl

    monkeypatch.setattr(trl, "_VOTE_TEXTS_KEPT", 2)  # forgetting final labels changes nothing
    assert b"".join(dataset_export_lines(project=project, format="trl", batch_size=7)) == read
    rows = {r["external_id"]: r for r in _lines(read)}
    assert len(rows) == 21 and "lm-tie" not in rows and "c1" not in rows and "c5" in rows
    assert (rows["newer-version"]["chosen"], rows["newer-version"]["strength"]) == (
        "B of newer-version",
        "clearly",
    )
    assert (rows["c3"]["strength"], rows["c3"]["agreement"]) == ("slightly", 0.75)


def test_full_export_with_confidence_adds_the_posteriors_and_filters(project, monkeypatch):
    from annotator.dataio.export.confidence import ExportConfidence

    _awkward_project(project)
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
    rows = _lines(written)
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
    assert [r["external_id"] for r in _lines(kept)] == ["plain"]


def _python_full(monkeypatch, project, **options) -> bytes:
    from annotator.dataio import export

    with monkeypatch.context() as patch:
        patch.setattr(export, "database_writes_json", lambda: False)
        return b"".join(dataset_export_lines(project=project, format="full", **options))


def test_full_export_written_by_postgresql_has_the_bytes_python_writes(project, monkeypatch):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL writes the `full` JSON only on PostgreSQL")
    _awkward_project(project)
    for i in range(7):
        _comparison(project, f"more-{i}", humans=[("B", "slightly")] * (i % 3), lms=[("j", "A")])
    narrowed = Comparison.objects.filter(external_id__startswith="more-").exclude(
        external_id="more-3"
    )

    for options in [
        {"batch_size": 2},
        {"batch_size": 1000},
        {"batch_size": 3, "comparisons": narrowed},
    ]:
        written = b"".join(dataset_export_lines(project=project, format="full", **options))
        assert written == _python_full(monkeypatch, project, **options), options
    assert len(_lines(written)) == 6


@pytest.mark.django_db(transaction=True)
def test_an_export_outside_a_transaction_is_one_point_in_time(settings):
    """What is committed while an export streams (a new comparison, a new label on one not yet
    sent) is not in it: every batch is read in the snapshot of the export's start."""
    settings.EXPORT_READERS = 2
    project = project_create(slug="moving")
    comparisons = [_comparison(project, f"c{i:02}", lms=[("j", "A")]) for i in range(20)]
    for export_format in ("full", "trl"):
        before = b"".join(dataset_export_lines(project=project, format=export_format, batch_size=2))
        lines = dataset_export_lines(project=project, format=export_format, batch_size=2)
        first = next(lines)
        late = _comparison(project, f"late-{export_format}", lms=[("j", "B")])
        LMLabel.objects.create(
            comparison=comparisons[-1],
            judge_name=f"late-{export_format}",
            choice="B",
            strength="clearly",
        )
        during = first + b"".join(lines)

        assert during == before, export_format
        after = b"".join(dataset_export_lines(project=project, format=export_format, batch_size=2))
        assert late.external_id.encode() in after and b"late-full" in after


@pytest.mark.django_db(transaction=True)
def test_reader_threads_join_the_snapshot_of_the_exports_start():
    """The `full` export's readers on PostgreSQL each have a connection: they must all see the
    snapshot taken at the start, whenever they start, while the caller may write meanwhile."""
    import threading

    from django.db import connection

    from annotator.dataio.export.snapshot import in_snapshot_of, shared_snapshot

    if connection.vendor != "postgresql":
        pytest.skip("exported snapshots are PostgreSQL's")
    project = project_create(slug="snap")
    _comparison(project, "before")
    seen = []

    def late_reader(snapshot):
        with in_snapshot_of(snapshot):
            seen.append(Comparison.objects.filter(project=project).count())

    def count():
        yield Comparison.objects.filter(project=project).count()

    with shared_snapshot(count) as (snapshot, counted):
        _comparison(project, "after", lms=[("j", "A")])  # committed on the caller's connection
        reader = threading.Thread(target=late_reader, args=(snapshot,))
        reader.start()
        reader.join()
        counted = list(counted)

    assert (counted, seen) == ([1], [1])
    assert Comparison.objects.filter(project=project).count() == 2


def test_the_json_postgresql_writes_has_the_python_paths_keys_in_order():
    from annotator.dataio.export import postgres_full, python_full

    def keys(fields):
        return [key for key, _, _ in fields]

    assert keys(postgres_full.COMPARISON_FIELDS) == list(python_full.COMPARISON_COLUMNS)
    assert keys(postgres_full.HUMAN_LABEL_FIELDS) == list(python_full.HUMAN_LABEL_COLUMNS)
    assert keys(postgres_full.LM_LABEL_FIELDS) == list(python_full.LM_LABEL_COLUMNS)
