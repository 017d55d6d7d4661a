"""Export over HTTP: streamed JSON Lines, the same bytes as the command, filters, a filename;
100,000 rows read chunk by chunk; the dataset card."""

import tracemalloc

import orjson
import pytest
from django.utils import timezone

from annotator.dataio.bulk import ids_reserve, rows_insert
from annotator.dataio.importer import COMPARISON_COLUMNS, LM_COLUMNS
from annotator.models import Comparison, LMLabel
from tests.annotator.api.helpers import comparison_with_labels
from tests.import_records import RICH, native

URL = "/api/v1/projects/proj/export.jsonl"


def _body(response) -> bytes:
    assert response.status_code == 200, response.content
    return b"".join(response.streaming_content)


@pytest.fixture
def imported(team, clients):
    lines = [
        RICH,
        native("plain"),
        native(
            "lm-only",
            route="lm",
            lm_labels=[{"judge": "judge-x", "judge_version": "v1", "overall": "B"}],
        ),
    ]
    body = b"".join(orjson.dumps(r) + b"\n" for r in lines)
    response = clients["admin"].post(
        "/api/v1/projects/proj/import", body, content_type="application/x-ndjson"
    )
    assert response.status_code == 200, response.content
    return team


@pytest.mark.parametrize("export_format", ["full", "trl"])
def test_the_export_is_the_commands_bytes_with_a_filename(
    imported, clients, run_export, export_format
):
    response = clients["viewer"].get(URL, {"format": export_format})

    assert response["Content-Type"] == "application/x-ndjson"
    disposition = response["Content-Disposition"]
    assert disposition.startswith(f'attachment; filename="proj-{export_format}-')
    assert disposition.endswith('.jsonl"')
    assert _body(response) == run_export(format=export_format)


def test_without_a_format_the_export_is_full(imported, clients, run_export):
    assert _body(clients["viewer"].get(URL)) == run_export(format="full")


@pytest.mark.parametrize("export_format", ["full", "trl"])
def test_kind_is_still_accepted_as_the_deprecated_name_of_format(imported, clients, export_format):
    by_kind = clients["viewer"].get(URL, {"kind": export_format})
    both = clients["viewer"].get(URL, {"kind": export_format, "format": export_format})

    assert f"proj-{export_format}-" in by_kind["Content-Disposition"]
    expected = _body(clients["viewer"].get(URL, {"format": export_format}))
    assert _body(by_kind) == expected
    assert _body(both) == expected


def test_format_and_kind_that_disagree_are_a_400_naming_both(imported, clients):
    response = clients["viewer"].get(URL, {"format": "trl", "kind": "full"})

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert {e["field"] for e in errors} == {"format", "kind"}
    assert all("format='trl'" in e["problem"] and "kind='full'" in e["problem"] for e in errors)


def test_the_schema_documents_kind_as_deprecated(client):
    import orjson as json

    schema = json.loads(
        client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").content
    )
    parameters = {
        p["name"]: p
        for p in schema["paths"]["/api/v1/projects/{slug}/export.jsonl"]["get"]["parameters"]
    }
    assert parameters["format"]["schema"]["enum"] == ["full", "trl"]
    assert parameters["kind"]["deprecated"] is True
    assert "old name of `format`" in parameters["kind"]["description"]


def test_trl_rows_load_as_training_pairs(imported, clients):
    rows = [
        orjson.loads(line)
        for line in _body(clients["viewer"].get(URL, {"format": "trl"})).split(b"\n")
        if line
    ]

    assert [(r["external_id"], r["label_source"]) for r in rows] == [("lm-only", "lm")]
    assert set(rows[0]) >= {"prompt", "chosen", "rejected"}


