"""The dataset card (README.md in markdown) that describes a project's export."""

from django.apps import apps
from django.db import connection
from django.db.models import Count

from annotator.final_labels import final_label_counts, project_primary_judge
from annotator.models import Comparison, HumanLabel, LMLabel, Project


def _human_agreement(project: Project) -> tuple[int, float | None, int]:
    """(comparisons with 2+ human labels, mean share of votes for the most common overall choice,
    how many of them are unanimous), in one grouped query."""
    labels, comparisons = HumanLabel._meta.db_table, Comparison._meta.db_table
    sql = f"""
        SELECT COUNT(*), AVG(top * 1.0 / total), SUM(CASE WHEN top = total THEN 1 ELSE 0 END)
        FROM (
            SELECT comparison_id, MAX(n) AS top, SUM(n) AS total FROM (
                SELECT h.comparison_id, h.overall_choice, COUNT(*) AS n
                FROM {labels} h JOIN {comparisons} c ON c.id = h.comparison_id
                WHERE c.project_id = %s
                GROUP BY h.comparison_id, h.overall_choice
            ) per_choice
            GROUP BY comparison_id
            HAVING SUM(n) >= 2
        ) per_comparison
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [project.pk])
        count, mean, unanimous = cursor.fetchone()
    return count or 0, (float(mean) if mean is not None else None), unanimous or 0


def _routing_run_line(project: Project) -> str:
    """The latest routing run, once the routing app has runs."""
    try:
        model = apps.get_model("routing", "RoutingRun")
    except LookupError:
        return "none (routing runs are not available in this installation)"
    run = model.objects.filter(project=project).order_by("-id").first()
    if run is None:
        return "none yet"
    parts = [f"#{run.pk}"]
    for field in ("strategy", "budget", "status", "created_at"):
        value = getattr(run, field, None)
        if value not in (None, ""):
            parts.append(f"{field} {value}")
    return ", ".join(parts)


def dataset_card_markdown(*, project: Project) -> str:
    judge = project_primary_judge(project)
    lines = [
        f"# {project.name}",
        "",
        project.description or "Pairwise preference data (prompt, response A, response B).",
        "",
        *_summary_section(project, judge),
        "",
        *_agreement_section(project),
        "",
        *_judges_section(project),
        "",
        *_FILES_SECTION,
        "",
    ]
    return "\n".join(lines)


def _summary_section(project: Project, judge: str | None) -> list[str]:
    """Counts of comparisons by where their final label comes from, of human labels by source,
    and the project's settings."""
    total = Comparison.objects.filter(project=project).count()
    final = final_label_counts(project)
    by_source = dict(
        HumanLabel.objects.filter(comparison__project=project)
        .order_by()
        .values_list("source")
        .annotate(n=Count("id"))
        .values_list("source", "n")
    )
    return [
        "## Summary",
        "",
        "| | |",
        "| --- | --- |",
        f"| project | `{project.slug}` |",
        f"| licence | {project.license or 'not set'} |",
        f"| comparisons | {total} |",
        f"| final label from humans | {final.human} |",
        f"| final label from the LM judge (no human label) | {final.lm} |",
        f"| without a final label (tied or Tie votes, an LM Tie, no label) | {final.none} |",
        f"| human labels (platform / imported) | {by_source.get('platform', 0)} / "
        f"{by_source.get('imported', 0)} |",
        f"| primary judge | {judge or 'none'} |",
        f"| guidelines version | {project.guidelines_version} |",
        f"| routing run | {_routing_run_line(project)} |",
    ]


def _agreement_section(project: Project) -> list[str]:
    agreeing, mean_agreement, unanimous = _human_agreement(project)
    if not agreeing:
        return ["## Agreement", "", "No comparison has two or more human labels yet."]
    return [
        "## Agreement",
        "",
        f"Among {agreeing} comparisons with two or more human labels, on average "
        f"{mean_agreement:.1%} of the votes went to the most common overall choice; "
        f"{unanimous} ({unanimous / agreeing:.1%}) were unanimous.",
    ]


def _judges_section(project: Project) -> list[str]:
    """Each judge version with its number of labels."""
    judges = list(
        LMLabel.objects.filter(comparison__project=project)
        .order_by()
        .values_list("judge_name", "judge_version")
        .annotate(n=Count("id"))
        .order_by("judge_name", "judge_version")
    )
    if not judges:
        return ["## LM judges", "", "No LM labels."]
    return [
        "## LM judges",
        "",
        "| judge | version | labels |",
        "| --- | --- | --- |",
        *(f"| {name} | {version or '-'} | {n} |" for name, version, n in judges),
    ]


_FILES_SECTION = [
    "## Files",
    "",
    "- `export.jsonl?format=trl`: `prompt`, `chosen`, `rejected`, `external_id`, "
    "`label_source` (human / lm), `strength`, `agreement` for every comparison with a final "
    "label: the majority of its human labels (tied votes and Tie majorities are left out), "
    "else the primary judge's latest label (ties left out).",
    "- `export.jsonl?format=full`: every comparison with every human and LM label.",
    "",
    'Load with `datasets.load_dataset("json", data_files="export.jsonl")`.',
]
