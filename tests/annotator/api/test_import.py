"""Import over HTTP: every format path through the same service as the command, the same
line-numbered errors (as {line, field, problem}), all or nothing, idempotent by external_id,
size limits, and large bodies as a background job run by a real Celery worker."""

import gzip

import orjson
import pytest

from annotator.models import Comparison, ImportJob
from tests.conftest import DATA, table_counts, wait_for
from tests.import_records import RICH, native

URL = "/api/v1/projects/proj/import"


def _jsonl(*records) -> bytes:
    return b"".join(
        (r.encode() if isinstance(r, str) else orjson.dumps(r)) + b"\n" for r in records
    )


def _post(client, body: bytes, query: str = "", content_type="application/x-ndjson"):
    return client.post(f"{URL}{query}", body, content_type=content_type)


def test_a_jsonl_body_imports_with_the_commands_summary(team, clients):
    response = _post(clients["admin"], _jsonl(RICH, native("plain")))

    assert response.status_code == 200, response.content
    assert response.json() == {
        "created": 2,
        "skipped": 0,
        "updated": 0,
        "human_labels": 2,
        "lm_labels": 1,
        "format": "native",
        "notes": {},
    }
    rich = Comparison.objects.get(project=team.project, external_id="rich")
    assert rich.human_labels.count() == 2 and rich.lm_labels.get().p_a == 0.8


def test_repeating_an_import_changes_nothing(team, clients):
    body = _jsonl(RICH, native("plain"))
    _post(clients["admin"], body)
    before = table_counts()

    again = _post(clients["admin"], body)

    assert again.json() == {
        "created": 0,
        "skipped": 2,
        "updated": 0,
        "human_labels": 0,
        "lm_labels": 0,
        "format": "native",
        "notes": {},
    }
    assert table_counts() == before


def test_update_rewrites_changed_content(team, clients):
    _post(clients["admin"], _jsonl(native("a")))

    refused = _post(clients["admin"], _jsonl(native("a", prompt="New?")))
    updated = _post(clients["admin"], _jsonl(native("a", prompt="New?")), "?update=true")

    assert refused.status_code == 400
    assert refused.json()["errors"] == [
        {
            "line": 1,
            "field": "external_id",
            "problem": "'a' already exists with different content (use --update to replace it)",
        }
    ]
    assert updated.json()["updated"] == 1
    assert Comparison.objects.get(external_id="a").prompt == "New?"


def test_a_gzip_body_and_a_multipart_file_in_another_format(team, clients):
    gz = _post(
        clients["admin"], gzip.compress(_jsonl(native("g"))), content_type="application/gzip"
    )
    hh = (DATA / "hh-rlhf/harmless-test-100.jsonl.gz").read_bytes()
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("harmless.jsonl.gz", hh, content_type="application/gzip")
    multipart = clients["admin"].post(
        f"{URL}?format=hh-rlhf&label_source=lm:hh-gold", {"file": upload}, format="multipart"
    )

    assert gz.status_code == 200 and gz.json()["created"] == 1
    assert multipart.status_code == 200, multipart.content
    assert multipart.json() == {
        "created": 100,
        "skipped": 0,
        "updated": 0,
        "human_labels": 0,
        "lm_labels": 100,
        "format": "hh-rlhf",
        "notes": {},
    }


def test_an_llmbar_dataset_file_imports_synchronously(team, clients):
    body = (DATA / "llmbar/Natural/dataset.json").read_bytes()

    response = _post(clients["admin"], body, "?format=llmbar&name=dataset.json")

    assert response.status_code == 200, response.content
    assert response.json()["created"] == len(orjson.loads(body))
    assert response.json()["human_labels"] == len(orjson.loads(body))


