"""Dataset cards (annotator/dataio/export/card.py): the `hf` card's YAML as `datasets` writes
it, its size category, and where the exported labels come from."""

import pytest
import yaml

from annotator.dataio.export.card import features_yaml, hf_card_markdown, size_category
from annotator.dataio.export.parquet import ExportStats, parquet_schema


@pytest.mark.parametrize(
    ("rows", "category"),
    [(0, "n<1K"), (999, "n<1K"), (1000, "1K<n<10K"), (250_000, "100K<n<1M"), (2e9, "n>1B")],
)
def test_size_categories_are_the_hubs(rows, category):
    assert size_category(rows) == category


@pytest.mark.parametrize("conversational", [False, True])
def test_features_are_what_datasets_writes_for_the_schema(conversational):
    datasets = pytest.importorskip("datasets")
    schema = parquet_schema(conversational=conversational, margin=True, confidence=True)

    ours = yaml.safe_load("\n".join(features_yaml(list(schema), indent=0)))

    assert ours == datasets.Features.from_arrow_schema(schema)._to_yaml_list()


def test_the_card_says_where_the_labels_come_from(project):
    project.license = "Apache-2.0"
    project.primary_judge = "main"
    project.description = "Pairs about capitals."
    stats = ExportStats(rows=5, voted=2, agreement_sum=1.6667, unanimous=1)
    stats.sources.update({"human": 3, "lm": 2})
    schema = parquet_schema(conversational=False, margin=False, confidence=False)

    card = hf_card_markdown(
        project=project, schema=schema, stats=stats, shards=1, license=None, source="final"
    )

    front, prose = card.split("---\n")[1:3]
    header = yaml.safe_load(front)
    assert header["license"] == "apache-2.0" and header["size_categories"] == ["n<1K"]
    assert header["configs"] == [
        {"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]}
    ]
    assert header["dataset_info"]["splits"] == [
        {"name": "train", "num_bytes": 0, "num_examples": 5}
    ]
    assert "Pairs about capitals." in prose
    assert "| humans (majority vote) | 3 |" in prose
    assert "| the LM judge `main` | 2 |" in prose
    assert "on average 83.3% of their votes" in prose and "1 (50.0%) were unanimous" in prose
    assert "- `judge_p_a`:" in prose
