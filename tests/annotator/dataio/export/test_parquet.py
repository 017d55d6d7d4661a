"""The Parquet export (annotator/dataio/export/parquet.py): one row per pair with its label's
provenance, written a row group at a time as the batches come, loaded by `datasets`, with
conversations as lists of messages."""

import io

import orjson
import pyarrow.parquet as pq
import pytest
from django.core.management import call_command

from annotator.dataio.export import ExportOptions, dataset_export_chunks
from annotator.dataio.export.parquet import MESSAGES
from tests.factories import ComparisonFactory, LMLabelFactory


def _parquet(project, tmp_path, *flags):
    path = tmp_path / "pairs.parquet"
    err = io.StringIO()
    call_command(
        "export_dataset", "--project", project.slug, "--format", "parquet", "--output", str(path),
        *flags, stderr=err,
    )  # fmt: skip
    assert "bytes (parquet)" in err.getvalue()
    return path


@pytest.fixture
def judged(project):
    project.primary_judge = "main"
    project.save()
    voted = ComparisonFactory(
        project=project,
        external_id="majority-b",
        model_a="m1",
        model_b="m2",
        metadata={"source": "x", "n": [1, 2]},
        human_votes=[("B", "clearly"), ("B", "slightly"), ("A", "clearly")],
    )
    LMLabelFactory(comparison=voted, judge_name="main", choice="A", p_a=0.75)
    judge_only = ComparisonFactory(project=project, external_id="judge-only")
    LMLabelFactory(
        comparison=judge_only, judge_name="main", choice="B", strength="clearly", p_a=0.1
    )
    ComparisonFactory(project=project, external_id="unlabelled")
    return project


def test_a_row_per_pair_with_the_label_and_its_provenance(judged, tmp_path):
    rows = pq.read_table(_parquet(judged, tmp_path, "--margin")).to_pylist()

    # Metadata is JSON text, its keys in the database's order (PostgreSQL's jsonb sorts them).
    assert [orjson.loads(row.pop("metadata")) for row in rows] == [{"source": "x", "n": [1, 2]}, {}]
    assert rows == [
        {
            "external_id": "majority-b",
            "prompt": "prompt majority-b",
            "chosen": "B of majority-b",
            "rejected": "A of majority-b",
            "response_a": "A of majority-b",
            "response_b": "B of majority-b",
            "model_a": "m1",
            "model_b": "m2",
            "choice": "B",
            "strength": "slightly",
            "label_source": "human",
            "agreement": 0.6667,
            "n_human_labels": 3,
            "judge_p_a": 0.75,
            "margin": 0.5,
            "prompt_messages": None,
            "response_a_messages": None,
            "response_b_messages": None,
        },
        {
            "external_id": "judge-only",
            "prompt": "prompt judge-only",
            "chosen": "B of judge-only",
            "rejected": "A of judge-only",
            "response_a": "A of judge-only",
            "response_b": "B of judge-only",
            "model_a": "",
            "model_b": "",
            "choice": "B",
            "strength": "clearly",
            "label_source": "lm",
            "agreement": None,
            "n_human_labels": 0,
            "judge_p_a": 0.1,
            "margin": 1.0,
            "prompt_messages": None,
            "response_a_messages": None,
            "response_b_messages": None,
        },
    ]


def test_the_source_decides_chosen_and_rejected(judged, tmp_path):
    rows = pq.read_table(_parquet(judged, tmp_path, "--source", "lm")).to_pylist()

    assert [(r["external_id"], r["chosen"], r["label_source"]) for r in rows] == [
        ("majority-b", "A of majority-b", "lm"),
        ("judge-only", "B of judge-only", "lm"),
    ]


def test_row_groups_are_written_as_the_batches_come(project):
    for i in range(9):
        ComparisonFactory(project=project, external_id=f"c{i}", human_votes=["AB"[i % 2]])
    ComparisonFactory(project=project, external_id="unlabelled")

    chunks = list(
        dataset_export_chunks(
            project=project,
            format="parquet",
            options=ExportOptions(row_group_size=2),
            batch_size=2,
        )
    )

    parquet = pq.ParquetFile(io.BytesIO(b"".join(chunks)))
    assert parquet.metadata.num_row_groups == 5  # 2 + 2 + 2 + 2 + 1 rows
    assert parquet.metadata.num_rows == 9
    # A piece for each full row group as it is written, the last one's with the footer.
    assert len(chunks) == 5 and all(chunks)
    assert [r["external_id"] for r in parquet.read().to_pylist()] == [f"c{i}" for i in range(9)]


def test_conversations_are_lists_of_messages(project, tmp_path):
    prompt = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi", "name": "bob"},  # extra keys are JSON's only
    ]
    ComparisonFactory(
        project=project,
        external_id="chat",
        prompt="hi",
        prompt_messages=prompt,
        human_votes=["B"],
    )
    ComparisonFactory(project=project, external_id="plain", human_votes=["A"])

    table = pq.read_table(_parquet(project, tmp_path))

    assert table.schema.field("prompt").type.equals(MESSAGES)
    chat, plain = table.to_pylist()
    assert chat["prompt"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi"},
    ]
    assert chat["prompt_messages"] == chat["prompt"]
    assert chat["chosen"] == [{"role": "assistant", "content": "B of chat"}]
    assert chat["response_a_messages"] is None
    assert plain["prompt"] == [{"role": "user", "content": "prompt plain"}]
    assert plain["prompt_messages"] is None


def test_the_file_loads_with_datasets(judged, tmp_path):
    datasets = pytest.importorskip("datasets")
    path = _parquet(judged, tmp_path)

    train = datasets.load_dataset("parquet", data_files=str(path), split="train")

    assert len(train) == 2
    assert train["chosen"] == ["B of majority-b", "B of judge-only"]
    assert train.features["agreement"].dtype == "float64"


def test_parquet_needs_an_output_file(judged):
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="--output is required for the parquet export"):
        call_command("export_dataset", "--project", judged.slug, "--format", "parquet")