BAD = [
    ("{not json", "(line)", "invalid JSON"),
    ('["a", "list"]', "(line)", "must be a JSON object, not a list"),
    ({k: v for k, v in native("x").items() if k != "prompt"}, "prompt", "missing"),
    (native("x", prompt=""), "prompt", "must not be empty"),
    (native("x", colour="blue"), "colour", "unknown field"),
    (
        native("x", human_labels=[{"annotator": "a", "overall": "maybe"}]),
        "human_labels[0].overall",
        "",
    ),
]


@pytest.mark.parametrize(("line", "field", "problem"), BAD)
def test_a_bad_line_fails_the_whole_import_with_its_location(team, clients, line, field, problem):
    response = _post(clients["admin"], _jsonl(native("good"), line), "?name=mine.jsonl")

    assert response.status_code == 400
    body = response.json()
    assert body["detail"] == "import failed with 1 errors; nothing was written"
    assert body["error_count"] == 1
    [error] = body["errors"]
    assert (error["line"], error["field"]) == (2, field)
    assert problem in error["problem"]
    assert table_counts() == (0, 0, 0)


def test_duplicates_within_a_file_are_listed(team, clients):
    response = _post(clients["admin"], _jsonl(native("a"), native("b"), native("a")))

    assert response.json()["errors"] == [
        {"line": 3, "field": "external_id", "problem": "'a' already appears on line 1"}
    ]
    assert table_counts() == (0, 0, 0)


def test_many_errors_list_the_first_fifty_and_count_all(team, clients):
    response = _post(clients["admin"], _jsonl(*[native(f"x{i}", prompt="") for i in range(60)]))

    body = response.json()
    assert body["error_count"] == 60 and len(body["errors"]) == 50


def test_the_pairing_parameters_reach_the_reader(team, clients):
    from tests.format_rows import ultrafeedback

    body = _jsonl(*ultrafeedback.rows(3, seed=1))
    query = "?format=ultrafeedback&pairing=best-vs-random&pairing_seed=5"

    response = _post(clients["admin"], body, query)

    assert response.status_code == 200, response.content
    assert response.json()["created"] == 3  # one pair per instruction, not three


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?format=csv", "format"),
        ("?label_source=robot", "label_source"),
        ("?update=maybe", "update"),
        ("?pairing=best-of-3", "pairing"),
    ],
)
def test_bad_parameters_name_the_parameter(team, clients, query, field):
    response = _post(clients["admin"], _jsonl(native("a")), query)

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == field
    assert not Comparison.objects.exists()