def test_filters_narrow_the_export(imported, clients):
    human_only = _body(clients["viewer"].get(URL, {"format": "full", "has_human_labels": "true"}))
    by_route = _body(clients["viewer"].get(URL, {"format": "full", "route": "lm"}))

    assert [orjson.loads(x)["external_id"] for x in human_only.splitlines()] == ["rich"]
    assert [orjson.loads(x)["external_id"] for x in by_route.splitlines()] == ["lm-only"]


@pytest.mark.parametrize("name", ["format", "kind"])
def test_a_bad_format_is_a_400_naming_it(team, clients, name):
    response = clients["viewer"].get(URL, {name: "csv"})

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == name


def _bulk_comparisons(project, n: int) -> None:
    """n comparisons with one LM label each, written with the importer's fast row inserts."""
    now = timezone.now()
    text = "word " * 100
    for start in range(0, n, 20_000):
        count = min(20_000, n - start)
        ids = ids_reserve(Comparison, count)
        rows_insert(
            Comparison,
            COMPARISON_COLUMNS,
            (
                (
                    pk,
                    project.pk,
                    f"c{start + i:06d}",
                    f"prompt {start + i}",
                    text + "a",
                    text + "b",
                    "",
                    "",
                    {},
                    "0" * 64,
                    "lm",
                    False,
                    None,
                    0,
                    0,
                    now,
                )
                for i, pk in enumerate(ids)
            ),
        )
        rows_insert(
            LMLabel,
            LM_COLUMNS,
            (
                (
                    pk,
                    "judge-x",
                    "v1",
                    "A",
                    "clearly",
                    None,
                    None,
                    None,
                    None,
                    "",
                    {},
                    False,
                    "imported",
                    now,
                )
                for pk in ids
            ),
        )


@pytest.mark.slow
def test_100k_rows_stream_in_chunks_with_flat_memory(team, clients, settings):
    settings.EXPORT_BATCH_SIZE = 2000
    n = 100_000
    _bulk_comparisons(team.project, n)

    response = clients["viewer"].get(URL, {"format": "trl"})
    assert response.status_code == 200 and response.streaming
    tracemalloc.start()
    rows = chunks = total_bytes = 0
    biggest = 0
    last = None
    try:
        for chunk in response.streaming_content:
            chunks += 1
            lines = chunk.count(b"\n")
            rows += lines
            biggest = max(biggest, lines)
            total_bytes += len(chunk)
            last = chunk
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert rows == n
    assert chunks >= n // 2000 and biggest <= 2000  # one batch at a time, never the whole export
    assert orjson.loads(last.splitlines()[-1])["external_id"] == f"c{n - 1:06d}"
    # The export is ~100 MB; what it holds at once is a few batches.
    assert total_bytes > 90 * 2**20
    assert peak < 40 * 2**20, f"peak {peak / 2**20:.1f} MB"


def test_the_dataset_card_describes_the_export(imported, clients):
    project = imported.project
    project.license = "CC-BY-4.0"
    project.save()

    response = clients["viewer"].get("/api/v1/projects/proj/dataset-card")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/markdown")
    card = response.content.decode()
    assert "| licence | CC-BY-4.0 |" in card
    assert "| comparisons | 3 |" in card
    # The one comparison with human labels has a split vote: no final label (as in the export).
    assert "| final label from humans | 0 |" in card
    assert "| final label from the LM judge (no human label) | 1 |" in card
    assert "| without a final label (tied or Tie votes, an LM Tie, no label) | 2 |" in card
    assert "| human labels (platform / imported) | 0 / 2 |" in card
    assert "| judge-x | v1 | 2 |" in card
    assert "| guidelines version | 1 |" in card
    assert "Among 1 comparisons with two or more human labels, on average 50.0%" in card
    assert "routing run |" in card


def test_the_dataset_card_of_an_empty_project(team, clients):
    comparison_with_labels(team.project)
    card = clients["admin"].get("/api/v1/projects/proj/dataset-card").content.decode()

    assert "| licence | not set |" in card
    assert "No comparison has two or more human labels yet." in card
