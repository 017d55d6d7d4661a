"""The `hf` export (annotator/dataio/export/hf.py): a directory that `datasets.load_dataset`
loads, Parquet shards named as the Hub names them, a card with YAML front matter, and the same
files as one zip stream."""

import io
import zipfile

import pyarrow.parquet as pq
import pytest
from django.core.management import CommandError, call_command

from annotator.dataio.export import ExportOptions, dataset_export_chunks
from tests.factories import ComparisonFactory

datasets = pytest.importorskip("datasets")


def _hf(project, path, *flags) -> str:
    err = io.StringIO()
    call_command(
        "export_dataset", "--project", project.slug, "--format", "hf", "--output", str(path),
        *flags, stderr=err,
    )  # fmt: skip
    return err.getvalue()


@pytest.fixture
def labelled(project):
    project.primary_judge = "main"
    project.license = "CC-BY-4.0"
    project.save()
    for i in range(7):
        ComparisonFactory(
            project=project,
            external_id=f"h{i}",
            human_votes=[("A", "clearly"), ("A", "slightly"), ("B", "clearly")][: 1 + i % 3],
        )
    for i in range(3):
        ComparisonFactory(project=project, external_id=f"lm{i}", lm_votes=[("main", "B")])
    ComparisonFactory(project=project, external_id="unlabelled")
    return project


def _front_matter(card: str) -> str:
    assert card.startswith("---\n")
    return card.split("---\n")[1]


def test_load_dataset_reads_the_directory_with_the_cards_features(labelled, tmp_path):
    target = tmp_path / "dataset"
    said = _hf(labelled, target, "--shard-size", "4", "--margin")

    assert "10 rows in 3 shards" in said  # 4, 4 and 3 comparisons
    assert sorted(p.name for p in (target / "data").iterdir()) == [
        "train-00000-of-00003.parquet",
        "train-00001-of-00003.parquet",
        "train-00002-of-00003.parquet",
    ]
    train = datasets.load_dataset(str(target), split="train")
    assert train["external_id"] == [*(f"h{i}" for i in range(7)), "lm0", "lm1", "lm2"]
    assert train["margin"][:2] == [1.0, 0.5]
    schema = pq.read_schema(target / "data" / "train-00000-of-00003.parquet")
    assert train.features == datasets.Features.from_arrow_schema(schema)
    card = (target / "README.md").read_text()
    front = _front_matter(card)
    assert 'license: "cc-by-4.0"' in front
    assert "- n<1K" in front and "path: data/train-*" in front
    assert "    num_examples: 10" in front
    assert "| humans (majority vote) | 7 |" in card
    assert "| the LM judge `main` | 3 |" in card


def test_an_empty_shard_is_a_valid_file(project, tmp_path):
    for i in range(4):
        ComparisonFactory(project=project, external_id=f"none{i}")
    ComparisonFactory(project=project, external_id="last", human_votes=["A"])
    target = tmp_path / "dataset"

    assert "1 rows in 3 shards" in _hf(project, target, "--shard-size", "2")
    train = datasets.load_dataset(str(target), split="train")
    assert train["external_id"] == ["last"]


def test_the_api_stream_is_a_zip_of_the_same_dataset(labelled, tmp_path):
    directory = tmp_path / "dataset"
    _hf(labelled, directory, "--source", "human")
    chunks = list(
        dataset_export_chunks(
            project=labelled, format="hf", options=ExportOptions(source="human"), batch_size=2
        )
    )
    unzipped = tmp_path / "unzipped"
    with zipfile.ZipFile(io.BytesIO(b"".join(chunks))) as archive:
        assert archive.testzip() is None
        assert archive.namelist() == ["data/train-00000-of-00001.parquet", "README.md"]
        archive.extractall(unzipped)

    assert len(chunks) > 3  # sent as the files are written
    from_zip = datasets.load_dataset(str(unzipped), split="train")
    from_directory = datasets.load_dataset(str(directory), split="train")
    assert from_zip.to_list() == from_directory.to_list()
    assert set(from_zip["label_source"]) == {"human"}


def test_the_licence_flag_overrides_the_projects(labelled, tmp_path):
    _hf(labelled, tmp_path / "dataset", "--license", "MIT")

    assert 'license: "mit"' in _front_matter((tmp_path / "dataset" / "README.md").read_text())


def test_an_existing_directory_with_files_is_refused(labelled, tmp_path):
    target = tmp_path / "dataset"
    target.mkdir()
    (target / "keep.txt").write_text("mine")

    with pytest.raises(CommandError, match="already exists and is not an empty directory"):
        _hf(labelled, target)
    assert (target / "keep.txt").read_text() == "mine"


def test_options_of_other_formats_are_refused_by_name(labelled, tmp_path):
    with pytest.raises(CommandError, match="--shard-size applies to the hf exports, not to trl"):
        call_command(
            "export_dataset", "--project", labelled.slug, "--format", "trl", "--shard-size", "3"
        )