@pytest.mark.parametrize(
    "body",
    [b"\x1f\x8b", b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03garbage", gzip.compress(b"{}\n")[:-5]],
    ids=["header only", "corrupt", "truncated"],
)
def test_a_damaged_gzip_upload_is_a_400_naming_the_body(team, clients, body):
    response = _post(clients["admin"], body, "?format=hh-rlhf")

    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["field"] == "body" and error["problem"].startswith("The upload cannot be read")
    assert not Comparison.objects.exists()


def test_an_empty_body_or_a_multipart_form_without_a_file(team, clients):
    empty = _post(clients["admin"], b"")
    no_file = clients["admin"].post(URL, {"other": "x"}, format="multipart")

    assert empty.status_code == 400 and empty.json()["errors"][0]["field"] == "body"
    assert no_file.status_code == 400 and no_file.json()["errors"][0]["field"] == "file"


def test_a_body_over_the_import_limit_gets_a_413_and_writes_nothing(team, clients, settings):
    settings.API_IMPORT_MAX_BYTES = 100
    body = _jsonl(*[native(f"c{i}") for i in range(10)])

    response = _post(clients["admin"], body)

    assert response.status_code == 413
    assert response.json() == {
        "detail": "The import is larger than the limit of 100 bytes.",
        "errors": [],
    }
    assert not Comparison.objects.exists()


def test_llmbar_cannot_run_in_the_background(team, clients):
    response = _post(clients["admin"], b"[]", "?format=llmbar&background=true")

    assert response.status_code == 400
    assert "inline" in response.json()["errors"][0]["problem"]


@pytest.mark.slow
def test_a_large_body_runs_as_a_background_job_in_a_real_worker(
    team, clients, celery_worker_process, settings, tmp_path
):
    settings.IMPORT_DIR = tmp_path / "imports"
    settings.API_IMPORT_SYNC_MAX_BYTES = 100
    body = _jsonl(RICH, *[native(f"c{i}") for i in range(20)])

    queued = _post(clients["admin"], body, "?name=big.jsonl")

    assert queued.status_code == 202, queued.content
    job = queued.json()
    assert job["status"] == "queued" and job["url"].endswith(f"/import-jobs/{job['job']}/")
    done = wait_for(
        lambda: (
            (r := clients["admin"].get(job["url"]).json())["status"] in ("succeeded", "failed")
            and r
        ),
        what="the background import",
    )
    assert done["status"] == "succeeded", done
    assert done["summary"] == {
        "created": 21,
        "skipped": 0,
        "updated": 0,
        "human_labels": 2,
        "lm_labels": 1,
        "format": "native",
        "notes": {},
    }
    assert Comparison.objects.filter(project=team.project).count() == 21
    listed = clients["admin"].get("/api/v1/projects/proj/import-jobs/").json()["results"]
    assert [j["job"] for j in listed] == [job["job"]]


@pytest.mark.slow
def test_a_failed_background_job_reports_line_numbered_errors(
    team, clients, celery_worker_process, settings, tmp_path
):
    settings.IMPORT_DIR = tmp_path / "imports"
    body = _jsonl(native("a"), native("b", prompt=" "), "{oops")

    queued = _post(clients["admin"], body, "?name=bad.jsonl&background=true")
    done = wait_for(
        lambda: ImportJob.objects.get(pk=queued.json()["job"]).is_finished,
        what="the background import",
    )

    assert done
    job = clients["admin"].get(queued.json()["url"]).json()
    assert job["status"] == "failed" and job["error_count"] == 2
    assert job["errors"][0] == {"line": 2, "field": "prompt", "problem": "must not be empty"}
    assert job["errors"][1]["line"] == 3 and job["errors"][1]["field"] == "(line)"
    assert not Comparison.objects.exists()


@pytest.mark.slow
def test_a_running_job_reports_its_progress(
    team, clients, celery_worker_process, settings, tmp_path
):
    from annotator.dataio.synthetic import synthetic_jsonl

    settings.IMPORT_DIR = tmp_path / "imports"
    body = b"".join(synthetic_jsonl(20_000, human_labels=1, lm_labels=0))

    queued = _post(clients["admin"], body, "?name=big.jsonl&background=true")
    seen = []

    def finished():
        job = clients["admin"].get(queued.json()["url"]).json()
        seen.append((job["status"], job["progress"]["fraction"]))
        return job["status"] in ("succeeded", "failed")

    wait_for(finished, timeout=300, what="the background import")

    assert seen[-1] == ("succeeded", 1.0)
    running = [fraction for status, fraction in seen if status == "running"]
    assert running and all(0 <= f <= 1 for f in running)
    assert any(0 < f < 1 for f in running), seen
    assert running == sorted(running)
    # The upload and its progress file go right after the job's commit.
    wait_for(lambda: not list((tmp_path / "imports").iterdir()), what="the upload's removal")


def test_a_damaged_upload_fails_its_background_job_with_a_message(
    team, clients, settings, tmp_path
):
    from annotator.dataio.jobs import import_job_run

    settings.IMPORT_DIR = tmp_path
    queued = _post(clients["admin"], b"\x1f\x8b\x08\x00garbage", "?background=true&name=x.gz")

    import_job_run(job_id=queued.json()["job"])  # what the worker does

    job = clients["admin"].get(queued.json()["url"]).json()
    assert job["status"] == "failed" and job["progress"]["fraction"] is None
    assert job["errors"][0]["problem"].startswith("the file cannot be read")
    assert not Comparison.objects.exists()
