"""Import and export throughput and memory on PostgreSQL.

Generates N synthetic comparisons with 3 human and 2 LM labels each, imports them with
`import_comparisons`, exports them with `export_dataset` in both formats, each phase as its own
process (so its peak RSS is its own), and compares with a plain-ORM baseline (bulk_create with model
instances; prefetch_related + json.dumps) measured in the same run on a smaller N.

    python bench/import_export.py [--n 100000] [--quick] [--database-url URL]
    python bench/import_export.py --format multipref,arena   # or --format all

With `--format`, each named import format is timed instead: N rows written from the format's
published schema (the row builders the tests use, tests/format_rows/), imported with
`import_comparisons --format NAME` into a project of its own, and the comparisons created per
second reported beside the native import of the same number of comparisons in the same run
(`format_ratio_vs_native`). Pairing formats create several comparisons per row.

The last line printed is one JSON object with the figures.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/hybrid_prefs_bench"
# Other tools' figures beside ours: bench/README.md, (docs/architecture.md, "What other tools do").


def _recreate_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def _run(args: list[str], env: dict, stdout=subprocess.DEVNULL) -> tuple[float, float]:
    """Run a manage.py command; return (its own reported seconds, its peak RSS in MB).

    The command reports the time of the work itself ("... in 12.345s" on stderr), without the
    interpreter and Django start-up, which would dominate small runs.
    """
    process = subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        stdout=stdout,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(process.pid, 0)
    stderr = process.stderr.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{stderr}")
    timed = re.findall(r" in ([0-9.]+)s$", stderr, re.M)
    return (float(timed[-1]) if timed else float("nan")), usage.ru_maxrss / 1024


def _write_input(path: Path, n: int, seed: int) -> None:
    from annotator.dataio.synthetic import synthetic_jsonl

    with path.open("wb") as out:
        for line in synthetic_jsonl(n, seed=seed):
            out.write(line)


def _baseline(path: Path, n: int, env: dict) -> dict:
    """The straightforward ORM way, in a child process on the same database."""
    code = f"""
import json, time, django
django.setup()
from django.db import transaction
from annotator.models import Comparison, HumanLabel
from annotator.labels import label_parse
from annotator.services import project_create
from annotator.models import LMLabel

project = project_create(slug="baseline")
started = time.perf_counter()
with transaction.atomic(), open({str(path)!r}, "rb") as stream:
    batch = []
    def flush(batch):
        made = Comparison.objects.bulk_create([c for c, _ in batch])
        humans, lms = [], []
        for comparison, record in batch:
            for h in record.get("human_labels", []):
                j = label_parse(h["overall"])
                humans.append(HumanLabel(comparison=comparison, annotator_name=h["annotator"],
                    source="imported", overall_choice=j.choice, overall_strength=j.strength,
                    confidence=h.get("confidence"), reasons=h.get("reasons", []),
                    rationale=h.get("rationale", ""), time_spent_s=h.get("time_spent_s"),
                    shown_order=h.get("shown_order")))
            for m in record.get("lm_labels", []):
                j = label_parse(m["overall"])
                lms.append(LMLabel(comparison=comparison, judge_name=m["judge"],
                    judge_version=m.get("judge_version", ""), choice=j.choice,
                    strength=j.strength, p_a=m.get("p_a"), p_a_ab=m.get("p_a_ab"),
                    p_a_ba=m.get("p_a_ba"), position_consistent=m.get("position_consistent"),
                    source="imported"))
        HumanLabel.objects.bulk_create(humans)
        LMLabel.objects.bulk_create(lms)
    for line in stream:
        record = json.loads(line)
        batch.append((Comparison(project=project, external_id=record["external_id"],
            prompt=record["prompt"], response_a=record["response_a"],
            response_b=record["response_b"], metadata=record.get("metadata", {{}}),
            content_hash=""), record))
        if len(batch) == 1000:
            flush(batch); batch = []
    if batch:
        flush(batch)
imported = time.perf_counter() - started

