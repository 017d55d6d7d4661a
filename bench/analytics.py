"""Analytics report time and cached page time on PostgreSQL.

Writes N synthetic comparisons between 10 models of planted strength, each with 3 human labels
(60 annotators of planted accuracy, 4 of them near-random) and 1 LM label, straight into the
tables with the import's COPY path (annotator/dataio/bulk.py), then times the whole analytics
report (reading the labels, every statistic with 1000 bootstrap resamples, the figures, storing
the cache row) as the Celery task runs it, and the analytics page served from that cache.

    python bench/analytics.py [--n 100000] [--quick] [--database-url URL]

The last line printed is one JSON object: report_seconds, n_labels, page_ms and the details.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/hybrid_prefs_bench_analytics"
N_MODELS, N_ANNOTATORS, N_BAD = 10, 60, 4
SCALE = (
    ("A", "clearly"),
    ("A", "slightly"),
    ("tie", "unknown"),
    ("B", "slightly"),
    ("B", "clearly"),
)


def _recreate_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


COMPARISON_COLUMNS = [
    "id",
    "project_id",
    "external_id",
    "prompt",
    "response_a",
    "response_b",
    "model_a",
    "model_b",
    "metadata",
    "content_hash",
    "route",
    "is_gold",
    "labels_done",
    "slots_taken",
    "created_at",
]
HUMAN_COLUMNS = [
    "comparison_id",
    "annotator_name",
    "annotator_type",
    "overall_choice",
    "overall_strength",
    "confidence",
    "reasons",
    "rationale",
    "time_spent_s",
    "shown_order",
    "source",
    "created_at",
]
LM_COLUMNS = [
    "comparison_id",
    "judge_name",
    "judge_version",
    "choice",
    "strength",
    "p_a",
    "position_consistent",
    "rationale",
    "raw_output",
    "truncated",
    "source",
    "created_at",
]


def _generate(project, n: int, seed: int) -> int:
    """Write the comparisons and labels; returns the number of labels."""
    from django.db import connection, transaction
    from django.utils import timezone

    from annotator.dataio.bulk import ids_reserve
    from annotator.models import Comparison

    rng = np.random.default_rng(seed)
    a, b, truth, accuracy = _planted(rng, n)
    now = timezone.now()
    with transaction.atomic():
        ids = ids_reserve(Comparison, n)
        _comparisons_insert(project, ids, a, b, now)
        _human_labels_insert(rng, ids, truth, accuracy, now)
        _lm_labels_insert(rng, ids, truth, now)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return 4 * n


def _planted(rng, n: int):
    """Each comparison's two models, its true outcome (Davidson with nu = 0.3 over the models'
    planted strengths: 0 A wins, 1 B wins, 2 tie), and each annotator's accuracy."""
    strength = np.linspace(-1.0, 1.0, N_MODELS)
    a = rng.integers(0, N_MODELS, n)
    b = (a + rng.integers(1, N_MODELS, n)) % N_MODELS
    pa, pb = np.exp(strength[a]), np.exp(strength[b])
    tie = 0.3 * np.sqrt(pa * pb)
    u = rng.random(n) * (pa + pb + tie)
    truth = np.where(u < pa, 0, np.where(u < pa + pb, 1, 2))
    accuracy = np.r_[rng.uniform(0.7, 0.9, N_ANNOTATORS - N_BAD), np.full(N_BAD, 0.4)]
    return a, b, truth, accuracy


def _comparisons_insert(project, ids, a, b, now) -> None:
    from annotator.dataio.bulk import rows_insert
    from annotator.models import Comparison

    rows_insert(
        Comparison,
        COMPARISON_COLUMNS,
        (
            (
                ids[i],
                project.pk,
                f"bench-{i:08d}",
                f"prompt {i}",
                f"a {i}",
                f"b {i}",
                f"model-{a[i]}",
                f"model-{b[i]}",
                {},
                f"{i:064x}",
                "human",
                False,
                3,
                3,
                now,
            )
            for i in range(len(ids))
        ),
    )


