"""Export over HTTP: streamed JSON Lines, Parquet and the zipped HF dataset, the same bytes and
rows as the command with the same filters and options, a filename; 100,000 rows read chunk by
chunk; the dataset card."""

import io
import tracemalloc
import zipfile

import orjson
import pyarrow.parquet as pq
import pytest
from django.core.management import call_command
from django.utils import timezone

from annotator.dataio.bulk import ids_reserve, rows_insert
from annotator.dataio.importer import COMPARISON_COLUMNS, LM_COLUMNS
from annotator.models import Comparison, LMLabel
from tests.annotator.api.helpers import comparison_with_labels
from tests.factories import ComparisonFactory
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
    assert parameters["format"]["schema"]["enum"] == ["full", "trl", "parquet", "hf", "multipref"]
    assert parameters["source"]["schema"]["enum"] == ["final", "human", "lm"]
    assert {"min_agreement", "margin", "conversational", "with_confidence"} <= set(parameters)
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
        defaults = {  # by column name: columns the importer adds later keep their defaults
            "project_id": project.pk,
            "response_a": text + "a",
            "response_b": text + "b",
            "model_a": "",
            "model_b": "",
            "metadata": {},
            "content_hash": "0" * 64,
            "route": "lm",
            "is_gold": False,
            "labels_done": 0,
            "slots_taken": 0,
            "created_at": now,
        }
        rows_insert(
            Comparison,
            COMPARISON_COLUMNS,
            (
                tuple(
                    {
                        **defaults,
                        "id": pk,
                        "external_id": f"c{start + i:06d}",
                        "prompt": f"prompt {start + i}",
                    }.get(column)
                    for column in COMPARISON_COLUMNS
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


ANY_URL = "/api/v1/projects/proj/export"


@pytest.fixture
def voted(team):
    project = team.project
    project.primary_judge = "main"
    project.save()
    votes = [["A", "A", "A"], ["B", "B", "A"], ["A", "B"], ["B"], []]
    for i in range(10):
        ComparisonFactory(
            project=project,
            external_id=f"c{i}",
            route="human" if i % 2 else "lm",
            human_votes=votes[i % 5],
            lm_votes=[("main", "AB"[i % 2])],
        )
    return team


def _command(export_format: str, *flags, output=None) -> bytes:
    out = io.StringIO()
    args = ["export_dataset", "--project", "proj", "--format", export_format, *flags]
    if output is not None:
        args += ["--output", str(output)]
    call_command(*args, stdout=out, stderr=io.StringIO())
    return (
        output.read_bytes() if output is not None and output.is_file() else out.getvalue().encode()
    )


# (REST query, the same as the command's flags)
SAME_EXPORTS = [
    ({"source": "lm", "min_agreement": "0.6"}, ["--source", "lm", "--min-agreement", "0.6"]),
    ({"source": "human", "margin": "true"}, ["--source", "human", "--margin"]),
    (
        {"route": "human", "conversational": "always"},
        ["--route", "human", "--conversational", "always"],
    ),
    ({"has_human_labels": "false"}, ["--has-human-labels", "false"]),
]


@pytest.mark.parametrize(("query", "flags"), SAME_EXPORTS)
def test_rest_and_command_write_the_same_trl_rows(voted, clients, query, flags):
    body = _body(clients["viewer"].get(URL, {"format": "trl", **query}))

    assert body == _command("trl", *flags)
    assert body  # every case exports something


@pytest.mark.parametrize(("query", "flags"), SAME_EXPORTS)
def test_rest_and_command_write_the_same_parquet_file(voted, clients, tmp_path, query, flags):
    response = clients["viewer"].get(ANY_URL, {"format": "parquet", **query})

    assert response["Content-Type"] == "application/vnd.apache.parquet"
    assert response["Content-Disposition"].endswith('.parquet"')
    body = _body(response)
    assert body == _command("parquet", *flags, output=tmp_path / "pairs.parquet")
    assert pq.read_table(io.BytesIO(body)).num_rows > 0


def test_the_hf_export_is_a_zip_of_the_commands_directory(voted, clients, tmp_path):
    response = clients["viewer"].get(ANY_URL, {"format": "hf", "min_agreement": "0.6"})

    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].endswith('.zip"')
    directory = tmp_path / "dataset"
    _command("hf", "--min-agreement", "0.6", output=directory)
    with zipfile.ZipFile(io.BytesIO(_body(response))) as archive:
        for name in archive.namelist():
            assert archive.read(name) == (directory / name).read_bytes(), name
        assert sorted(archive.namelist()) == sorted(
            str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file()
        )


def test_a_parquet_accept_header_is_served(voted, clients):
    response = clients["viewer"].get(
        ANY_URL, {"format": "parquet"}, HTTP_ACCEPT="application/vnd.apache.parquet"
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("query", "field", "problem"),
    [
        ({"format": "full", "margin": "true"}, "margin", "applies to the trl, parquet, hf"),
        ({"format": "trl", "shard_size": "3"}, "shard_size", "applies to the hf exports"),
        ({"format": "multipref", "source": "lm"}, "source", "not to multipref"),
        ({"format": "trl", "min_agreement": "1.5"}, "min_agreement", "less than or equal to 1"),
        ({"format": "trl", "source": "crowd"}, "source", "not a valid choice"),
    ],
)
def test_bad_options_are_a_400_naming_them(voted, clients, query, field, problem):
    response = clients["viewer"].get(URL, query)

    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["field"] == field and problem in error["problem"]


def test_confidence_before_any_analytics_report_is_a_400(voted, clients):
    response = clients["viewer"].get(URL, {"format": "trl", "with_confidence": "true"})

    assert response.status_code == 400
    assert "no analytics report yet" in response.json()["errors"][0]["problem"]


def test_annotators_cannot_export_in_any_format(voted, clients):
    for export_format in ("parquet", "hf", "multipref"):
        response = clients["annotator"].get(ANY_URL, {"format": export_format})
        assert response.status_code == 403