started = time.perf_counter()
rows = 0
with open("/dev/null", "w") as out:
    queryset = Comparison.objects.filter(project=project).prefetch_related(
        "human_labels", "lm_labels")
    for c in queryset.iterator(chunk_size=2000):
        out.write(json.dumps({{
            "external_id": c.external_id, "prompt": c.prompt, "response_a": c.response_a,
            "response_b": c.response_b, "metadata": c.metadata,
            "human_labels": [{{"annotator": h.annotator_name, "overall": h.overall_choice,
                              "confidence": h.confidence, "rationale": h.rationale}}
                             for h in c.human_labels.all()],
            "lm_labels": [{{"judge": m.judge_name, "overall": m.choice, "p_a": m.p_a}}
                          for m in c.lm_labels.all()],
        }}) + "\\n")
        rows += 1
exported = time.perf_counter() - started
speeds = {{"import_rows_per_s": {n} / imported, "export_full_rows_per_s": rows / exported}}
print(json.dumps(speeds))
"""
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"baseline failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _write_format_rows(name: str, n: int, seed: int, path: Path) -> None:
    """The format's schema-shaped rows as JSON Lines, written by a child process: a child's peak
    RSS counts its parent's at the fork (kept across exec), so this process stays small."""
    module = f"tests.format_rows.{name.replace('-', '_')}"
    code = (
        f"import json, importlib\n"
        f"rows = importlib.import_module({module!r}).rows({n}, seed={seed})\n"
        f"with open({str(path)!r}, 'w') as out:\n"
        f"    out.writelines(json.dumps(r) + '\\n' for r in rows)\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def _import_created(path: Path, fmt: str, slug: str, env: dict) -> tuple[float, float, dict]:
    """(seconds, peak RSS MB, the import's summary) of one import_comparisons run."""
    with tempfile.TemporaryFile() as out:
        seconds, rss = _run(
            [
                "import_comparisons",
                str(path),
                "--project",
                slug,
                "--create-project",
                "--format",
                fmt,
            ],
            env,
            stdout=out,
        )
        out.seek(0)
        summary = json.loads(out.read().decode().strip().splitlines()[-1])
    return seconds, rss, summary


def _formats_bench(names: list[str], n: int, env: dict) -> dict:
    """Each format's import of N schema-shaped rows, and the native import of as many
    comparisons, in the same run."""
    results: dict = {"n_rows": n, "formats": {}}
    with tempfile.TemporaryDirectory(prefix="bench-formats-") as tmp:
        native = Path(tmp) / "native.jsonl"
        _write_input(native, n, seed=3)
        seconds, rss, summary = _import_created(native, "native", "bench-native", env)
        created = summary["created"]
        results["native_comparisons_per_s"] = round(created / seconds, 1)
        print(
            f"native          {created:8d} comparisons {created / seconds:10.0f} /s {rss:7.1f} MB"
        )
        for name in names:
            path = Path(tmp) / f"{name}.jsonl"
            _write_format_rows(name, n, 4, path)
            seconds, rss, summary = _import_created(path, name, f"bench-{name}", env)
            created, labels = summary["created"], summary["human_labels"] + summary["lm_labels"]
            rate = created / seconds
            results["formats"][name] = {
                "comparisons": created,
                "labels": labels,
                "comparisons_per_s": round(rate, 1),
                "labels_per_s": round(labels / seconds, 1),
                "peak_rss_mb": round(rss, 1),
                "ratio_vs_native": round(rate / results["native_comparisons_per_s"], 2),
            }
            print(
                f"{name:<24} {created:8d} comparisons {rate:8.0f} /s, {labels:8d} labels "
                f"{labels / seconds:8.0f} /s {rss:7.1f} MB"
            )
            path.unlink()
    rates = [f["comparisons_per_s"] for f in results["formats"].values()]
    results["slowest_format_comparisons_per_s"] = min(rates) if rates else None
    results["format_ratio_vs_native"] = (
        round(min(rates) / results["native_comparisons_per_s"], 2) if rates else None
    )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="comparisons to generate")
    parser.add_argument("--baseline-n", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument(
        "--format",
        help="time these import formats instead (comma-separated, or all); see above",
    )
    args = parser.parse_args()
    if args.quick:
        args.n, args.baseline_n = 5_000, 1_000

    env = {
        **os.environ,
        "DATABASE_URL": args.database_url,
        "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-only"),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "LOG_LEVEL": "WARNING",
    }
    _recreate_database(args.database_url)
    _run(["migrate", "--no-input", "-v", "0"], env)
    if args.format:
        sys.path.insert(0, str(ROOT))
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        os.environ.setdefault("SECRET_KEY", "bench-only")
        import django

        django.setup()
        from annotator.dataio.formats import FORMATS

        names = [f for f in FORMATS if f not in ("native", "llmbar")]
        if args.format != "all":
            names = args.format.split(",")
            unknown = sorted(set(names) - set(FORMATS))
            if unknown:
                raise SystemExit(f"unknown format(s) {unknown}; expected some of {FORMATS}")
        print(json.dumps(_formats_bench(names, args.n, env)))
        return

    results: dict = {"n": args.n}
    with tempfile.TemporaryDirectory(prefix="bench-io-") as tmp:
        source = Path(tmp) / "input.jsonl"
        os.environ.setdefault("SECRET_KEY", "bench-only")
        _write_input(source, args.n, seed=1)
        size_mb = source.stat().st_size / 2**20
        print(f"input: {args.n} comparisons, 3 human + 2 LM labels each, {size_mb:.0f} MB")

        seconds, rss = _run(
            ["import_comparisons", str(source), "--project", "bench", "--create-project"], env
        )
        results["import_rows_per_s"] = round(args.n / seconds, 1)
        results["import_peak_rss_mb"] = round(rss, 1)
        print(f"import      {seconds:8.1f} s  {args.n / seconds:10.0f} rows/s  {rss:7.1f} MB")

        for fmt in ("full", "trl"):
            out = Path(tmp) / f"export-{fmt}.jsonl"
            seconds, rss = _run(
                ["export_dataset", "--project", "bench", "--format", fmt, "--output", str(out)],
                env,
            )
            with out.open("rb") as stream:
                rows = sum(1 for _ in stream)
            results[f"export_{fmt}_rows"] = rows
            results[f"export_{fmt}_rows_per_s"] = round(rows / seconds, 1)
            results[f"export_{fmt}_peak_rss_mb"] = round(rss, 1)
            print(f"export {fmt:<4} {seconds:8.1f} s  {rows / seconds:10.0f} rows/s  {rss:7.1f} MB")
            out.unlink()

        baseline_source = Path(tmp) / "baseline.jsonl"
        _write_input(baseline_source, args.baseline_n, seed=2)
        baseline = _baseline(baseline_source, args.baseline_n, env)

    results["peak_rss_mb"] = max(
        results["import_peak_rss_mb"],
        results["export_full_peak_rss_mb"],
        results["export_trl_peak_rss_mb"],
    )
    results["baseline_n"] = args.baseline_n
    results["baseline_import_rows_per_s"] = round(baseline["import_rows_per_s"], 1)
    results["baseline_export_full_rows_per_s"] = round(baseline["export_full_rows_per_s"], 1)
    results["import_ratio_vs_baseline"] = round(
        results["import_rows_per_s"] / baseline["import_rows_per_s"], 2
    )
    results["export_full_ratio_vs_baseline"] = round(
        results["export_full_rows_per_s"] / baseline["export_full_rows_per_s"], 2
    )
    print(
        f"baseline (plain ORM, n={args.baseline_n}): import "
        f"{baseline['import_rows_per_s']:.0f} rows/s, export "
        f"{baseline['export_full_rows_per_s']:.0f} rows/s; ours is "
        f"{results['import_ratio_vs_baseline']}x and {results['export_full_ratio_vs_baseline']}x"
    )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