def _human_labels_insert(rng, ids, truth, accuracy, now) -> None:
    """Three distinct annotators per comparison; each answers right with their accuracy."""
    from annotator.dataio.bulk import rows_insert
    from annotator.models import HumanLabel

    n = len(ids)
    who = np.argsort(rng.random((n, N_ANNOTATORS)), axis=1)[:, :3]
    right = rng.random((n, 3)) < accuracy[who]
    wrong = (truth[:, None] + rng.integers(1, 3, (n, 3))) % 3
    choice = np.where(right, truth[:, None], wrong)
    clearly = rng.random((n, 3)) < 0.5
    scale = np.where(
        choice == 0, np.where(clearly, 0, 1), np.where(choice == 1, np.where(clearly, 4, 3), 2)
    )
    seconds = np.round(rng.lognormal(3.3, 0.6, (n, 3)), 1)
    seconds[who >= N_ANNOTATORS - N_BAD] /= 8  # the careless ones are also fast
    shown = rng.integers(0, 2, (n, 3))
    confidence = rng.integers(0, 3, (n, 3))
    confidences = ("absolutely", "fairly", "not")
    rows_insert(
        HumanLabel,
        HUMAN_COLUMNS,
        (
            (
                ids[i],
                f"annotator-{who[i, k]:02d}",
                "normal",
                *SCALE[scale[i, k]],
                confidences[confidence[i, k]],
                [],
                "",
                float(seconds[i, k]),
                "AB" if shown[i, k] == 0 else "BA",
                "imported",
                now,
            )
            for i in range(n)
            for k in range(3)
        ),
    )


def _lm_labels_insert(rng, ids, truth, now) -> None:
    """One judge label per comparison, right 75% of the time, with a p_a near its choice."""
    from annotator.dataio.bulk import rows_insert
    from annotator.models import LMLabel

    n = len(ids)
    judge_right = rng.random(n) < 0.75
    judge = np.where(judge_right, truth, (truth + 1) % 3)
    p_a = np.clip(
        np.where(judge == 0, 0.8, np.where(judge == 1, 0.2, 0.5)) + rng.normal(0, 0.05, n), 0, 1
    )
    rows_insert(
        LMLabel,
        LM_COLUMNS,
        (
            (
                ids[i],
                "bench-judge",
                "v1",
                ("A", "B", "tie")[judge[i]],
                "unknown",
                float(p_a[i]),
                True,
                "",
                {},
                False,
                "imported",
                now,
            )
            for i in range(n)
        ),
    )


def _page_times(project, repeats: int) -> tuple[float, float]:
    """Median ms of the analytics page and of one figure, served from the cache."""
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.urls import reverse

    admin = get_user_model().objects.create_superuser("bench-admin", password="unused-pw-123")
    client = Client()
    client.force_login(admin)
    page_url = reverse("annotator:analytics:page", args=[project.slug])
    plot_url = reverse("annotator:analytics:plot", args=[project.slug, "leaderboard"])
    times = {page_url: [], plot_url: []}
    for url in (page_url, plot_url):
        assert client.get(url).status_code == 200  # warm: templates, connections
        for _ in range(repeats):
            started = time.perf_counter()
            response = client.get(url)
            times[url].append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
    return statistics.median(times[page_url]), statistics.median(times[plot_url])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="comparisons to generate")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.quick:
        args.n = 5_000
    _django_setup(args.database_url)
    from annotator.analytics.report import project_report_refresh
    from annotator.services import project_create

    project = project_create(slug="bench-analytics", primary_judge="bench-judge")
    started = time.perf_counter()
    n_labels = _generate(project, args.n, args.seed)
    generate_seconds = time.perf_counter() - started
    print(f"generated {args.n} comparisons, {n_labels} labels in {generate_seconds:.1f} s")

    row = project_report_refresh(project_id=project.pk, n_bootstrap=args.bootstrap)
    phases = row.report["phases_seconds"]
    print(
        f"report      {row.compute_seconds:7.2f} s  "
        f"({', '.join(f'{k} {v:.2f} s' for k, v in phases.items())})"
    )
    page_ms, plot_ms = _page_times(project, repeats=20)
    print(f"page        {page_ms:7.1f} ms (median of 20), figure {plot_ms:.1f} ms")

    report = row.report
    final = report["leaderboard"]["final"]["models"]
    results = {
        "n": args.n,
        "n_labels": n_labels,
        "report_seconds": round(row.compute_seconds, 3),
        "page_ms": round(page_ms, 1),
        "plot_ms": round(plot_ms, 1),
        "phases_seconds": phases,
        "n_bootstrap": args.bootstrap,
        "generate_seconds": round(generate_seconds, 1),
        "alpha_ordinal_overall": report["agreement"]["overall"]["alpha_ordinal"]["value"],
        "leaderboard_order_recovered": [m["model"] for m in final]
        == [f"model-{k}" for k in reversed(range(N_MODELS))],
        "flagged_annotators": report["competence"]["n_flagged"],
        "targets": {"report_seconds": 30, "page_ms": 200},
    }
    print(json.dumps(results))


def _django_setup(database_url: str) -> None:
    """A fresh, migrated benchmark database, and Django set up on it."""
    os.environ.update(
        {
            "DATABASE_URL": database_url,
            "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-only"),
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "ALLOWED_HOSTS": "testserver",
            "LOG_LEVEL": "WARNING",
        }
    )
    _recreate_database(database_url)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"], cwd=ROOT, check=True
    )
    import django

    django.setup()


if __name__ == "__main__":
    main()
